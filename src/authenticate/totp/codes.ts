// RFC 6238 codes through otplib, with the time step made explicit so replays can be refused
// by step. One step of tolerance either side (RFC 6238 §5.2's recommended network delay).
import { generateSync, verifySync, NobleCryptoPlugin, ScureBase32Plugin } from 'otplib';
import type { TotpParams } from '../types.js';

const crypto = new NobleCryptoPlugin();
const base32 = new ScureBase32Plugin();

export const ENROLL_PARAMS: TotpParams = { digits: 6, period: 30, algorithm: 'sha1' };

export function stepAt(nowMs: number, period: number): number {
  return Math.floor(nowMs / 1000 / period);
}

export function codeAt(seed: Uint8Array, step: number, p: TotpParams): string {
  return generateSync({ secret: seed, epoch: step * p.period, period: p.period, digits: p.digits, algorithm: p.algorithm, crypto, base32 });
}

/** The step (now-1, now, now+1) whose code this is, or undefined. Constant-time comparison inside otplib. */
export function matchStep(seed: Uint8Array, code: string, nowMs: number, p: TotpParams, window = 1): number | undefined {
  if (!new RegExp(`^\\d{${p.digits}}$`).test(code)) return undefined;
  const now = stepAt(nowMs, p.period);
  // Every candidate is computed, so timing does not tell which step matched.
  let found: number | undefined;
  for (let s = now - window; s <= now + window; s++) {
    const r = verifySync({ secret: seed, token: code, epoch: s * p.period, period: p.period, digits: p.digits, algorithm: p.algorithm, crypto, base32 });
    if (r.valid && found === undefined) found = s;
  }
  return found;
}

export function toBase32(seed: Uint8Array): string {
  return base32.encode(seed).replace(/=+$/, '');
}

export function fromBase32(text: string): Uint8Array {
  return base32.decode(text.replace(/[\s=]/g, '').toUpperCase());
}
