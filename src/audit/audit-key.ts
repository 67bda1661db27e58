// The audit signing key: one Ed25519 key shared by every replica, sealed under the KEK at
// /gatehouse/keys/audit/<kid> (kid = RFC 7638 thumbprint). The first replica to start creates it
// with a compare-and-swap on /gatehouse/keys/audit-current; the others open that one.
// Sealed with the AAD of "audit/<kid>", so a token signing key copied here does not open.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import { text, type Store } from '../store/index.js';
import type { Clock } from '../lib/clock.js';
import { openPrivateKey, sealPrivateKey, type PublicJwk } from '../tokens/index.js';
import { jwkThumbprint } from '../tokens/lib/key-record.js';

export const AUDIT_KEY_PREFIX = '/gatehouse/keys/audit/';
export const AUDIT_KEY_POINTER = '/gatehouse/keys/audit-current';
export const AUDIT_KEYS_PATH = '/.well-known/gatehouse-audit-keys.json';

/** The same public Ed25519 JWK shape the token JWKS publishes. */
export type AuditPublicJwk = PublicJwk;

export interface StoredAuditKey {
  format: 1;
  kid: string;
  publicJwk: AuditPublicJwk;
  sealedPrivateKey: string;
  /** ms since the epoch. */
  createdAt: number;
}

export interface AuditSigningKey {
  kid: string;
  privateKey: KeyObject;
}

const sealName = (kid: string): string => `audit/${kid}`;
const B64URL_32 = /^[A-Za-z0-9_-]{43}$/;

function decode(key: string, value: string): StoredAuditKey {
  const corrupt = (why: string): GatehouseError => new GatehouseError('ERR_STORE_CORRUPT', `${key}: ${why}`);
  let v: Partial<StoredAuditKey>;
  try {
    v = JSON.parse(value) as Partial<StoredAuditKey>;
  } catch (cause) {
    throw new GatehouseError('ERR_STORE_CORRUPT', `${key}: not JSON`, { cause });
  }
  const kid = key.slice(AUDIT_KEY_PREFIX.length);
  if (typeof v !== 'object' || v === null || v.format !== 1 || v.kid !== kid) throw corrupt('not an audit key record');
  const x = v.publicJwk?.x;
  if (typeof x !== 'string' || !B64URL_32.test(x) || jwkThumbprint(x) !== kid) throw corrupt('kid is not the thumbprint of the public key');
  if (typeof v.sealedPrivateKey !== 'string' || typeof v.createdAt !== 'number') throw corrupt('malformed');
  return { format: 1, kid, publicJwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' }, sealedPrivateKey: v.sealedPrivateKey, createdAt: v.createdAt };
}

/** Opens the shared audit key, creating it (once, by compare-and-swap) on an empty store. */
export async function ensureAuditKey(store: Store, kek: KeyObject, clock: Clock): Promise<AuditSigningKey> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const pointer = await store.get(AUDIT_KEY_POINTER);
    if (pointer !== undefined) {
      const kid = (JSON.parse(text(pointer.value)) as { kid?: unknown }).kid;
      if (typeof kid !== 'string') throw new GatehouseError('ERR_STORE_CORRUPT', `${AUDIT_KEY_POINTER}: no kid`);
      const kv = await store.get(AUDIT_KEY_PREFIX + kid);
      if (kv === undefined) throw new GatehouseError('ERR_STORE_CORRUPT', `${AUDIT_KEY_POINTER} names ${kid}, which is not stored`);
      const record = decode(AUDIT_KEY_PREFIX + kid, text(kv.value));
      const privateKey = openPrivateKey(kek, sealName(kid), record.sealedPrivateKey);
      return { kid, privateKey };
    }
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const x = publicKey.export({ format: 'jwk' }).x!;
    const kid = jwkThumbprint(x);
    const record: StoredAuditKey = {
      format: 1,
      kid,
      publicJwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' },
      sealedPrivateKey: sealPrivateKey(kek, sealName(kid), privateKey),
      createdAt: clock.now(),
    };
    const r = await store.txn(
      [{ key: AUDIT_KEY_POINTER, target: 'version', op: '==', value: 0 }],
      [
        { op: 'put', key: AUDIT_KEY_PREFIX + kid, value: JSON.stringify(record) },
        { op: 'put', key: AUDIT_KEY_POINTER, value: JSON.stringify({ kid }) },
      ],
    );
    if (r.succeeded) return { kid, privateKey };
    // another replica created it first: use theirs
  }
  throw new GatehouseError('ERR_STORE_CONFLICT', 'could not create or read the audit key');
}

/** Every audit key's public half: the body of /.well-known/gatehouse-audit-keys.json. Keys are never removed, so old checkpoints stay verifiable. */
export async function auditKeysJwks(store: Store): Promise<{ keys: AuditPublicJwk[] }> {
  const r = await store.range({ prefix: AUDIT_KEY_PREFIX });
  return { keys: r.kvs.map((kv) => decode(text(kv.key), text(kv.value)).publicJwk) };
}
