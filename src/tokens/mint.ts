// Minting: a short-lived EdDSA JWT for exactly one upstream, reused while it is fresh.
//
// Signing costs ~0.12 ms; the proxy would pay it on every request. A minted token is reused for
// the same (subject, audience, namespace, certificate thumbprint, roles, amr, acr, sid, ttl)
// until less than a third of its life is left, from a bounded LRU. forgetSubject (revocation)
// empties a subject's entries at once, including signatures still in flight.
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { THUMBPRINT } from './cert-thumbprint.js';
import type { KeyRing } from './key-ring.js';
import { TaggedLru } from './lib/lru.js';
import { TOKEN_LIMITS, TOKEN_TYP, type MintInput, type MintedToken, type RandomSource } from './types.js';

export interface MinterOptions {
  ring: KeyRing;
  clock: Clock;
  /** The iss claim: this gateway's issuer URL. */
  issuer: string;
  /** Default lifetime, 1..900 s (default 300). */
  ttlSeconds?: number;
  random?: RandomSource;
  /** Most tokens kept for reuse (default 10,000). */
  cacheSize?: number;
}

export interface MintStats {
  signed: number;
  cacheHits: number;
  cacheSize: number;
}

interface CachedToken {
  token: string;
  jti: string;
  kid: string;
  iat: number;
  exp: number;
}

const MAX_TEXT = 2048;
const MAX_LIST = 64;
const NAMESPACE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function assertTtl(ttl: unknown, what = 'ttlSeconds'): number {
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > TOKEN_LIMITS.maxTtlSeconds) {
    throw new GatehouseError('ERR_TOKEN_BAD_TTL', `${what} must be a whole number of seconds from 1 to ${TOKEN_LIMITS.maxTtlSeconds}, got ${typeof ttl === 'number' ? String(ttl) : typeof ttl}`);
  }
  return ttl;
}

function invalid(field: string, why: string): GatehouseError {
  return new GatehouseError('ERR_TOKEN_MINT_INVALID', `${field} ${why}`, { details: { field } });
}

function isText(v: unknown): v is string {
  // eslint-disable-next-line no-control-regex
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_TEXT && !/[\u0000-\u001f\u007f]/.test(v);
}

function textList(field: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.length > MAX_LIST) throw invalid(field, `must be an array of at most ${MAX_LIST} strings`);
  const out: string[] = [];
  for (const item of v as unknown[]) {
    if (!isText(item)) throw invalid(field, 'must hold only non-empty strings without control characters');
    out.push(item);
  }
  return out;
}

/** Checks and normalises a mint request (roles and amr sorted and deduplicated). */
function normalise(input: MintInput, defaultTtl: number): Required<Pick<MintInput, 'subject' | 'audience' | 'namespace' | 'ttlSeconds'>> & { roles: string[]; amr?: string[]; acr?: string; sid?: string; certThumbprint?: string } {
  if (!isText(input.subject)) throw invalid('subject', 'must be a non-empty string');
  if (!isText(input.audience)) throw invalid('audience', 'must be a non-empty string');
  if (typeof input.namespace !== 'string' || !NAMESPACE.test(input.namespace)) throw invalid('namespace', 'must be a lowercase DNS label');
  const out: ReturnType<typeof normalise> = {
    subject: input.subject,
    audience: input.audience,
    namespace: input.namespace,
    roles: [...new Set(textList('roles', input.roles))].sort(),
    ttlSeconds: input.ttlSeconds === undefined ? defaultTtl : assertTtl(input.ttlSeconds),
  };
  if (input.amr !== undefined) out.amr = [...new Set(textList('amr', input.amr))].sort();
  if (input.acr !== undefined) {
    if (!isText(input.acr)) throw invalid('acr', 'must be a non-empty string');
    out.acr = input.acr;
  }
  if (input.sid !== undefined) {
    if (!isText(input.sid)) throw invalid('sid', 'must be a non-empty string');
    out.sid = input.sid;
  }
  if (input.certThumbprint !== undefined) {
    if (typeof input.certThumbprint !== 'string' || !THUMBPRINT.test(input.certThumbprint)) throw invalid('certThumbprint', 'must be a base64url SHA-256 (43 characters)');
    out.certThumbprint = input.certThumbprint;
  }
  return out;
}

export class Minter {
  readonly #ring: KeyRing;
  readonly #clock: Clock;
  readonly #issuer: string;
  readonly #ttlSeconds: number;
  readonly #random: RandomSource;
  readonly #cache: TaggedLru<CachedToken>;
  readonly #inflight = new Map<string, { promise: Promise<CachedToken>; subject: string; cancelled: boolean }>();
  #signed = 0;
  #hits = 0;

  constructor(options: MinterOptions) {
    this.#ring = options.ring;
    this.#clock = options.clock;
    this.#issuer = options.issuer;
    this.#ttlSeconds = assertTtl(options.ttlSeconds ?? TOKEN_LIMITS.defaultTtlSeconds, 'tokens ttl');
    this.#random = options.random ?? ((n) => randomBytes(n));
    this.#cache = new TaggedLru(options.cacheSize ?? 10_000);
  }

  async mint(input: MintInput): Promise<MintedToken> {
    const n = normalise(input, this.#ttlSeconds);
    const key = JSON.stringify([n.subject, n.audience, n.namespace, n.certThumbprint ?? '', n.roles, n.amr ?? null, n.acr ?? null, n.sid ?? null, n.ttlSeconds]);
    const now = this.#clock.now();

    const hit = this.#cache.get(key);
    if (hit !== undefined) {
      // Fresh: more than a third of its life left, and its key still published.
      if (hit.exp * 1000 - now > ((hit.exp - hit.iat) * 1000) / 3 && this.#ring.publishedKey(hit.kid) !== undefined) {
        this.#hits++;
        return this.#result(hit, now, true);
      }
      this.#cache.delete(key);
    }

    const running = this.#inflight.get(key);
    if (running !== undefined) {
      this.#hits++;
      return this.#result(await running.promise, this.#clock.now(), true);
    }

    const entry = { promise: this.#sign(n, now), subject: n.subject, cancelled: false };
    this.#inflight.set(key, entry);
    try {
      const signed = await entry.promise;
      // Not cached if the subject was forgotten (revoked) while it was being signed.
      if (!entry.cancelled) this.#cache.set(key, signed, [`sub:${n.subject}`, `jti:${signed.jti}`]);
      return this.#result(signed, this.#clock.now(), false);
    } finally {
      if (this.#inflight.get(key) === entry) this.#inflight.delete(key);
    }
  }

  /** Drops every cached token of a subject (revocation). Returns how many. */
  forgetSubject(subject: string): number {
    for (const [key, entry] of this.#inflight) {
      if (entry.subject === subject) {
        entry.cancelled = true;
        this.#inflight.delete(key);
      }
    }
    return this.#cache.deleteTag(`sub:${subject}`);
  }

  /** Drops the cached token with this jti (revocation of one token). */
  forgetToken(jti: string): number {
    return this.#cache.deleteTag(`jti:${jti}`);
  }

  clear(): void {
    for (const entry of this.#inflight.values()) entry.cancelled = true;
    this.#inflight.clear();
    this.#cache.clear();
  }

  stats(): MintStats {
    return { signed: this.#signed, cacheHits: this.#hits, cacheSize: this.#cache.size };
  }

  #result(t: CachedToken, now: number, cached: boolean): MintedToken {
    return { token: t.token, jti: t.jti, kid: t.kid, expiresAt: t.exp * 1000, expiresIn: Math.max(0, t.exp - Math.floor(now / 1000)), cached };
  }

  async #sign(n: ReturnType<typeof normalise>, now: number): Promise<CachedToken> {
    const { kid, key } = this.#ring.signingKey();
    const iat = Math.floor(now / 1000);
    const exp = iat + n.ttlSeconds;
    const jti = Buffer.from(this.#random(16)).toString('base64url');
    const payload: Record<string, unknown> = { iss: this.#issuer, sub: n.subject, aud: n.audience, ns: n.namespace, roles: n.roles };
    if (n.amr !== undefined) payload.amr = n.amr;
    if (n.acr !== undefined) payload.acr = n.acr;
    if (n.sid !== undefined) payload.sid = n.sid;
    if (n.certThumbprint !== undefined) payload.cnf = { 'x5t#S256': n.certThumbprint };
    Object.assign(payload, { jti, iat, nbf: iat, exp });
    const token = await new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', typ: TOKEN_TYP, kid }).sign(key);
    this.#signed++;
    return { token, jti, kid, iat, exp };
  }
}
