// Verifies the token Gatehouse attaches to each request it forwards, in the upstream service.
// The same checks, in the same order and with the same codes, as Gatehouse's own verifier.
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { certThumbprint, type ClientCertificate } from './cert-thumbprint.js';
import { TokenVerificationError, type TokenErrorCode } from './errors.js';
import { JwksCache, type JwksFetch, type JwksTlsOptions } from './jwks-cache.js';

/** The claims Gatehouse mints. Times are seconds since the epoch. */
export interface GatehouseClaims {
  iss: string;
  /** SPIFFE ID of the calling service, or a user id. */
  sub: string;
  /** This service's SPIFFE ID. */
  aud: string;
  /** The namespace the call targets. */
  ns: string;
  /** Roles the caller holds for this service. */
  roles: readonly string[];
  amr?: readonly string[];
  acr?: string;
  sid?: string;
  cnf?: { 'x5t#S256': string };
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
}

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

const MAX_TOKEN_BYTES = 8192;
const MAX_TTL_SECONDS = 900;
const TYP = 'at+jwt';
const REFUSED_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit', 'zip'] as const;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

function refuse(code: TokenErrorCode, message: string, cause?: unknown): TokenVerificationError {
  return new TokenVerificationError(code, message, cause === undefined ? {} : { cause });
}

/** Size, shape, refused headers, alg, typ; returns the kid. */
function inspect(token: unknown): string {
  if (typeof token !== 'string' || token.length === 0) throw refuse('ERR_TOKEN_INVALID', 'no token');
  if (token.length > MAX_TOKEN_BYTES) throw refuse('ERR_TOKEN_TOO_LARGE', `token is longer than ${MAX_TOKEN_BYTES} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3 || !SEGMENT.test(parts[0]!)) throw refuse('ERR_TOKEN_INVALID', 'a token is three base64url segments');
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
  } catch (cause) {
    throw refuse('ERR_TOKEN_INVALID', 'the header is not JSON', cause);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw refuse('ERR_TOKEN_INVALID', 'the header is not a JSON object');
  const h = header as Record<string, unknown>;
  for (const name of REFUSED_HEADERS) if (Object.hasOwn(h, name)) throw refuse('ERR_TOKEN_HEADER_REFUSED', `the "${name}" header is refused`);
  if (h.alg !== 'EdDSA') throw refuse('ERR_TOKEN_ALGORITHM', 'only EdDSA is accepted');
  if (h.typ !== TYP) throw refuse('ERR_TOKEN_INVALID', `typ must be ${TYP}`);
  if (typeof h.kid !== 'string' || h.kid.length === 0) throw refuse('ERR_TOKEN_UNKNOWN_KEY', 'the token names no kid');
  if (!SEGMENT.test(parts[1]!) || !SEGMENT.test(parts[2]!)) throw refuse('ERR_TOKEN_INVALID', 'a token segment is not base64url');
  if (parts[2]!.length !== 86) throw refuse('ERR_TOKEN_INVALID', 'the signature is not 64 bytes');
  return h.kid;
}

function fromJose(err: unknown): TokenVerificationError {
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return refuse('ERR_TOKEN_SIGNATURE', 'the token signature does not verify', err);
  if (err instanceof joseErrors.JWTExpired) return refuse('ERR_TOKEN_EXPIRED', 'the token has expired', err);
  if (err instanceof joseErrors.JWTClaimValidationFailed && err.reason === 'check_failed') {
    if (err.claim === 'nbf') return refuse('ERR_TOKEN_NOT_YET_VALID', 'the token is not valid yet', err);
    if (err.claim === 'iss') return refuse('ERR_TOKEN_ISSUER', 'the token was issued by someone else', err);
    if (err.claim === 'aud') return refuse('ERR_TOKEN_AUDIENCE', 'the token is for another audience', err);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported) return refuse('ERR_TOKEN_ALGORITHM', 'the token algorithm is not allowed', err);
  return refuse('ERR_TOKEN_INVALID', 'the token is malformed', err);
}

function strings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function toClaims(p: JWTPayload): GatehouseClaims {
  const bad = (c: string): TokenVerificationError => refuse('ERR_TOKEN_INVALID', `claim ${c} is missing or malformed`);
  if (typeof p.iss !== 'string') throw bad('iss');
  if (typeof p.sub !== 'string' || p.sub === '') throw bad('sub');
  if (typeof p.aud !== 'string') throw bad('aud');
  if (typeof p.ns !== 'string' || p.ns === '') throw bad('ns');
  if (!strings(p.roles)) throw bad('roles');
  if (typeof p.jti !== 'string' || p.jti === '') throw bad('jti');
  const { iat, nbf, exp } = p;
  if (typeof iat !== 'number' || typeof nbf !== 'number' || typeof exp !== 'number') throw bad('iat/nbf/exp');
  if (exp - iat > MAX_TTL_SECONDS || nbf < iat || exp <= nbf) throw refuse('ERR_TOKEN_INVALID', `the token lifetime is not within 1..${MAX_TTL_SECONDS} s`);
  const claims: GatehouseClaims = { iss: p.iss, sub: p.sub, aud: p.aud, ns: p.ns, roles: p.roles, jti: p.jti, iat, nbf, exp };
  if (p.amr !== undefined) {
    if (!strings(p.amr)) throw bad('amr');
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
    if (typeof t !== 'string') throw bad('cnf');
    claims.cnf = { 'x5t#S256': t };
  }
  return claims;
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
    const kid = inspect(token);
    const key = await jwks.key(kid);
    if (key === undefined) throw refuse('ERR_TOKEN_UNKNOWN_KEY', 'the token kid is not in the JWKS');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['EdDSA'],
        issuer: options.issuer,
        typ: TYP,
        clockTolerance: tolerance,
        currentDate: new Date(now()),
        requiredClaims: ['sub', 'aud', 'jti', 'iat', 'nbf', 'exp'],
      }));
    } catch (err) {
      throw fromJose(err);
    }
    const claims = toClaims(payload);
    if (claims.iat * 1000 > now() + tolerance * 1000) throw refuse('ERR_TOKEN_NOT_YET_VALID', 'the token was issued in the future');
    if (claims.aud !== options.audience) throw refuse('ERR_TOKEN_AUDIENCE', 'the token is for another audience');
    if (options.namespace !== undefined && claims.ns !== options.namespace) throw refuse('ERR_TOKEN_NAMESPACE', 'the token is for another namespace');
    // RFC 8705 §3: a bound token is only good on a connection with the certificate it names.
    const presented = call.certThumbprint ?? (call.clientCertificate === undefined ? undefined : certThumbprint(call.clientCertificate));
    const bound = claims.cnf?.['x5t#S256'];
    if (bound !== undefined) {
      if (presented === undefined) throw refuse('ERR_TOKEN_BINDING', 'the token is bound to a client certificate and none was presented');
      if (bound !== presented) throw refuse('ERR_TOKEN_BINDING', 'the token is bound to another client certificate');
    } else if (options.requireBinding === true) {
      throw refuse('ERR_TOKEN_BINDING', 'an unbound token is not accepted here');
    }
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
