// Percentiles for the benchmarks: the sample at index floor(p% of n) of the sorted samples.
import { readFileSync } from 'node:fs';

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** percentile() of samples in any order (sorts a copy). */
export function percentileOf(samples: readonly number[], p: number): number {
  return percentile([...samples].sort((a, b) => a - b), p);
}

/** Bytes from /proc/<pid>/status: resident (all, anonymous, file-backed) and its peak. */
export function memoryStatus(pid: number | 'self' = 'self'): Record<'VmRSS' | 'RssAnon' | 'RssFile' | 'VmHWM', number> {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) * 1024;
  return { VmRSS: kb('VmRSS'), RssAnon: kb('RssAnon'), RssFile: kb('RssFile'), VmHWM: kb('VmHWM') };
}
