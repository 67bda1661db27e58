// The checks a Gatehouse token must pass, shared by Gatehouse's own verifier (src/tokens/verify.ts)
// and the SDK's (create-verifier.ts), so both refuse the same tokens with the same codes.
// Like the rest of src/sdk it imports only node and jose: each caller passes the error it throws
// (a GatehouseError in the gateway, a TokenVerificationError in the SDK).
//
//   1. size: at most 8 KiB, before anything is parsed
//   2. header: three segments, the first a base64url JSON object
//   3. header: no jku / x5u / jwk / x5c / crit / zip (keys never come from the token)
//   4. alg: EdDSA, pinned; typ: at+jwt; a kid; then payload and a 64-byte signature in base64url
//   5. kid: names a published key (the caller's key lookup)
//   6. signature, iss, exp, nbf (clock tolerance on the caller's clock) — jose
//   7. claim shapes and lifetime (exp - iat <= 900 s), iat not in the future
//   8. aud, then ns, then cnf.x5t#S256 against this connection's certificate
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { webcrypto } from 'node:crypto';
import type { TokenErrorCode } from './errors.js';

/** The JWT header `typ` (RFC 9068 access tokens): keeps other JWS from being accepted as tokens. */
export const TOKEN_TYP = 'at+jwt';
/** Tokens longer than this are refused before they are parsed. */
export const MAX_TOKEN_BYTES = 8192;
/** Longest lifetime Gatehouse mints. */
export const MAX_TTL_SECONDS = 900;
/** Header parameters that would make a verifier fetch or trust key material named by the token itself. */
export const REFUSED_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'crit', 'zip'] as const;

/** The claims Gatehouse mints. Times are seconds since the epoch. */
export interface GatehouseClaims {
  iss: string;
  /** SPIFFE ID of the calling service, or a user id. */
  sub: string;
  /** The upstream's SPIFFE ID. */
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

/** The codes a token can be refused with (every one a 401). */
export type RefusalCode = Exclude<TokenErrorCode, 'ERR_TOKEN_JWKS_UNAVAILABLE'>;
/** Builds the error the caller throws for a refusal. */
export type Refuse = (code: RefusalCode, message: string, cause?: unknown) => Error;

const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** base64url of a 64-byte Ed25519 signature. */
const SIGNATURE_CHARS = 86;

/** Steps 1-4: returns the kid, or throws the first problem. */
export function inspectToken(token: unknown, refuse: Refuse): string {
  if (typeof token !== 'string' || token.length === 0) throw refuse('ERR_TOKEN_INVALID', 'no token');
  if (token.length > MAX_TOKEN_BYTES) throw refuse('ERR_TOKEN_TOO_LARGE', `token is longer than ${MAX_TOKEN_BYTES} bytes`);
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
  return hdr.kid;
}

/** Maps jose's failures to refusal codes; undefined for anything that is not a token problem. */
function fromJose(err: unknown, refuse: Refuse): Error | undefined {
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
  return undefined;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Step 7 (shapes): the claims Gatehouse mints, with the types it mints them with. */
export function parseClaims(p: JWTPayload, refuse: Refuse): GatehouseClaims {
  const bad = (claim: string): Error => refuse('ERR_TOKEN_INVALID', `claim ${claim} is missing or malformed`);
  if (typeof p.iss !== 'string') throw bad('iss');
  if (typeof p.sub !== 'string' || p.sub.length === 0) throw bad('sub');
  if (typeof p.aud !== 'string') throw bad('aud');
  if (typeof p.ns !== 'string' || p.ns.length === 0) throw bad('ns');
  if (!isStringArray(p.roles)) throw bad('roles');
  if (typeof p.jti !== 'string' || p.jti.length === 0) throw bad('jti');
  for (const c of ['iat', 'nbf', 'exp'] as const) if (typeof p[c] !== 'number' || !Number.isSafeInteger(p[c])) throw bad(c);
  const { iat, nbf, exp } = p as { iat: number; nbf: number; exp: number };
  if (exp - iat > MAX_TTL_SECONDS || nbf < iat || exp <= nbf) throw refuse('ERR_TOKEN_INVALID', `the token lifetime is not within 1..${MAX_TTL_SECONDS} s`);
  const claims: GatehouseClaims = { iss: p.iss, sub: p.sub, aud: p.aud, ns: p.ns, roles: p.roles, jti: p.jti, iat, nbf, exp };
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

export interface SignatureCheck {
  /** The only accepted iss. */
  issuer: string;
  /** Skew tolerated on exp, nbf and iat. */
  clockToleranceSeconds: number;
  /** The verifier's clock, ms since the epoch. */
  now: number;
  refuse: Refuse;
  /** The error for a failure that is not a token problem (default: the token is malformed). */
  unexpected?: (err: unknown) => Error;
}

/** Steps 6-7: signature and registered claims (jose), then the claim shapes, lifetime and iat. */
export async function verifySigned(token: string, key: webcrypto.CryptoKey, check: SignatureCheck): Promise<GatehouseClaims> {
  const { refuse, now, clockToleranceSeconds } = check;
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: ['EdDSA'],
      issuer: check.issuer,
      typ: TOKEN_TYP,
      clockTolerance: clockToleranceSeconds,
      currentDate: new Date(now),
      requiredClaims: ['sub', 'aud', 'jti', 'iat', 'nbf', 'exp'],
    }));
  } catch (err) {
    throw fromJose(err, refuse) ?? check.unexpected?.(err) ?? refuse('ERR_TOKEN_INVALID', 'the token is malformed', err);
  }
  const claims = parseClaims(payload, refuse);
  if (claims.iat * 1000 > now + clockToleranceSeconds * 1000) throw refuse('ERR_TOKEN_NOT_YET_VALID', 'the token was issued in the future');
  return claims;
}

export interface CallerCheck {
  /** The audience this verifier serves (an upstream's SPIFFE ID). */
  audience: string;
  /** The namespace the token must name. */
  namespace?: string | undefined;
  /** Thumbprint of the client certificate on this connection. */
  certThumbprint?: string | undefined;
  /** Refuse tokens without cnf. */
  requireBinding?: boolean | undefined;
}

/** Step 8: what depends on who asks (the same for a token whose verification was cached). */
export function checkCaller(claims: GatehouseClaims, caller: CallerCheck, refuse: Refuse): void {
  if (claims.aud !== caller.audience) throw refuse('ERR_TOKEN_AUDIENCE', 'the token is for another audience');
  if (caller.namespace !== undefined && claims.ns !== caller.namespace) throw refuse('ERR_TOKEN_NAMESPACE', 'the token is for another namespace');
  const bound = claims.cnf?.['x5t#S256'];
  if (bound !== undefined) {
    // RFC 8705 §3: a bound token is only good on a connection with the certificate it names.
    if (caller.certThumbprint === undefined) throw refuse('ERR_TOKEN_BINDING', 'the token is bound to a client certificate and none was presented');
    if (bound !== caller.certThumbprint) throw refuse('ERR_TOKEN_BINDING', 'the token is bound to another client certificate');
  } else if (caller.requireBinding === true) {
    throw refuse('ERR_TOKEN_BINDING', 'an unbound token is not accepted here; it must carry cnf.x5t#S256');
  }
}
