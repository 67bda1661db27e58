// Decoding stored signing keys (the store is not trusted to hold well-formed values) and the
// lifecycle arithmetic every replica must agree on.
import { createHash } from 'node:crypto';
import { GatehouseError } from '../../errors.js';
import { text, type KeyValue } from '../../store/index.js';
import { jsonCodec } from '../../store/keys.js';
import { SIGNING_KEY_PREFIX, TOKEN_LIMITS, type PublicJwk, type SigningPointer, type StoredSigningKey } from '../types.js';

/** How long a key stays published after it stops signing: the longest token it can have signed, plus skew. */
export const RETIRED_GRACE_MS = (TOKEN_LIMITS.maxTtlSeconds + TOKEN_LIMITS.clockSkewSeconds) * 1000;

const KID = /^[A-Za-z0-9_-]{16,64}$/;
const signingKeyJson = jsonCodec<Partial<StoredSigningKey>>('signing key');
const pointerJson = jsonCodec<Partial<SigningPointer>>('signing key pointer');
const B64URL_32 = /^[A-Za-z0-9_-]{43}$/;

/** RFC 7638 thumbprint of an Ed25519 public key: the kid names the key itself. */
export function jwkThumbprint(x: string): string {
  return createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
}

export function isKid(value: unknown): value is string {
  return typeof value === 'string' && KID.test(value);
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

/** Parses /gatehouse/keys/signing/<kid>; throws ERR_STORE_CORRUPT naming the key for anything else. */
export function decodeSigningKey(kv: KeyValue): StoredSigningKey {
  const key = text(kv.key);
  const kid = key.slice(SIGNING_KEY_PREFIX.length);
  const corrupt = (why: string): GatehouseError => new GatehouseError('ERR_STORE_CORRUPT', `${key}: ${why}`, { details: { kid } });
  const v = signingKeyJson.decode(kv);
  if (v instanceof GatehouseError) throw new GatehouseError('ERR_STORE_CORRUPT', v.message, { cause: v.cause, details: { kid } });
  if (v.format !== 1) throw corrupt('not a signing key record');
  if (v.kid !== kid || !isKid(kid)) throw corrupt('kid does not match the key name');
  if (v.alg !== 'EdDSA' || v.crv !== 'Ed25519') throw corrupt('not an Ed25519 key');
  const jwk: Partial<PublicJwk> | undefined = v.publicJwk;
  if (jwk?.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || !B64URL_32.test(jwk.x) || jwk.kid !== kid) throw corrupt('malformed public key');
  if (jwkThumbprint(jwk.x) !== kid) throw corrupt('kid is not the thumbprint of the public key');
  if (typeof v.sealedPrivateKey !== 'string') throw corrupt('no sealed private key');
  if (!isTime(v.createdAt) || !isTime(v.activateAt) || !isTime(v.retireAt) || !isTime(v.expireAt)) throw corrupt('malformed times');
  if (!(v.createdAt <= v.activateAt && v.activateAt <= v.retireAt && v.retireAt + RETIRED_GRACE_MS <= v.expireAt)) throw corrupt('times out of order');
  return {
    format: 1,
    kid,
    alg: 'EdDSA',
    crv: 'Ed25519',
    publicJwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, alg: 'EdDSA', use: 'sig' },
    sealedPrivateKey: v.sealedPrivateKey,
    createdAt: v.createdAt,
    activateAt: v.activateAt,
    retireAt: v.retireAt,
    expireAt: v.expireAt,
  };
}

export function decodePointer(kv: KeyValue | undefined): SigningPointer | undefined {
  const v = kv === undefined ? undefined : pointerJson.decode(kv);
  return v === undefined || v instanceof GatehouseError || !isKid(v.kid) ? undefined : { kid: v.kid };
}

/** Whole seconds for a lease that must outlive `untilMs` (rounded up, plus one for the store's own rounding). */
export function leaseSeconds(untilMs: number, now: number): number {
  return Math.max(1, Math.ceil((untilMs - now) / 1000) + 1);
}
