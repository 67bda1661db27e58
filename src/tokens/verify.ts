// Verification of a Gatehouse token, check by check; every refusal is a 401 with its own code.
//
//   1. size: at most 8 KiB, before anything is parsed
//   2. header: three segments, the first a base64url JSON object
//   3. header: no jku / x5u / jwk / x5c / crit / zip (keys never come from the token)
//   4. alg: EdDSA, pinned; typ: at+jwt; a kid; then payload and a 64-byte signature in base64url
//   5. kid: names a published key (a key past its expireAt is not published)
//   6. signature, iss, exp, nbf (30 s skew, on the injected clock) — jose
//   7. claim shapes and lifetime (exp - iat <= 900 s)
//   8. aud, then ns, then cnf.x5t#S256 against this connection's certificate
//   9. not revoked (the isRevoked hook)
// A verified token is cached by its SHA-256 until it expires; a hit repeats 5 (key still
// published), the exp check and 8-9, never the signature.
import { createHash } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { GatehouseError, isGatehouseError, type ErrorCode } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { KeyRing } from './key-ring.js';
import { TaggedLru } from './lib/lru.js';
import { TOKEN_LIMITS, TOKEN_TYP, type TokenClaims, type VerifiedToken, type VerifyOptions } from './types.js';

export interface VerifierOptions {
  ring: KeyRing;
  clock: Clock;
  /** The only accepted iss. */
  issuer: string;
  /** Most verified tokens kept (default 10,000). */
  cacheSize?: number;
  /** Revocation: checked on every verify, cached or not. */
  isRevoked?: (claims: TokenClaims) => boolean;
}

export interface VerifyStats {
  verified: number;
  cacheHits: number;
  refused: number;
  cacheSize: number;
}

/** Header parameters that would make a verifier fetch or trust key material named by the token itself. */
export const REFUSED_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit', 'zip'] as const;

const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** base64url of a 64-byte Ed25519 signature. */
const SIGNATURE_CHARS = 86;

function refuse(code: ErrorCode, message: string, cause?: unknown): GatehouseError {
  return new GatehouseError(code, message, cause === undefined ? {} : { cause });
}

/** Steps 1-4: returns the kid, or throws the first problem. */
export function inspectToken(token: unknown): { kid: string } {
  if (typeof token !== 'string' || token.length === 0) throw refuse('ERR_TOKEN_INVALID', 'no token');
  if (token.length > TOKEN_LIMITS.maxTokenBytes) throw refuse('ERR_TOKEN_TOO_LARGE', `token is longer than ${TOKEN_LIMITS.maxTokenBytes} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3) throw refuse('ERR_TOKEN_INVALID', 'a token has three dot-separated segments');
  const [h, p, s] = parts as [string, string, string];
  if (!SEGMENT.test(h)) throw refuse('ERR_TOKEN_INVALID', 'the header is not base64url');
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  } catch (cause) {
    throw refuse('ERR_TOKEN_INVALID', 'the header is not JSON', cause);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw refuse('ERR_TOKEN_INVALID', 'the header is not a JSON object');
  const hdr = header as Record<string, unknown>;
  for (const name of REFUSED_HEADERS) {
    if (Object.hasOwn(hdr, name)) throw refuse('ERR_TOKEN_HEADER_REFUSED', `the "${name}" header is refused`);
  }
  if (hdr.alg !== 'EdDSA') throw refuse('ERR_TOKEN_ALGORITHM', `alg ${typeof hdr.alg === 'string' ? JSON.stringify(hdr.alg.slice(0, 20)) : typeof hdr.alg} is not allowed; only EdDSA`);
  if (hdr.typ !== TOKEN_TYP) throw refuse('ERR_TOKEN_INVALID', `typ must be ${TOKEN_TYP}`);
  if (typeof hdr.kid !== 'string' || hdr.kid.length === 0) throw refuse('ERR_TOKEN_UNKNOWN_KEY', 'the token names no kid');
  // Only now the rest: an alg:none token (empty signature) is reported as the algorithm it is.
  if (!SEGMENT.test(p) || !SEGMENT.test(s)) throw refuse('ERR_TOKEN_INVALID', 'a token segment is not base64url');
  if (s.length !== SIGNATURE_CHARS) throw refuse('ERR_TOKEN_INVALID', 'the signature is not 64 bytes');
  return { kid: hdr.kid };
}

/** Maps jose's failures to Gatehouse codes. */
function fromJose(err: unknown): GatehouseError {
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return refuse('ERR_TOKEN_SIGNATURE', 'the token signature does not verify', err);
  if (err instanceof joseErrors.JWTExpired) return refuse('ERR_TOKEN_EXPIRED', 'the token has expired', err);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') return refuse('ERR_TOKEN_NOT_YET_VALID', 'the token is not valid yet', err);
    if (err.claim === 'iss' && err.reason === 'check_failed') return refuse('ERR_TOKEN_ISSUER', 'the token was issued by someone else', err);
    if (err.claim === 'aud' && err.reason === 'check_failed') return refuse('ERR_TOKEN_AUDIENCE', 'the token is for another audience', err);
    return refuse('ERR_TOKEN_INVALID', `claim ${JSON.stringify(err.claim)} is ${err.reason}`, err);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) return refuse('ERR_TOKEN_ALGORITHM', 'the token algorithm is not allowed', err);
  if (err instanceof joseErrors.JOSEError) return refuse('ERR_TOKEN_INVALID', 'the token is malformed', err);
  // jose throws TypeError for claims of the wrong type (a string exp, ...).
  if (err instanceof TypeError) return refuse('ERR_TOKEN_INVALID', 'the token has a malformed claim', err);
  return new GatehouseError('ERR_INTERNAL', 'token verification failed unexpectedly', { cause: err });
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Step 7: the claims Gatehouse mints, with the types it mints them with. */
export function toClaims(p: JWTPayload): TokenClaims {
  const bad = (claim: string): GatehouseError => refuse('ERR_TOKEN_INVALID', `claim ${claim} is missing or malformed`);
  if (typeof p.iss !== 'string') throw bad('iss');
  if (typeof p.sub !== 'string' || p.sub.length === 0) throw bad('sub');
  if (typeof p.aud !== 'string') throw bad('aud');
  if (typeof p.ns !== 'string' || p.ns.length === 0) throw bad('ns');
  if (!isStringArray(p.roles)) throw bad('roles');
  if (typeof p.jti !== 'string' || p.jti.length === 0) throw bad('jti');
  for (const c of ['iat', 'nbf', 'exp'] as const) if (typeof p[c] !== 'number' || !Number.isSafeInteger(p[c])) throw bad(c);
  const { iat, nbf, exp } = p as { iat: number; nbf: number; exp: number };
  if (exp - iat > TOKEN_LIMITS.maxTtlSeconds || nbf < iat || exp <= nbf) throw refuse('ERR_TOKEN_INVALID', `the token lifetime is not within 1..${TOKEN_LIMITS.maxTtlSeconds} s`);
  const claims: TokenClaims = { iss: p.iss, sub: p.sub, aud: p.aud, ns: p.ns, roles: p.roles, jti: p.jti, iat, nbf, exp };
  if (p.amr !== undefined) {
    if (!isStringArray(p.amr)) throw bad('amr');
    claims.amr = p.amr;
  }
  if (p.acr !== undefined) {
    if (typeof p.acr !== 'string') throw bad('acr');
    claims.acr = p.acr;
  }
  if (p.sid !== undefined) {
    if (typeof p.sid !== 'string') throw bad('sid');
    claims.sid = p.sid;
  }
  if (p.cnf !== undefined) {
    const t = (p.cnf as Record<string, unknown> | null)?.['x5t#S256'];
    if (typeof p.cnf !== 'object' || p.cnf === null || typeof t !== 'string') throw bad('cnf');
    claims.cnf = { 'x5t#S256': t };
  }
  return claims;
}

/** Step 8: what depends on who asks (the same for a cached token). */
export function checkFor(claims: TokenClaims, options: VerifyOptions): void {
  if (claims.aud !== options.audience) throw refuse('ERR_TOKEN_AUDIENCE', 'the token is for another audience');
  if (options.namespace !== undefined && claims.ns !== options.namespace) throw refuse('ERR_TOKEN_NAMESPACE', 'the token is for another namespace');
  const bound = claims.cnf?.['x5t#S256'];
  if (bound !== undefined) {
    // RFC 8705 §3: a bound token is only good with the certificate it is bound to.
    if (options.certThumbprint === undefined) throw refuse('ERR_TOKEN_BINDING', 'the token is bound to a client certificate and none was presented');
    if (bound !== options.certThumbprint) throw refuse('ERR_TOKEN_BINDING', 'the token is bound to another client certificate');
  } else if (options.requireBinding === true) {
    throw refuse('ERR_TOKEN_BINDING', 'an unbound token is not accepted here; it must carry cnf.x5t#S256');
  }
}

interface CachedClaims {
  claims: TokenClaims;
  kid: string;
}

export class Verifier {
  readonly #ring: KeyRing;
  readonly #clock: Clock;
  readonly #issuer: string;
  readonly #isRevoked: (claims: TokenClaims) => boolean;
  readonly #cache: TaggedLru<CachedClaims>;
  #verified = 0;
  #hits = 0;
  #refused = 0;

  constructor(options: VerifierOptions) {
    this.#ring = options.ring;
    this.#clock = options.clock;
    this.#issuer = options.issuer;
    this.#isRevoked = options.isRevoked ?? (() => false);
    this.#cache = new TaggedLru(options.cacheSize ?? 10_000);
  }

  async verify(token: string, options: VerifyOptions): Promise<VerifiedToken> {
    try {
      return await this.#verify(token, options);
    } catch (err) {
      this.#refused++;
      throw err;
    }
  }

  /** Drops the cached verifications of a subject's tokens. */
  forgetSubject(subject: string): number {
    return this.#cache.deleteTag(`sub:${subject}`);
  }

  /** Drops the cached verification of one token. */
  forgetToken(jti: string): number {
    return this.#cache.deleteTag(`jti:${jti}`);
  }

  clear(): void {
    this.#cache.clear();
  }

  stats(): VerifyStats {
    return { verified: this.#verified, cacheHits: this.#hits, refused: this.#refused, cacheSize: this.#cache.size };
  }

  async #verify(token: string, options: VerifyOptions): Promise<VerifiedToken> {
    if (typeof token === 'string' && token.length > TOKEN_LIMITS.maxTokenBytes) inspectToken(token); // too large: refused before hashing
    if (options.requireBinding === true && options.certThumbprint === undefined) {
      throw new GatehouseError('ERR_TOKEN_BINDING', 'binding is required but no client certificate was given');
    }
    const now = this.#clock.now();
    const skew = TOKEN_LIMITS.clockSkewSeconds * 1000;
    const id = typeof token === 'string' ? createHash('sha256').update(token).digest('base64url') : '';
    const hit = id === '' ? undefined : this.#cache.get(id);
    if (hit !== undefined) {
      if (now < hit.claims.exp * 1000 + skew && this.#ring.publishedKey(hit.kid) !== undefined) {
        this.#hits++;
        return this.#accept(hit, options, true);
      }
      this.#cache.delete(id);
    }

    const { kid } = inspectToken(token);
    const key = this.#ring.publishedKey(kid);
    if (key === undefined) throw refuse('ERR_TOKEN_UNKNOWN_KEY', 'the token kid names no published key');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key.verifyKey, {
        algorithms: ['EdDSA'],
        issuer: this.#issuer,
        typ: TOKEN_TYP,
        clockTolerance: TOKEN_LIMITS.clockSkewSeconds,
        currentDate: new Date(now),
        requiredClaims: ['sub', 'aud', 'jti', 'iat', 'nbf', 'exp'],
      }));
    } catch (err) {
      throw isGatehouseError(err) ? err : fromJose(err);
    }
    const claims = toClaims(payload);
    if (claims.iat * 1000 > now + skew) throw refuse('ERR_TOKEN_NOT_YET_VALID', 'the token was issued in the future');
    this.#verified++;
    const entry: CachedClaims = { claims, kid };
    this.#cache.set(id, entry, [`sub:${claims.sub}`, `jti:${claims.jti}`]);
    return this.#accept(entry, options, false);
  }

  #accept(entry: CachedClaims, options: VerifyOptions, cached: boolean): VerifiedToken {
    checkFor(entry.claims, options);
    if (this.#isRevoked(entry.claims)) throw refuse('ERR_TOKEN_REVOKED', 'the token or its subject has been revoked');
    return { claims: entry.claims, kid: entry.kid, cached };
  }
}
