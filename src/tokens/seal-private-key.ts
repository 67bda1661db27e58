// Seals a signing key's private half under the KEK, so a copy of the store alone cannot sign.
import { createCipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import { NONCE_BYTES, SEAL_VERSION, assertKek, sealAad } from './lib/seal.js';

/** AES-256-GCM with a fresh random 96-bit nonce and the kid as AAD. */
export function sealPrivateKey(kek: KeyObject, kid: string, privateKey: KeyObject): string {
  assertKek(kek);
  if (privateKey.type !== 'private') throw new GatehouseError('ERR_INTERNAL', 'sealPrivateKey needs a private key');
  const plain = privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', kek, nonce);
    cipher.setAAD(sealAad(kid));
    const body = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return `${SEAL_VERSION}.${body.toString('base64url')}`;
  } finally {
    plain.fill(0);
  }
}
