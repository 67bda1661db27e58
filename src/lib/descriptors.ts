// The descriptor budget of this process: a listener must refuse connections before the process
// runs out of descriptors (then even the store and the upstreams fail, and nothing recovers).
import { readFileSync } from 'node:fs';

/** The soft RLIMIT_NOFILE, read from /proc (undefined where there is none). */
export function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m === null) return undefined;
    return m[1] === 'unlimited' ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * Connections one proxy listener may hold when the config does not say: a quarter of what is
 * left after 256 descriptors kept for the store, logs and the admin listener (two listeners,
 * and a proxied request may hold an upstream connection beside its own), at least 64.
 */
export function defaultMaxConnections(limit = openFilesLimit()): number {
  if (limit === undefined) return 16_384;
  return Math.max(64, Math.floor((limit - 256) / 4));
}
