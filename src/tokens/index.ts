// Tokens: signing keys, JWKS, minting and verifying short-lived role-scoped JWTs (DESIGN.md, "Tokens").
//
// The gateway wires one façade:
//
//   const kek = await loadKek({ file: config.tokens.kekFile ?? path.join(config.pki.dir, 'kek'), env: process.env });
//   const tokens = await openTokenService({ store, clock, kek, issuer: 'https://gatehouse.example.org' });
//
//   tokens.mint(input: MintInput): Promise<MintedToken>
//       { subject, audience, namespace, roles, amr?, acr?, sid?, certThumbprint?, ttlSeconds? }
//       -> { token, jti, kid, expiresAt, expiresIn, cached }; reused until < 1/3 of its life is left.
//   tokens.verify(token: string, options: VerifyOptions): Promise<VerifiedToken>
//       { audience, certThumbprint?, requireBinding?, namespace? } -> { claims, kid, cached };
//       every refusal is a GatehouseError, status 401, code ERR_TOKEN_* (docs/errors.md).
//   tokens.jwks(): { keys: PublicJwk[] }        body of GET /.well-known/jwks.json
//   tokens.jwksCacheControl: string             its Cache-Control header
//   tokens.forgetSubject(subject: string): void revocation: empties both caches for a subject
//   tokens.forgetToken(jti: string): void       revocation: empties both caches for one token
//   tokens.rotate(): Promise<RotateResult>      rotate now (normally scheduled every 24 h)
//   tokens.stats(): TokenServiceStats
//   tokens.close(): Promise<void>
//
// Plus two pure helpers: certThumbprint(cert) for cnf.x5t#S256 (RFC 8705), and
// tokenExchange({ form, caller, canReach, rolesFor?, service: tokens }) for
// POST /.gatehouse/token on the mTLS listener (RFC 8693 shape).
export { openTokenService, type TokenService, type TokenServiceOptions, type TokenServiceStats } from './open-token-service.js';
export { loadKek, KEK_ENV, KEK_BYTES, type LoadKekOptions } from './load-kek.js';
export { sealPrivateKey } from './seal-private-key.js';
export { openPrivateKey } from './open-private-key.js';
export { createSigningKey, type CreateSigningKeyOptions } from './create-signing-key.js';
export { KeyRing, type KeyRingOptions, type KeyRingStats, type RingKey, type RotateResult } from './key-ring.js';
export { buildJwks, jwksCacheControl, type Jwks } from './jwks.js';
export { Minter, type MinterOptions, type MintStats } from './mint.js';
export { Verifier, REFUSED_HEADERS, type VerifierOptions, type VerifyStats } from './verify.js';
export { certThumbprint, type CertificateInput } from './cert-thumbprint.js';
export {
  tokenExchange,
  TOKEN_EXCHANGE_GRANT,
  JWT_TOKEN_TYPE,
  type TokenExchangeInput,
  type TokenExchangeCaller,
  type TokenExchangeResult,
  type TokenExchangeSuccess,
  type OAuthErrorCode,
} from './token-exchange.js';
export { RETIRED_GRACE_MS } from './lib/key-record.js';
export * from './types.js';
