// Gatehouse's JWKS, fetched and cached the way Gatehouse asks (Cache-Control max-age), with a
// refetch when a token names an unknown kid — at most once per minRefetchIntervalMs, so a flood
// of made-up kids cannot turn into a flood of requests.
import http from 'node:http';
import https from 'node:https';
import { webcrypto } from 'node:crypto';
import { TokenVerificationError } from './errors.js';

export type VerifyKey = webcrypto.CryptoKey;

/** The part of a fetch Response the cache reads (the global fetch fits). */
export interface JwksResponse {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}
export type JwksFetch = (url: string, init: { signal: AbortSignal; headers: Record<string, string> }) => Promise<JwksResponse>;

/** TLS for fetching the JWKS from Gatehouse: its CA, and a client certificate when it asks for one (the mTLS listener). */
export interface JwksTlsOptions {
  ca?: string | Buffer | readonly (string | Buffer)[];
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify the server certificate against, when it differs from the URL host. */
  servername?: string;
}

export interface JwksCacheOptions {
  jwksUrl: string;
  fetch?: JwksFetch;
  tls?: JwksTlsOptions;
  now: () => number;
  /** Unknown kids trigger at most one refetch per this interval (default 30 s). Also the shortest cache time. */
  minRefetchIntervalMs?: number;
  /** Longest time a JWKS is trusted without refetching, whatever the server says (default 1 h). */
  maxCacheMs?: number;
  /** Cache time when the server sends no max-age (default 5 min). */
  defaultCacheMs?: number;
  /** Keep using the last good JWKS this long past its freshness when Gatehouse cannot be reached (default 1 h). */
  maxStaleMs?: number;
  timeoutMs?: number;
}

const MAX_JWKS_BYTES = 64 * 1024;
const B64URL_32 = /^[A-Za-z0-9_-]{43}$/;

function unavailable(message: string, cause?: unknown): TokenVerificationError {
  return new TokenVerificationError('ERR_TOKEN_JWKS_UNAVAILABLE', message, cause === undefined ? {} : { cause });
}

/** A GET over node:http(s) with the given TLS options; the body is capped. */
function nodeFetch(tls: JwksTlsOptions | undefined): JwksFetch {
  return (url, init) =>
    new Promise<JwksResponse>((resolve, reject) => {
      const u = new URL(url);
      const common = { method: 'GET', headers: init.headers, signal: init.signal };
      const onResponse = (res: http.IncomingMessage): void => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_JWKS_BYTES) {
            res.destroy(unavailable(`the JWKS is larger than ${MAX_JWKS_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: { get: (name) => { const v = res.headers[name.toLowerCase()]; return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v; } },
            text: () => Promise.resolve(body),
          });
        });
      };
      const req = u.protocol === 'https:'
        ? https.request(u, {
            ...common,
            ...(tls?.ca === undefined ? {} : { ca: tls.ca as string | Buffer | (string | Buffer)[] }),
            ...(tls?.cert === undefined ? {} : { cert: tls.cert }),
            ...(tls?.key === undefined ? {} : { key: tls.key }),
            ...(tls?.servername === undefined ? {} : { servername: tls.servername }),
            agent: false,
          }, onResponse)
        : http.request(u, { ...common, agent: false }, onResponse);
      req.on('error', reject);
      req.end();
    });
}

/** max-age from Cache-Control, or undefined; no-store / no-cache count as 0. */
export function maxAgeMs(cacheControl: string | null): number | undefined {
  if (cacheControl === null) return undefined;
  const directives = cacheControl.toLowerCase().split(',').map((d) => d.trim());
  if (directives.includes('no-store') || directives.includes('no-cache')) return 0;
  for (const d of directives) {
    const m = /^max-age=(\d{1,9})$/.exec(d);
    if (m !== null) return Number(m[1]) * 1000;
  }
  return undefined;
}

interface Snapshot {
  keys: Map<string, VerifyKey>;
  freshUntil: number;
  fetchedAt: number;
}

export class JwksCache {
  readonly #url: string;
  readonly #fetch: JwksFetch;
  readonly #now: () => number;
  readonly #minRefetchMs: number;
  readonly #maxCacheMs: number;
  readonly #defaultCacheMs: number;
  readonly #maxStaleMs: number;
  readonly #timeoutMs: number;
  #snapshot: Snapshot | undefined;
  #lastAttempt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<Snapshot> | undefined;
  #fetches = 0;

  constructor(options: JwksCacheOptions) {
    const u = new URL(options.jwksUrl);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError('jwksUrl must be an http(s) URL');
    this.#url = u.href;
    this.#fetch = options.fetch ?? nodeFetch(options.tls);
    this.#now = options.now;
    this.#minRefetchMs = options.minRefetchIntervalMs ?? 30_000;
    this.#maxCacheMs = options.maxCacheMs ?? 3_600_000;
    this.#defaultCacheMs = options.defaultCacheMs ?? 300_000;
    this.#maxStaleMs = options.maxStaleMs ?? 3_600_000;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
  }

  /** How many times the JWKS was fetched (successfully or not). */
  get fetches(): number {
    return this.#fetches;
  }

  /** The key for kid, fetching when the cache is stale or (rate-limited) when kid is unknown. Undefined: no such key. */
  async key(kid: string): Promise<VerifyKey | undefined> {
    const now = this.#now();
    let snap = this.#snapshot;
    if (snap === undefined || now >= snap.freshUntil) {
      try {
        snap = await this.#refresh();
      } catch (err) {
        // Gatehouse unreachable: the last good set still serves for a while.
        if (snap === undefined || now >= snap.freshUntil + this.#maxStaleMs) throw err;
      }
    } else if (!snap.keys.has(kid) && now - this.#lastAttempt >= this.#minRefetchMs) {
      try {
        snap = await this.#refresh();
      } catch {
        // keep the fresh set; the kid is simply unknown
      }
    }
    return snap.keys.get(kid);
  }

  /** Fetches now; rejects with ERR_TOKEN_JWKS_UNAVAILABLE. */
  async refresh(): Promise<void> {
    await this.#refresh();
  }

  /** Concurrent callers share one request. */
  #refresh(): Promise<Snapshot> {
    this.#inflight ??= this.#load().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #load(): Promise<Snapshot> {
    this.#lastAttempt = this.#now();
    this.#fetches++;
    let res: JwksResponse;
    let body: string;
    try {
      res = await this.#fetch(this.#url, { signal: AbortSignal.timeout(this.#timeoutMs), headers: { accept: 'application/json' } });
      body = await res.text();
    } catch (cause) {
      throw unavailable(`cannot fetch the JWKS from ${this.#url}`, cause);
    }
    if (res.status !== 200) throw unavailable(`the JWKS endpoint answered ${res.status}`);
    if (body.length > MAX_JWKS_BYTES) throw unavailable(`the JWKS is larger than ${MAX_JWKS_BYTES} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (cause) {
      throw unavailable('the JWKS is not JSON', cause);
    }
    const list = (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list)) throw unavailable('the JWKS has no keys array');
    const keys = new Map<string, VerifyKey>();
    for (const item of list as unknown[]) {
      if (typeof item !== 'object' || item === null) continue;
      const jwk = item as Record<string, unknown>;
      // Only Ed25519 signing keys are taken; anything else in the set is ignored.
      if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || !B64URL_32.test(jwk.x)) continue;
      if (typeof jwk.kid !== 'string' || jwk.kid.length === 0 || jwk.d !== undefined) continue;
      if ((jwk.alg !== undefined && jwk.alg !== 'EdDSA') || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
      try {
        keys.set(jwk.kid, await webcrypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, { name: 'Ed25519' }, false, ['verify']));
      } catch {
        // not a valid point: skip it
      }
    }
    if (keys.size === 0) throw unavailable('the JWKS holds no Ed25519 key');
    const now = this.#now();
    const age = Math.min(this.#maxCacheMs, Math.max(this.#minRefetchMs, maxAgeMs(res.headers.get('cache-control')) ?? this.#defaultCacheMs));
    const snap: Snapshot = { keys, fetchedAt: now, freshUntil: now + age };
    this.#snapshot = snap;
    return snap;
  }
}
