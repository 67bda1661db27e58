// The one duration grammar of Gatehouse (config, CLI flags): a whole number of 1 to 9 digits,
// no leading zero, then one unit: 500ms, 90s, 15m, 24h, 7d. No fractions, signs, spaces or
// mixed units ("1h30m"), so a value reads the same to every parser and every person.

export const DURATION_UNITS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export type DurationUnit = keyof typeof DURATION_UNITS;

const GRAMMAR = /^([1-9][0-9]{0,8})(ms|s|m|h|d)$/;

/** Milliseconds of "500ms", "90s", "15m", "24h", "7d"; undefined for anything else. */
export function parseDuration(input: string): number | undefined {
  const m = GRAMMAR.exec(input);
  return m === null ? undefined : Number(m[1]) * DURATION_UNITS[m[2] as DurationUnit];
}

/** The shortest text parseDuration reads back as ms: the largest unit that divides it (e.g. 90000 -> "90s", 86400000 -> "1d"). */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new RangeError(`a duration is a positive whole number of ms, got ${ms}`);
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms % DURATION_UNITS[unit] === 0) return `${ms / DURATION_UNITS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
