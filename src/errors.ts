// Every failure in Gatehouse is a GatehouseError with a stable code and an HTTP status.
// docs/errors.md lists every code below; test/errors.test.ts keeps the two in step.
// This module imports nothing, so every part may depend on it.

export interface ErrorSpec {
  readonly status: number;
  readonly summary: string;
}

export const ERROR_CODES = {
  // generic
  ERR_BAD_REQUEST: { status: 400, summary: 'The request is malformed.' },
  ERR_NOT_FOUND: { status: 404, summary: 'No such resource or route.' },
  ERR_INTERNAL: { status: 500, summary: 'An unexpected failure; details are logged, never returned.' },
  ERR_NOT_READY: { status: 503, summary: 'The gateway is starting or a dependency is down.' },
  ERR_USAGE: { status: 400, summary: 'A CLI command was called with wrong arguments.' },
  // config
  ERR_CONFIG_INVALID: { status: 500, summary: 'The configuration has an unknown key, a wrong type or a bad value.' },
  ERR_CONFIG_NOT_FOUND: { status: 500, summary: 'The configuration file does not exist or cannot be read.' },
  // store
  ERR_STORE_CONFLICT: { status: 409, summary: 'A compare-and-swap failed: the key changed (or exists) since it was read.' },
  ERR_STORE_COMPACTED: { status: 410, summary: 'The requested revision has been compacted away.' },
  ERR_STORE_FUTURE_REVISION: { status: 400, summary: 'The requested revision is newer than the store.' },
  ERR_STORE_KEY_EMPTY: { status: 400, summary: 'An empty key was given.' },
  ERR_STORE_KEY_TOO_LARGE: { status: 413, summary: 'A key is longer than the store allows.' },
  ERR_STORE_VALUE_TOO_LARGE: { status: 413, summary: 'A value is larger than the store allows.' },
  ERR_STORE_TXN_TOO_LARGE: { status: 413, summary: 'A transaction has too many operations or bytes.' },
  ERR_STORE_BAD_ARGUMENT: { status: 400, summary: 'A store call had an invalid argument (range, revision, limit, ttl).' },
  ERR_STORE_LEASE_NOT_FOUND: { status: 404, summary: 'The lease does not exist or has expired.' },
  ERR_STORE_UNAVAILABLE: { status: 503, summary: 'The store cannot be reached or did not answer in time.' },
  ERR_STORE_CLOSED: { status: 503, summary: 'The store was closed.' },
  ERR_STORE_LOCKED: { status: 503, summary: 'Another process holds the embedded store open.' },
  ERR_STORE_CORRUPT: { status: 500, summary: 'The embedded store holds data it cannot decode.' },
  // bus
  ERR_BUS_UNAVAILABLE: { status: 503, summary: 'The bus cannot be reached or did not acknowledge in time.' },
  ERR_BUS_CLOSED: { status: 503, summary: 'The bus was closed.' },
  ERR_BUS_BAD_SUBJECT: { status: 400, summary: 'A subject or subject pattern is malformed.' },
  ERR_BUS_PAYLOAD_TOO_LARGE: { status: 413, summary: 'A bus message is larger than allowed.' },
  ERR_BUS_SEQUENCE_GONE: { status: 410, summary: 'A subscription asked to resume from a sequence the bus no longer retains.' },
  // policy
  ERR_POLICY_INVALID: { status: 400, summary: 'A policy set does not compile; every problem is named as file:line.' },
  ERR_POLICY_NOT_FOUND: { status: 500, summary: 'The policies folder or a policy test file cannot be read.' },
  ERR_POLICY_DENIED: { status: 403, summary: 'Policy does not allow this caller to make this request.' },
  ERR_POLICY_UNAVAILABLE: { status: 503, summary: 'No policy has been loaded yet, so every request is refused.' },
  ERR_POLICY_TEST_FAILED: { status: 400, summary: 'A policy test case did not get the verdict it expects.' },
  // pki
  ERR_PKI_CA_EXISTS: { status: 409, summary: 'A CA already exists in this directory; it is never overwritten.' },
  ERR_PKI_CA_NOT_FOUND: { status: 500, summary: 'The CA certificate or key file does not exist.' },
  ERR_PKI_CA_INVALID: { status: 500, summary: 'The CA files are corrupt, not a CA, or the key does not match the certificate.' },
  ERR_PKI_CA_EXPIRED: { status: 500, summary: 'The CA certificate is not valid now, so it cannot issue.' },
  ERR_PKI_KEY_PERMISSIONS: { status: 500, summary: 'A private key file is readable by group or others.' },
  ERR_PKI_BAD_TTL: { status: 400, summary: 'A certificate lifetime or renewal setting is not a positive duration.' },
  ERR_PKI_BAD_HOST: { status: 400, summary: 'A server certificate host is neither an IP address nor a DNS name.' },
  ERR_SPIFFE_ID_INVALID: { status: 400, summary: 'A SPIFFE ID, trust domain, namespace or service name is malformed.' },
  ERR_CERT_REVOKED: { status: 401, summary: 'The client certificate has been revoked.' },
  ERR_CERT_UNKNOWN_SERIAL: { status: 404, summary: 'No certificate with this serial is in the issued index.' },
  ERR_CERT_REVOCATION_INVALID: { status: 400, summary: 'A revocation has a malformed serial, reason or expiry.' },
  // admin
  ERR_ADMIN_UNAUTHORIZED: { status: 401, summary: 'The admin API call lacks a valid credential.' },
  // proxy
  ERR_PATH_REJECTED: { status: 400, summary: 'The request path is not in canonical form (dot segments, encoded separators, control characters, over-long...).' },
  ERR_HEADERS_TOO_LARGE: { status: 431, summary: 'The request headers are larger than 16 KiB.' },
  ERR_ROUTE_NOT_FOUND: { status: 404, summary: 'No route is configured for the Host the request names.' },
  ERR_CERT_REQUIRED: { status: 401, summary: 'The service listener needs a client certificate from the Gatehouse CA.' },
  ERR_CERT_INVALID: { status: 401, summary: 'The client certificate does not carry exactly one SPIFFE ID of this trust domain.' },
  ERR_UPSTREAM_UNAVAILABLE: { status: 502, summary: 'The upstream could not be reached, refused the connection or failed TLS verification.' },
  ERR_UPSTREAM_TIMEOUT: { status: 504, summary: 'The upstream did not answer in time.' },
  // tokens
  ERR_TOKEN_INVALID: { status: 401, summary: 'The token is not a well-formed Gatehouse JWT (segments, base64url, JSON, typ, required claims, lifetime).' },
  ERR_TOKEN_TOO_LARGE: { status: 401, summary: 'The token is longer than 8 KiB; it is refused before parsing.' },
  ERR_TOKEN_ALGORITHM: { status: 401, summary: 'The token is not signed with EdDSA (alg none, HS256, RS256, ...).' },
  ERR_TOKEN_HEADER_REFUSED: { status: 401, summary: 'The token header carries jku, x5u, jwk, x5c, crit or zip; they are never followed.' },
  ERR_TOKEN_UNKNOWN_KEY: { status: 401, summary: 'The token kid names no published signing key (unknown, or retired past its grace).' },
  ERR_TOKEN_SIGNATURE: { status: 401, summary: 'The token signature does not verify (tampered header, payload or signature).' },
  ERR_TOKEN_ISSUER: { status: 401, summary: 'The token iss is not this gateway.' },
  ERR_TOKEN_AUDIENCE: { status: 401, summary: 'The token aud is not the expected audience.' },
  ERR_TOKEN_EXPIRED: { status: 401, summary: 'The token exp has passed (beyond the allowed clock skew).' },
  ERR_TOKEN_NOT_YET_VALID: { status: 401, summary: 'The token nbf is in the future (beyond the allowed clock skew).' },
  ERR_TOKEN_NAMESPACE: { status: 401, summary: 'The token ns is not the expected namespace.' },
  ERR_TOKEN_BINDING: { status: 401, summary: 'The token cnf does not match the client certificate, or an unbound token was given where binding is required.' },
  ERR_TOKEN_REVOKED: { status: 401, summary: 'The token, or its subject, has been revoked.' },
  ERR_TOKEN_BAD_TTL: { status: 400, summary: 'A token lifetime is not a whole number of seconds from 1 to 900.' },
  ERR_TOKEN_MINT_INVALID: { status: 400, summary: 'A mint request has a missing or malformed claim value.' },
  ERR_TOKEN_UNAVAILABLE: { status: 503, summary: 'No signing key is available (keys not loaded yet, store unreachable) or the token service is closed.' },
  ERR_TOKEN_JWKS_UNAVAILABLE: { status: 503, summary: 'The verifier SDK cannot fetch or parse the JWKS.' },
  ERR_TOKEN_KEK_NOT_FOUND: { status: 500, summary: 'No key-encryption key: GATEHOUSE_KEK is unset and the KEK file does not exist.' },
  ERR_TOKEN_KEK_INVALID: { status: 500, summary: 'The key-encryption key is not base64 of exactly 32 bytes, or its file is not a regular file.' },
  ERR_TOKEN_KEK_PERMISSIONS: { status: 500, summary: 'The KEK file is readable or writable by group or others.' },
  ERR_TOKEN_KEY_UNSEALABLE: { status: 500, summary: 'A stored signing key cannot be opened with this KEK (another KEK, tampered, or moved under another kid).' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface GatehouseErrorOptions {
  cause?: unknown;
  /** True when the same call may succeed if retried (timeouts, leader changes). */
  retryable?: boolean;
  /** Safe, non-secret details that may be shown to the caller. */
  details?: Readonly<Record<string, unknown>>;
}

export class GatehouseError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message?: string, options: GatehouseErrorOptions = {}) {
    super(message ?? ERROR_CODES[code].summary, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatehouseError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }

  /** The body sent to clients: never a stack, never a cause. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isGatehouseError(err: unknown, code?: ErrorCode): err is GatehouseError {
  return err instanceof GatehouseError && (code === undefined || err.code === code);
}
