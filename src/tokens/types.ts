// Types and constants shared by the token operations (see DESIGN.md, "Tokens").
// What a token is (claims, typ, size and lifetime limits) is defined once, in the SDK's
// token-checks.ts, which imports nothing from the gateway.
import { MAX_TOKEN_BYTES, MAX_TTL_SECONDS, TOKEN_TYP, type GatehouseClaims } from '../sdk/token-checks.js';

/**
 * Signing keys: one key per kid, each bound to a lease that ends at its expireAt; and the
 * rotation pointer `{kid}` of the newest key, which rotations compare-and-swap on.
 */
export { SIGNING_KEY_PREFIX, SIGNING_POINTER_KEY } from '../store/keys.js';

export const TOKEN_LIMITS = {
  /** Default token lifetime (DESIGN.md: 5 minutes). */
  defaultTtlSeconds: 300,
  /** Longest lifetime anyone may mint; keys stay published this long after they stop signing. */
  maxTtlSeconds: MAX_TTL_SECONDS,
  /** Clock skew tolerated on exp / nbf (and added to a retired key's grace). */
  clockSkewSeconds: 30,
  /** Tokens longer than this are refused before they are parsed. */
  maxTokenBytes: MAX_TOKEN_BYTES,
  /** Default rotation period. */
  rotateAfterMs: 24 * 3_600_000,
  /** A new key is published this long before it signs, so verifiers holding a cached JWKS see it first. */
  prepublishMs: 10 * 60_000,
  /** JWKS Cache-Control max-age: well below prepublishMs. */
  jwksMaxAgeSeconds: 300,
} as const;

export { TOKEN_TYP };

/** A public Ed25519 JWK as published. */
export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

/** The value stored at /gatehouse/keys/signing/<kid>. Times are ms since the epoch. */
export interface StoredSigningKey {
  format: 1;
  kid: string;
  alg: 'EdDSA';
  crv: 'Ed25519';
  publicJwk: PublicJwk;
  /** The PKCS#8 private key sealed under the KEK with the kid as AAD (see sealPrivateKey). */
  sealedPrivateKey: string;
  createdAt: number;
  /** From here on it may sign (createdAt + prepublish, so it is published first). */
  activateAt: number;
  /** From here on it no longer signs (moved earlier to the next key's activateAt when one is rotated in). */
  retireAt: number;
  /** retireAt + max ttl + skew: no token it signed is valid after this; it is unpublished and its lease deletes it. */
  expireAt: number;
}

/** The value stored at /gatehouse/keys/signing-current. */
export interface SigningPointer {
  kid: string;
}

/** What mint() puts in a token (besides iss, iat, nbf, exp, jti). */
export interface MintInput {
  /** SPIFFE ID of a service, or a user id. */
  subject: string;
  /** The upstream's SPIFFE ID: the only audience. */
  audience: string;
  /** The target namespace. */
  namespace: string;
  /** Only the roles that apply to this audience. */
  roles: readonly string[];
  /** RFC 8176 authentication methods (people). */
  amr?: readonly string[];
  acr?: string;
  /** Session id (people). */
  sid?: string;
  /** base64url SHA-256 of the caller's DER certificate: binds the token (cnf.x5t#S256, RFC 8705). */
  certThumbprint?: string;
  /** Lifetime in whole seconds, 1..900 (default: the service's ttl). */
  ttlSeconds?: number;
}

export interface MintedToken {
  /** The compact JWS. Never log it. */
  token: string;
  jti: string;
  kid: string;
  /** ms since the epoch (exp * 1000). */
  expiresAt: number;
  /** Whole seconds left, as RFC 6749 expires_in. */
  expiresIn: number;
  /** True when the token came from the mint cache. */
  cached: boolean;
}

/** The claims of a verified token (the SDK's type: one definition for both verifiers). */
export type TokenClaims = GatehouseClaims;

export interface VerifyOptions {
  /** The audience this verifier serves (an upstream's SPIFFE ID). */
  audience: string;
  /** Thumbprint of the client certificate on this connection; a bound token must match it. */
  certThumbprint?: string;
  /** Refuse tokens without cnf (the service listener). Requires certThumbprint. */
  requireBinding?: boolean;
  /** The namespace the token must name. */
  namespace?: string;
}

export interface VerifiedToken {
  claims: TokenClaims;
  kid: string;
  /** True when the token's verification came from the cache. */
  cached: boolean;
}

/** Random bytes; injected in tests. */
export type RandomSource = (size: number) => Uint8Array;
