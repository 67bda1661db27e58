// Opens a sealed signing key. Fails (ERR_TOKEN_KEY_UNSEALABLE) under another KEK, after any
// change to the sealed bytes, or when the sealed key was copied under another kid.
import { createDecipheriv, createPrivateKey, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import { NONCE_BYTES, SEAL_VERSION, TAG_BYTES, assertKek, sealAad } from './lib/seal.js';

export function openPrivateKey(kek: KeyObject, kid: string, sealed: string): KeyObject {
  assertKek(kek);
  const unsealable = (why: string, cause?: unknown): GatehouseError =>
    new GatehouseError('ERR_TOKEN_KEY_UNSEALABLE', `signing key ${kid}: ${why}`, { details: { kid }, ...(cause === undefined ? {} : { cause }) });
  const prefix = `${SEAL_VERSION}.`;
  if (typeof sealed !== 'string' || !sealed.startsWith(prefix)) throw unsealable('not a sealed key of a known version');
  const body = Buffer.from(sealed.slice(prefix.length), 'base64url');
  if (body.length <= NONCE_BYTES + TAG_BYTES) throw unsealable('sealed key is too short');
  let plain: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, body.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(sealAad(kid));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    plain = Buffer.concat([decipher.update(body.subarray(NONCE_BYTES, body.length - TAG_BYTES)), decipher.final()]);
  } catch (cause) {
    throw unsealable('authentication failed (another KEK, or the sealed key was changed or moved)', cause);
  }
  try {
    const key = createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
    if (key.asymmetricKeyType !== 'ed25519') throw unsealable('sealed key is not Ed25519');
    return key;
  } catch (cause) {
    if (cause instanceof GatehouseError) throw cause;
    throw unsealable('sealed key is not a PKCS#8 private key', cause);
  } finally {
    plain.fill(0);
  }
}
