// Opens a sealed signing key. Fails (ERR_TOKEN_KEY_UNSEALABLE) under another KEK, after any
// change to the sealed bytes, or when the sealed key was copied under another kid.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import { SEAL_AAD, openSealed } from '../lib/seal.js';

export function openPrivateKey(kek: KeyObject, kid: string, sealed: string): KeyObject {
  const unsealable = (why: string, cause?: unknown): GatehouseError =>
    new GatehouseError('ERR_TOKEN_KEY_UNSEALABLE', `signing key ${kid}: ${why}`, { details: { kid }, ...(cause === undefined ? {} : { cause }) });
  const plain = openSealed(kek, SEAL_AAD.signingKey(kid), sealed, unsealable);
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
