// A new Ed25519 signing key, sealed for the store. The kid is its RFC 7638 thumbprint.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { jwkThumbprint, RETIRED_GRACE_MS } from './lib/key-record.js';
import { sealPrivateKey } from './seal-private-key.js';
import type { StoredSigningKey } from './types.js';

export interface CreateSigningKeyOptions {
  kek: KeyObject;
  /** ms since the epoch. */
  createdAt: number;
  /** When it starts signing (createdAt, or later so verifiers see it published first). */
  activateAt: number;
  /** When it stops signing at the latest; expireAt follows as retireAt + 900 s + 30 s. */
  retireAt: number;
}

export function createSigningKey(options: CreateSigningKeyOptions): { record: StoredSigningKey; privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error('Ed25519 public key without x');
  const kid = jwkThumbprint(x);
  const record: StoredSigningKey = {
    format: 1,
    kid,
    alg: 'EdDSA',
    crv: 'Ed25519',
    publicJwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' },
    sealedPrivateKey: sealPrivateKey(options.kek, kid, privateKey),
    createdAt: options.createdAt,
    activateAt: options.activateAt,
    retireAt: options.retireAt,
    expireAt: options.retireAt + RETIRED_GRACE_MS,
  };
  return { record, privateKey };
}
