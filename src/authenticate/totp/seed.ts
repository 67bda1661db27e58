// OTP seeds at rest: sealed under the KEK (src/lib/seal.ts) with the token serial in the
// additional authenticated data, so a sealed seed copied to another serial or user does not open.
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../../errors.js';
import { SEAL_AAD, openSealed, seal } from '../../lib/seal.js';

export function sealSeed(kek: KeyObject, serial: string, seed: Uint8Array): string {
  return seal(kek, SEAL_AAD.totpSeed(serial), seed);
}

/** The seed bytes; the caller zeroes them when done. */
export function openSeed(kek: KeyObject, serial: string, sealed: string): Buffer {
  return openSealed(kek, SEAL_AAD.totpSeed(serial), sealed, (why, cause) =>
    new GatehouseError('ERR_TOTP_SEED_UNSEALABLE', `OTP seed of token ${serial}: ${why}`, cause === undefined ? {} : { cause }));
}
