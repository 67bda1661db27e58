// The audit signing key: one Ed25519 key shared by every replica, sealed under the KEK at
// /gatehouse/keys/audit/<kid> (kid = RFC 7638 thumbprint). The first replica to start creates it
// with a compare-and-swap on /gatehouse/keys/audit-current; the others open that one.
// Sealed with the AAD of "audit/<kid>", so a token signing key copied here does not open.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import { text, type KeyValue, type Store } from '../store/index.js';
import { AUDIT_KEY_POINTER, AUDIT_KEY_PREFIX, decodeOrThrow, jsonCodec, keyName, storeKeys, type RecordCodec } from '../store/keys.js';
import { CONFLICT, retryOnConflict } from '../store/update.js';
import type { Clock } from '../lib/clock.js';
import { openPrivateKey, sealPrivateKey, type PublicJwk } from '../tokens/index.js';
import { jwkThumbprint } from '../tokens/lib/key-record.js';

export { AUDIT_KEY_PREFIX, AUDIT_KEY_POINTER };
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

const auditKeyJson = jsonCodec<Partial<StoredAuditKey>>('audit key');
const pointerJson = jsonCodec<{ kid: string }>('audit key pointer', (v) => (typeof v.kid === 'string' ? undefined : 'no kid'));

/** /gatehouse/keys/audit/<kid>: the kid must be the thumbprint of the public key it names. */
const AUDIT_KEY_RECORD: RecordCodec<StoredAuditKey> = {
  decode(kv: KeyValue) {
    const v = auditKeyJson.decode(kv);
    if (v instanceof GatehouseError) return v;
    const corrupt = (why: string): GatehouseError => new GatehouseError('ERR_STORE_CORRUPT', `${text(kv.key)}: ${why}`);
    const kid = keyName(kv, AUDIT_KEY_PREFIX);
    if (v.format !== 1 || v.kid !== kid) return corrupt('not an audit key record');
    const x = v.publicJwk?.x;
    if (typeof x !== 'string' || !B64URL_32.test(x) || jwkThumbprint(x) !== kid) return corrupt('kid is not the thumbprint of the public key');
    if (typeof v.sealedPrivateKey !== 'string' || typeof v.createdAt !== 'number') return corrupt('malformed');
    return { format: 1, kid, publicJwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' }, sealedPrivateKey: v.sealedPrivateKey, createdAt: v.createdAt };
  },
  encode: (value) => JSON.stringify(value),
};

/** Opens the shared audit key, creating it (once, by compare-and-swap) on an empty store. */
export async function ensureAuditKey(store: Store, kek: KeyObject, clock: Clock): Promise<AuditSigningKey> {
  return retryOnConflict('audit key', async () => {
    const pointer = await store.get(AUDIT_KEY_POINTER);
    if (pointer !== undefined) {
      const { kid } = decodeOrThrow(pointerJson, pointer);
      const kv = await store.get(storeKeys.auditKey(kid));
      if (kv === undefined) throw new GatehouseError('ERR_STORE_CORRUPT', `${AUDIT_KEY_POINTER} names ${kid}, which is not stored`);
      const record = decodeOrThrow(AUDIT_KEY_RECORD, kv);
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
        { op: 'put', key: storeKeys.auditKey(kid), value: AUDIT_KEY_RECORD.encode(record) },
        { op: 'put', key: AUDIT_KEY_POINTER, value: JSON.stringify({ kid }) },
      ],
    );
    // another replica created it first: use theirs
    return r.succeeded ? { kid, privateKey } : CONFLICT;
  });
}

/** Every audit key's public half: the body of /.well-known/gatehouse-audit-keys.json. Keys are never removed, so old checkpoints stay verifiable. */
export async function auditKeysJwks(store: Store): Promise<{ keys: AuditPublicJwk[] }> {
  const r = await store.range({ prefix: AUDIT_KEY_PREFIX });
  return { keys: r.kvs.map((kv) => decodeOrThrow(AUDIT_KEY_RECORD, kv).publicJwk) };
}
