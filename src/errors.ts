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
  ERR_STORE_PERMISSIONS: { status: 500, summary: 'The embedded store folder or a file in it is writable by other users.' },
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
  ERR_ADMIN_FORBIDDEN: { status: 403, summary: 'The caller lacks the gatehouse role this admin API needs.' },
  // proxy
  ERR_PATH_REJECTED: { status: 400, summary: 'The request path is not in canonical form (dot segments, encoded separators, control characters, over-long...).' },
  ERR_HEADERS_TOO_LARGE: { status: 431, summary: 'The request headers are larger than 16 KiB.' },
  ERR_ROUTE_NOT_FOUND: { status: 404, summary: 'No route is configured for the Host the request names.' },
  ERR_UPGRADE_REFUSED: { status: 400, summary: 'An Upgrade to anything but WebSocket (h2c, TLS...) is refused: the gateway speaks HTTP/1.1 and WebSocket only.' },
  ERR_HEADER_REJECTED: { status: 400, summary: 'A request header name has an underscore (CGI-style servers would read it as another header); the route refuses such headers.' },
  ERR_CERT_EXPIRED: { status: 401, summary: 'The client certificate of this connection has passed its notAfter; the connection is closed.' },
  ERR_CERT_REQUIRED: { status: 401, summary: 'The service listener needs a client certificate from the Gatehouse CA.' },
  ERR_CERT_INVALID: { status: 401, summary: 'The client certificate does not carry exactly one SPIFFE ID of this trust domain.' },
  ERR_UPSTREAM_UNAVAILABLE: { status: 502, summary: 'The upstream could not be reached, refused the connection or failed TLS verification.' },
  ERR_UPSTREAM_TIMEOUT: { status: 504, summary: 'The upstream did not answer in time.' },
  ERR_TLS_HANDSHAKE_FAILED: { status: 400, summary: 'The TLS handshake failed (no common protocol, a client certificate that does not verify, or the client left); the connection is destroyed.' },
  ERR_TLS_HANDSHAKE_TIMEOUT: { status: 408, summary: 'The TLS handshake did not finish within the listener\'s handshakeTimeout; the connection is destroyed.' },
  ERR_HEADERS_TIMEOUT: { status: 408, summary: 'The request headers did not arrive within the listener\'s headersTimeout.' },
  ERR_TOO_MANY_CONNECTIONS: { status: 429, summary: 'This client address already holds the listener\'s maxPerAddress connections; the new one is destroyed at once.' },
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
  // authenticate
  ERR_SESSION_REQUIRED: { status: 401, summary: 'No session: sign in first (browsers are redirected to the login page).' },
  ERR_SESSION_EXPIRED: { status: 401, summary: 'The session ended (idle or absolute timeout, logout, user disabled) or is unknown: sign in again.' },
  ERR_STEP_UP_REQUIRED: { status: 401, summary: 'This route needs a recent WebAuthn assertion: confirm with the security key again.' },
  ERR_LOGIN_EXPIRED: { status: 401, summary: 'The sign-in in progress is unknown, finished or expired: start again.' },
  ERR_LOGIN_FACTOR_ORDER: { status: 409, summary: 'This factor is not the next one the sign-in expects.' },
  ERR_WEBAUTHN_CHALLENGE: { status: 401, summary: 'The WebAuthn challenge is unknown, expired or already used.' },
  ERR_WEBAUTHN_ORIGIN: { status: 401, summary: 'The WebAuthn response comes from an origin that is not configured.' },
  ERR_WEBAUTHN_RP_ID: { status: 401, summary: 'The WebAuthn response is for another relying party ID.' },
  ERR_WEBAUTHN_USER_VERIFICATION: { status: 401, summary: 'The authenticator did not verify the user (no fingerprint, face or PIN): user verification is required.' },
  ERR_WEBAUTHN_INVALID: { status: 401, summary: 'The WebAuthn response is malformed or its signature does not verify.' },
  ERR_WEBAUTHN_UNKNOWN_CREDENTIAL: { status: 401, summary: 'The credential is not registered to this user.' },
  ERR_WEBAUTHN_COUNTER: { status: 401, summary: 'The signature counter went backwards: the authenticator may be cloned; the credential is now locked.' },
  ERR_WEBAUTHN_CREDENTIAL_LOCKED: { status: 403, summary: 'The credential is locked (counter regression); enroll a new one.' },
  ERR_WEBAUTHN_AAGUID: { status: 403, summary: 'This authenticator model (AAGUID) is not on the allow-list.' },
  ERR_WEBAUTHN_ATTESTATION: { status: 403, summary: 'The attestation statement does not verify to a trusted root (none, self or software attestation refused).' },
  ERR_TOTP_INVALID: { status: 401, summary: 'The one-time code is wrong or outside the time window.' },
  ERR_TOTP_REPLAY: { status: 401, summary: 'This one-time code (time step) was already used.' },
  ERR_TOTP_NOT_ENROLLED: { status: 403, summary: 'No OTP token is assigned to this user.' },
  ERR_TOTP_IMPORT_INVALID: { status: 400, summary: 'The seed file is not valid PSKC XML or serial,secret CSV.' },
  ERR_TOTP_IMPORT_ENCRYPTED: { status: 400, summary: 'The PSKC file holds encrypted seeds Gatehouse cannot decrypt; export it unencrypted.' },
  ERR_TOTP_TOKEN_UNKNOWN: { status: 404, summary: 'No imported OTP token has this serial.' },
  ERR_TOTP_TOKEN_ASSIGNED: { status: 409, summary: 'The OTP token is already assigned to a user.' },
  ERR_TOTP_SEED_UNSEALABLE: { status: 500, summary: 'A stored OTP seed cannot be opened with this KEK (another KEK, tampered, or moved).' },
  ERR_USER_INVALID: { status: 400, summary: 'A user id or role is malformed (roles are namespace:role).' },
  ERR_USER_EXISTS: { status: 409, summary: 'A user with this id already exists.' },
  ERR_USER_NOT_FOUND: { status: 404, summary: 'No user has this id.' },
  ERR_USER_LOCKED: { status: 429, summary: 'Too many failed sign-in attempts: the user is locked for a while.' },
  ERR_USER_DISABLED: { status: 403, summary: 'The user is disabled.' },
  ERR_ENROLLMENT_INVALID: { status: 401, summary: 'The enrollment link is unknown, expired or already used.' },
  ERR_ORIGIN_REFUSED: { status: 403, summary: 'The request Origin is missing or not an allowed origin of this host (CSRF protection).' },
  ERR_REDIRECT_REFUSED: { status: 400, summary: 'The return address is not a same-host path or a configured route host (open redirect refused).' },
  ERR_RATE_LIMITED: { status: 429, summary: 'Too many requests from this address to the login endpoints.' },
  ERR_FORWARD_AUTH_REFUSED: { status: 403, summary: 'The forward-auth endpoint answers only the configured front proxies, with X-Forwarded-Host and X-Forwarded-Uri.' },
  ERR_ACR_INSUFFICIENT: { status: 403, summary: 'The route demands a higher assurance level (acr) than this session\'s sign-in proved.' },
  ERR_TOTP_TOKEN_REQUIRED: { status: 403, summary: 'Enrollment needs a hardware OTP token assigned first: software seeds are off (totp.allowSoftware).' },
  ERR_TOTP_TOKEN_NOT_ASSIGNED: { status: 409, summary: 'The OTP token is not assigned to anyone.' },
  ERR_CREDENTIAL_NOT_FOUND: { status: 404, summary: 'The user has no security key with this id (or the prefix matches several).' },
  // audit
  ERR_AUDIT_CHAIN_BROKEN: { status: 500, summary: 'audit verify found a break in an audit chain (edited, deleted, reordered, inserted, truncated, or a bad checkpoint), or a chain no longer holds what another chain witnessed or the earlier receipt recorded.' },
  ERR_AUDIT_CHAIN_FORKED: { status: 409, summary: 'Another process appended to this replica\'s audit chain, or its last record does not verify; the writer continued in a fresh chain.' },
  ERR_AUDIT_SPOOL_FULL: { status: 507, summary: 'Audit events were dropped: the memory queue or the spool file is full.' },
  ERR_AUDIT_SPOOL_INVALID: { status: 500, summary: 'The audit spool file cannot be created, read or trusted.' },
  ERR_AUDIT_KEYS_INVALID: { status: 400, summary: 'The audit keys given to verify cannot be read or hold no Ed25519 key.' },
  ERR_AUDIT_TIME_UNMAPPED: { status: 404, summary: 'No audit checkpoint maps this time to a store revision.' },
  ERR_AUDIT_EXPORT_FAILED: { status: 502, summary: 'The syslog collector could not be reached, refused the connection, or failed or stalled mid-export.' },
  ERR_AUDIT_CHAIN_RESTARTED: { status: 409, summary: 'This replica\'s audit chain no longer holds what was signed about it (deleted, truncated or replaced), or another chain of the replica exists; the writer continued in a fresh chain whose first event names the older head.' },
  ERR_AUDIT_RECEIPT_INVALID: { status: 400, summary: 'The audit receipt given to verify cannot be read, is not a receipt, or cannot be written.' },
  // revocation
  ERR_REVOCATION_INVALID: { status: 400, summary: 'A revocation names an unknown kind, a malformed id or a bad reason.' },
  ERR_REVOCATION_FORBIDDEN: { status: 403, summary: 'Revoking through the admin API needs the gatehouse:security-admin role.' },
  ERR_SESSION_REVOKED: { status: 401, summary: 'The session has been revoked.' },
  ERR_USER_REVOKED: { status: 403, summary: 'The user has been revoked.' },
  ERR_SERVICE_REVOKED: { status: 403, summary: 'The service (its SPIFFE ID) has been revoked.' },
  ERR_REVOCATION_NOT_FOUND: { status: 404, summary: 'Nothing of this kind and id is revoked: there is nothing to lift.' },
  ERR_REVOCATION_PERMANENT: { status: 409, summary: 'A certificate revocation is final and cannot be lifted.' },
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
