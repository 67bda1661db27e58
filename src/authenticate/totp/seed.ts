// OTP seeds at rest: AES-256-GCM under the KEK (the same sealing as signing keys,
// src/tokens/lib/seal.ts), with the token serial in the additional authenticated data, so a
// sealed seed copied to another serial or user does not open.
import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../../errors.js';
import { NONCE_BYTES, SEAL_VERSION, TAG_BYTES, assertKek } from '../../tokens/lib/seal.js';

function aad(serial: string): Buffer {
  return Buffer.from(`gatehouse/totp-seed/${SEAL_VERSION}/${serial}`, 'utf8');
}

export function sealSeed(kek: KeyObject, serial: string, seed: Uint8Array): string {
  assertKek(kek);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(aad(serial));
  const body = Buffer.concat([nonce, cipher.update(seed), cipher.final(), cipher.getAuthTag()]);
  return `${SEAL_VERSION}.${body.toString('base64url')}`;
}

/** The seed bytes; the caller zeroes them when done. */
export function openSeed(kek: KeyObject, serial: string, sealed: string): Buffer {
  assertKek(kek);
  const prefix = `${SEAL_VERSION}.`;
  const fail = (why: string, cause?: unknown): GatehouseError =>
    new GatehouseError('ERR_TOTP_SEED_UNSEALABLE', `OTP seed of token ${serial}: ${why}`, cause === undefined ? {} : { cause });
  if (!sealed.startsWith(prefix)) throw fail('not a sealed seed of a known version');
  const body = Buffer.from(sealed.slice(prefix.length), 'base64url');
  if (body.length <= NONCE_BYTES + TAG_BYTES) throw fail('sealed seed is too short');
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, body.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(serial));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    return Buffer.concat([decipher.update(body.subarray(NONCE_BYTES, body.length - TAG_BYTES)), decipher.final()]);
  } catch (cause) {
    throw fail('authentication failed (another KEK, or the sealed seed was changed or moved)', cause);
  }
}
