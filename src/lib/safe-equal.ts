// The one constant-time comparison of secrets (tokens, codes, digests). Both sides are hashed
// first, so neither the position of the first difference nor the length of the secret shows in
// the time taken, and inputs of different lengths need no early return.
import { createHash, timingSafeEqual } from 'node:crypto';

function digest(value: string | Uint8Array): Buffer {
  return createHash('sha256').update(value).digest();
}

/** True when a and b hold the same bytes (strings as UTF-8), in time independent of where they differ. */
export function safeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  return timingSafeEqual(digest(a), digest(b));
}
