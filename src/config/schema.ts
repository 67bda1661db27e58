// A small validator for the config: every problem names its key path, unknown keys are
// refused, and the result is typed. Kept in-house so error messages stay ours.

export type Path = readonly (string | number)[];

export interface Issue {
  path: Path;
  message: string;
}

export class Issues {
  readonly list: Issue[] = [];
  add(path: Path, message: string): void {
    this.list.push({ path, message });
  }
}

export type Check<T> = (value: unknown, path: Path, issues: Issues) => T | undefined;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a map' : `${typeof value} ${JSON.stringify(value)}`;
}

export function str(opts: { pattern?: RegExp; hint?: string; nonEmpty?: boolean } = {}): Check<string> {
  return (v, path, issues) => {
    if (typeof v !== 'string') return void issues.add(path, `must be a string, got ${describe(v)}`);
    if ((opts.nonEmpty ?? true) && v.length === 0) return void issues.add(path, 'must not be empty');
    if (opts.pattern !== undefined && !opts.pattern.test(v)) return void issues.add(path, `must be ${opts.hint ?? `like ${String(opts.pattern)}`}`);
    return v;
  };
}

export function int(opts: { min?: number; max?: number } = {}): Check<number> {
  return (v, path, issues) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) return void issues.add(path, `must be an integer, got ${describe(v)}`);
    if (opts.min !== undefined && v < opts.min) return void issues.add(path, `must be at least ${opts.min}`);
    if (opts.max !== undefined && v > opts.max) return void issues.add(path, `must be at most ${opts.max}`);
    return v;
  };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "90s", "15m", "24h", "7d", "500ms" (or a number of seconds) to milliseconds. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v * 1_000;
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v.trim());
  if (m === null) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms > 0 && Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** A duration like 300s, 15m, 24h; the result is milliseconds. */
export function duration(opts: { minMs?: number; maxMs?: number } = {}): Check<number> {
  return (v, path, issues) => {
    const ms = parseDuration(v);
    if (ms === undefined) return void issues.add(path, `must be a duration like 300s, 15m or 24h, got ${describe(v)}`);
    if (opts.minMs !== undefined && ms < opts.minMs) return void issues.add(path, `must be at least ${opts.minMs / 1000}s`);
    if (opts.maxMs !== undefined && ms > opts.maxMs) return void issues.add(path, `must be at most ${opts.maxMs / 1000}s`);
    return ms;
  };
}

export function bool(): Check<boolean> {
  return (v, path, issues) => (typeof v === 'boolean' ? v : void issues.add(path, `must be true or false, got ${describe(v)}`));
}

export function oneOf<const T extends string>(...values: T[]): Check<T> {
  return (v, path, issues) =>
    typeof v === 'string' && (values as string[]).includes(v) ? (v as T) : void issues.add(path, `must be one of ${values.join(', ')}, got ${describe(v)}`);
}

export function list<T>(item: Check<T>, opts: { min?: number } = {}): Check<T[]> {
  return (v, path, issues) => {
    if (!Array.isArray(v)) return void issues.add(path, `must be a list, got ${describe(v)}`);
    if (opts.min !== undefined && v.length < opts.min) return void issues.add(path, `must have at least ${opts.min} item(s)`);
    const out: T[] = [];
    v.forEach((x, i) => {
      const r = item(x, [...path, i], issues);
      if (r !== undefined) out.push(r);
    });
    return out;
  };
}

interface Field<T, Opt extends boolean> {
  check: Check<T>;
  optional: Opt;
  fallback?: () => T;
}

export function required<T>(check: Check<T>): Field<T, false> {
  return { check, optional: false };
}
/** May be absent; then the key is absent from the result too (exactOptionalPropertyTypes). */
export function optional<T>(check: Check<T>): Field<T, true> {
  return { check, optional: true };
}
export function withDefault<T>(check: Check<T>, fallback: () => NoInfer<T>): Field<T, false> {
  return { check, optional: false, fallback };
}

type Shape = Record<string, Field<unknown, boolean>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type Out<S extends Shape> = Simplify<
  { [K in keyof S as S[K] extends Field<unknown, true> ? never : K]: S[K] extends Field<infer T, boolean> ? T : never } & {
    [K in keyof S as S[K] extends Field<unknown, true> ? K : never]?: S[K] extends Field<infer T, boolean> ? T : never;
  }
>;

/** A map with exactly these keys; unknown keys are refused by name. */
export function obj<S extends Shape>(shape: S): Check<Out<S>> {
  return (v, path, issues) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return void issues.add(path, `must be a map, got ${describe(v)}`);
    const input = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    let ok = true;
    for (const key of Object.keys(input)) {
      if (!(key in shape)) {
        issues.add([...path, key], `unknown key (allowed here: ${Object.keys(shape).join(', ')})`);
        ok = false;
      }
    }
    for (const [key, field] of Object.entries(shape)) {
      const raw = input[key];
      if (raw === undefined || raw === null) {
        if (field.fallback !== undefined) out[key] = field.fallback();
        else if (!field.optional) {
          issues.add([...path, key], 'is required');
          ok = false;
        }
        continue;
      }
      const r = field.check(raw, [...path, key], issues);
      if (r === undefined) ok = false;
      else out[key] = r;
    }
    return ok ? (out as Out<S>) : undefined;
  };
}

/** A map from any string keys to values of one shape. */
export function mapOf<T>(value: Check<T>): Check<Record<string, T>> {
  return (v, path, issues) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return void issues.add(path, `must be a map, got ${describe(v)}`);
    const out: Record<string, T> = {};
    let ok = true;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const r = value(x, [...path, k], issues);
      if (r === undefined) ok = false;
      else out[k] = r;
    }
    return ok ? out : undefined;
  };
}

/** A map whose `kind` picks the shape (kind itself is part of each shape). */
export function byKind<M extends Record<string, Check<unknown>>>(variants: M): Check<{ [K in keyof M]: M[K] extends Check<infer T> ? T : never }[keyof M]> {
  return (v, path, issues) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return void issues.add(path, `must be a map, got ${describe(v)}`);
    const kind = (v as Record<string, unknown>).kind;
    const variant = typeof kind === 'string' && Object.hasOwn(variants, kind) ? variants[kind] : undefined;
    if (variant === undefined) return void issues.add([...path, 'kind'], `must be one of ${Object.keys(variants).join(', ')}, got ${describe(kind)}`);
    return variant(v, path, issues) as never;
  };
}
