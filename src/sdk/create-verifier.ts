// Verifies the token Gatehouse attaches to each request it forwards, in the upstream service.
// The same checks, in the same order and with the same codes, as Gatehouse's own verifier:
// both run token-checks.ts.
import { certThumbprint, type ClientCertificate } from './cert-thumbprint.js';
import { TokenVerificationError } from './errors.js';
import { JwksCache, type JwksFetch, type JwksTlsOptions } from './jwks-cache.js';
import { checkCaller, inspectToken, verifySigned, type GatehouseClaims, type RefusalCode } from './token-checks.js';

export type { GatehouseClaims } from './token-checks.js';

export interface VerifierOptions {
  /** Gatehouse's https://<gateway>/.well-known/jwks.json. */
  jwksUrl: string;
  /** Gatehouse's issuer URL (the iss of its tokens). */
  issuer: string;
  /** This service's SPIFFE ID. */
  audience: string;
  /** Refuse tokens for any other namespace. */
  namespace?: string;
  /** Refuse tokens that are not bound to a client certificate (use when callers reach you over mTLS). */
  requireBinding?: boolean;
  /** Clock skew tolerated on exp and nbf, 0..30 s (default 30). */
  clockToleranceSeconds?: number;
  /** Alternative to node:https for fetching the JWKS (e.g. globalThis.fetch). */
  fetch?: JwksFetch;
  /** TLS for fetching the JWKS: Gatehouse's CA, and a client certificate for its mTLS listener. */
  tls?: JwksTlsOptions;
  /** Unknown kids trigger at most one JWKS refetch per this interval (default 30 s). */
  minRefetchIntervalMs?: number;
  /** Injected clock, ms since the epoch (tests). */
  now?: () => number;
}

export interface VerifyCallOptions {
  /** The client certificate presented on this connection (`tlsSocket.getPeerCertificate().raw`, PEM, X509Certificate). */
  clientCertificate?: ClientCertificate;
  /** Or its thumbprint, already computed. */
  certThumbprint?: string;
}

export interface TokenVerifier {
  /** Resolves to the claims, or rejects with a TokenVerificationError whose code says why. */
  verify(token: string, options?: VerifyCallOptions): Promise<GatehouseClaims>;
  /** Fetches the JWKS now (e.g. at startup, to fail early). */
  refresh(): Promise<void>;
  /** How many times the JWKS was fetched. */
  readonly jwksFetches: number;
}

function refuse(code: RefusalCode, message: string, cause?: unknown): TokenVerificationError {
  return new TokenVerificationError(code, message, cause === undefined ? {} : { cause });
}

export function createVerifier(options: VerifierOptions): TokenVerifier {
  const now = options.now ?? (() => Date.now());
  const tolerance = options.clockToleranceSeconds ?? 30;
  if (!Number.isInteger(tolerance) || tolerance < 0 || tolerance > 30) throw new RangeError('clockToleranceSeconds must be a whole number from 0 to 30');
  if (typeof options.issuer !== 'string' || options.issuer === '') throw new TypeError('issuer is required');
  if (typeof options.audience !== 'string' || options.audience === '') throw new TypeError('audience is required');
  const jwks = new JwksCache({
    jwksUrl: options.jwksUrl,
    now,
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    ...(options.minRefetchIntervalMs === undefined ? {} : { minRefetchIntervalMs: options.minRefetchIntervalMs }),
  });

  async function verify(token: string, call: VerifyCallOptions = {}): Promise<GatehouseClaims> {
    const kid = inspectToken(token, refuse);
    const key = await jwks.key(kid);
    if (key === undefined) throw refuse('ERR_TOKEN_UNKNOWN_KEY', 'the token kid is not in the JWKS');
    const claims = await verifySigned(token, key, { issuer: options.issuer, clockToleranceSeconds: tolerance, now: now(), refuse });
    checkCaller(claims, {
      audience: options.audience,
      namespace: options.namespace,
      certThumbprint: call.certThumbprint ?? (call.clientCertificate === undefined ? undefined : certThumbprint(call.clientCertificate)),
      requireBinding: options.requireBinding,
    }, refuse);
    return claims;
  }

  return {
    verify,
    refresh: () => jwks.refresh(),
    get jwksFetches() {
      return jwks.fetches;
    },
  };
}

/** The token in an `Authorization: Bearer <token>` header; rejects anything else with ERR_TOKEN_INVALID. */
export function bearerToken(authorization: string | undefined): string {
  const m = authorization === undefined ? null : /^Bearer ([A-Za-z0-9._-]+)$/i.exec(authorization.trim());
  if (m === null) throw refuse('ERR_TOKEN_INVALID', 'no Authorization: Bearer token');
  return m[1]!;
}
