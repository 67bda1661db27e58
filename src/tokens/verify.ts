// Verification of a Gatehouse token, check by check; every refusal is a 401 with its own code.
// Steps 1-4 and 6-8 are src/sdk/token-checks.ts, which the SDK's verifier runs too.
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
import { GatehouseError, type ErrorCode } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { checkCaller, inspectToken, verifySigned } from '../sdk/token-checks.js';
import type { KeyRing } from './key-ring.js';
import { TaggedLru } from './lib/lru.js';
import { TOKEN_LIMITS, type TokenClaims, type VerifiedToken, type VerifyOptions } from './types.js';

export { REFUSED_HEADERS } from '../sdk/token-checks.js';

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

function refuse(code: ErrorCode, message: string, cause?: unknown): GatehouseError {
  return new GatehouseError(code, message, cause === undefined ? {} : { cause });
}

const unexpected = (cause: unknown): GatehouseError => new GatehouseError('ERR_INTERNAL', 'token verification failed unexpectedly', { cause });

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
    if (typeof token === 'string' && token.length > TOKEN_LIMITS.maxTokenBytes) inspectToken(token, refuse); // too large: refused before hashing
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

    const kid = inspectToken(token, refuse);
    const key = this.#ring.publishedKey(kid);
    if (key === undefined) throw refuse('ERR_TOKEN_UNKNOWN_KEY', 'the token kid names no published key');
    const claims = await verifySigned(token, key.verifyKey, { issuer: this.#issuer, clockToleranceSeconds: TOKEN_LIMITS.clockSkewSeconds, now, refuse, unexpected });
    this.#verified++;
    const entry: CachedClaims = { claims, kid };
    this.#cache.set(id, entry, [`sub:${claims.sub}`, `jti:${claims.jti}`]);
    return this.#accept(entry, options, false);
  }

  #accept(entry: CachedClaims, options: VerifyOptions, cached: boolean): VerifiedToken {
    checkCaller(entry.claims, options, refuse);
    if (this.#isRevoked(entry.claims)) throw refuse('ERR_TOKEN_REVOKED', 'the token or its subject has been revoked');
    return { claims: entry.claims, kid: entry.kid, cached };
  }
}
