// The JWKS served at /.well-known/jwks.json, and how long verifiers may cache it.
import { TOKEN_LIMITS, type PublicJwk, type StoredSigningKey } from './types.js';

export interface Jwks {
  keys: PublicJwk[];
}

/** Every published key's public half (newest first); never anything private. */
export function buildJwks(published: readonly StoredSigningKey[]): Jwks {
  return { keys: published.map((r) => ({ kty: 'OKP', crv: 'Ed25519', x: r.publicJwk.x, kid: r.kid, alg: 'EdDSA', use: 'sig' })) };
}

/**
 * Cache-Control for the JWKS. A new key is published prepublishMs before it signs; a verifier
 * that caches the set for at most half of that has fetched the new key before the first token
 * it signs arrives (and an unknown kid makes the SDK refetch anyway).
 */
export function jwksCacheControl(prepublishMs: number = TOKEN_LIMITS.prepublishMs): string {
  const maxAge = Math.min(TOKEN_LIMITS.jwksMaxAgeSeconds, Math.floor(prepublishMs / 2000));
  return maxAge > 0 ? `public, max-age=${maxAge}` : 'no-cache';
}
