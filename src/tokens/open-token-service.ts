// The one object the gateway wires: keys, minting, verification and the JWKS together.
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { FollowerReporter } from '../store/mirror.js';
import type { Store } from '../store/index.js';
import { buildJwks, jwksCacheControl, type Jwks } from './jwks.js';
import { KeyRing, type KeyRingStats, type RotateResult } from './key-ring.js';
import { Minter, type MintStats } from './mint.js';
import { Verifier, type VerifyStats } from './verify.js';
import type { MintInput, MintedToken, RandomSource, TokenClaims, VerifiedToken, VerifyOptions } from './types.js';

export interface TokenServiceOptions {
  store: Store;
  clock: Clock;
  /** Where the signing-key follower reports unreadable records and lost watches. */
  follower?: FollowerReporter;
  /** From loadKek(). */
  kek: KeyObject;
  /** The iss of every token: this gateway's URL, e.g. https://gatehouse.example.org. */
  issuer: string;
  /** Default token lifetime, 1..900 s (default 300). */
  ttlSeconds?: number;
  /** Rotation period (default 24 h). */
  rotateAfterMs?: number;
  /** How long a new key is published before it signs (default 10 min, or rotateAfterMs / 4 if less). */
  prepublishMs?: number;
  random?: RandomSource;
  /** Sizes of the mint and verify caches (default 10,000 each). */
  cacheSize?: number;
  /** Revocation check run on every verify (cached or not). */
  isRevoked?: (claims: TokenClaims) => boolean;
  /** Problems that do not stop the service (a key this replica cannot unseal, a failed rotation): log them. */
  onError?: (err: GatehouseError) => void;
}

export interface TokenServiceStats {
  keys: KeyRingStats;
  mint: MintStats;
  verify: VerifyStats;
}

export interface TokenService {
  /** Mints (or reuses) a token; throws ERR_TOKEN_MINT_INVALID, ERR_TOKEN_BAD_TTL, ERR_TOKEN_UNAVAILABLE. */
  mint(input: MintInput): Promise<MintedToken>;
  /** Verifies a token; every refusal is a GatehouseError with status 401 and an ERR_TOKEN_* code. */
  verify(token: string, options: VerifyOptions): Promise<VerifiedToken>;
  /** The body of /.well-known/jwks.json. */
  jwks(): Jwks;
  /** Its Cache-Control header value. */
  readonly jwksCacheControl: string;
  /** Drops every cached minted token and verification of a subject (call on revocation). */
  forgetSubject(subject: string): void;
  /** Drops one token (by jti) from both caches (call on revocation of a jti). */
  forgetToken(jti: string): void;
  /** Rotates now (the CLI's `tokens rotate`); normally the schedule does it. */
  rotate(): Promise<RotateResult>;
  stats(): TokenServiceStats;
  close(): Promise<void>;
}

function assertIssuer(issuer: unknown): string {
  let url: URL;
  try {
    url = new URL(String(issuer));
  } catch {
    throw new GatehouseError('ERR_CONFIG_INVALID', 'tokens: issuer must be an absolute https:// (or http://) URL');
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.hash !== '' || url.search !== '' || url.username !== '' || url.password !== '') {
    throw new GatehouseError('ERR_CONFIG_INVALID', 'tokens: issuer must be an https:// URL without query, fragment or credentials');
  }
  return issuer as string;
}

export async function openTokenService(options: TokenServiceOptions): Promise<TokenService> {
  const issuer = assertIssuer(options.issuer);
  let minter: Minter | undefined;
  let verifier: Verifier | undefined;
  const ring = await KeyRing.open({
    store: options.store,
    clock: options.clock,
    ...(options.follower !== undefined ? { follower: options.follower } : {}),
    kek: options.kek,
    ...(options.rotateAfterMs === undefined ? {} : { rotateAfterMs: options.rotateAfterMs }),
    ...(options.prepublishMs === undefined ? {} : { prepublishMs: options.prepublishMs }),
    ...(options.onError === undefined ? {} : { onError: options.onError }),
    onChange: ({ removed }) => {
      // A key that vanished takes every cached token it signed with it.
      if (removed.length > 0) {
        minter?.clear();
        verifier?.clear();
      }
    },
  });
  try {
    const common = { ring, clock: options.clock, issuer, ...(options.cacheSize === undefined ? {} : { cacheSize: options.cacheSize }) };
    minter = new Minter({
      ...common,
      ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
      ...(options.random === undefined ? {} : { random: options.random }),
    });
    verifier = new Verifier({ ...common, ...(options.isRevoked === undefined ? {} : { isRevoked: options.isRevoked }) });
  } catch (err) {
    await ring.close();
    throw err;
  }
  const m = minter;
  const v = verifier;
  let closed = false;
  const closedError = (): GatehouseError => new GatehouseError('ERR_TOKEN_UNAVAILABLE', 'the token service is closed');

  return {
    mint: (input) => (closed ? Promise.reject(closedError()) : m.mint(input)),
    verify: (token, verifyOptions) => (closed ? Promise.reject(closedError()) : v.verify(token, verifyOptions)),
    jwks: () => buildJwks(ring.published()),
    jwksCacheControl: jwksCacheControl(ring.prepublishMs),
    forgetSubject(subject) {
      m.forgetSubject(subject);
      v.forgetSubject(subject);
    },
    forgetToken(jti) {
      m.forgetToken(jti);
      v.forgetToken(jti);
    },
    rotate: () => ring.rotate({ force: true }),
    stats: () => ({ keys: ring.stats(), mint: m.stats(), verify: v.stats() }),
    async close() {
      if (closed) return;
      closed = true;
      m.clear();
      v.clear();
      await ring.close();
    },
  };
}
