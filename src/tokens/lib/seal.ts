// The sealed form of a signing key: "v1." + base64url(nonce[12] || ciphertext || tag[16]),
// AES-256-GCM under the KEK, with the kid in the additional authenticated data.
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../../errors.js';

export const SEAL_VERSION = 'v1';
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

/** Binds a sealed key to its kid: opening it under any other kid fails authentication. */
export function sealAad(kid: string): Buffer {
  return Buffer.from(`gatehouse/signing-key/${SEAL_VERSION}/${kid}`, 'utf8');
}

export function assertKek(kek: KeyObject): void {
  if (kek.type !== 'secret' || kek.symmetricKeySize !== 32) {
    throw new GatehouseError('ERR_TOKEN_KEK_INVALID', 'the KEK must be a 32-byte secret key (see loadKek)');
  }
}
