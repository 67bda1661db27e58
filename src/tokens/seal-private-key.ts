// Seals a signing key's private half under the KEK, so a copy of the store alone cannot sign.
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import { SEAL_AAD, seal } from '../lib/seal.js';

/** The PKCS#8 key sealed with `name` (the kid, or "audit/<kid>") in the AAD. */
export function sealPrivateKey(kek: KeyObject, name: string, privateKey: KeyObject): string {
  if (privateKey.type !== 'private') throw new GatehouseError('ERR_INTERNAL', 'sealPrivateKey needs a private key');
  const plain = privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    return seal(kek, SEAL_AAD.signingKey(name), plain);
  } finally {
    plain.fill(0);
  }
}
