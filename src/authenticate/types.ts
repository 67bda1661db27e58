// People: what authenticate keeps in the store (DESIGN.md, "Keys in the store") and the small
// vocabulary the login flow shares. Times are ms since the epoch (from the injected clock).

// Where these records live: the store's one key layout (src/store/keys.ts).
export {
  USERS_PREFIX, CREDENTIALS_PREFIX, TOTP_PREFIX, TOTP_TOKENS_PREFIX, SESSIONS_PREFIX, USER_SESSIONS_PREFIX,
  LOGINS_PREFIX, CHALLENGES_PREFIX, ENROLLMENTS_PREFIX, HANDOFFS_PREFIX, REGULATION_PREFIX,
} from '../store/keys.js';

export const SESSION_COOKIE = '__Host-gatehouse';
export const LOGIN_COOKIE = '__Host-gatehouse-login';
export const STATE_COOKIE = '__Host-gatehouse-state';

export type Factor = 'webauthn-uv' | 'totp';

/** namespace -> roles held there. */
export type RoleMap = Record<string, string[]>;

export interface UserRecord {
  format: 1;
  id: string;
  roles: RoleMap;
  /** pending: enrollment not finished; active: may sign in; disabled: refused everywhere. */
  status: 'pending' | 'active' | 'disabled';
  /** Registered WebAuthn credential ids (base64url). */
  credentialIds?: string[];
  createdAt: number;
  enrolledAt?: number;
  disabledAt?: number;
}

export interface CredentialRecord {
  format: 1;
  /** base64url credential id. */
  id: string;
  userId: string;
  /** COSE public key, base64url. */
  publicKey: string;
  counter: number;
  aaguid: string;
  fmt: string;
  transports?: string[];
  createdAt: number;
  lastUsedAt?: number;
  /** Set when the counter went backwards (a clone is suspected). */
  lockedAt?: number;
}

export type TotpAlgorithm = 'sha1' | 'sha256' | 'sha512';

export interface TotpParams {
  digits: 6 | 8;
  period: number;
  algorithm: TotpAlgorithm;
}

/** The user's OTP token. */
export interface TotpRecord extends TotpParams {
  format: 1;
  userId: string;
  serial: string;
  /** The seed sealed under the KEK with the serial as AAD (seed.ts). */
  sealedSeed: string;
  /** Last accepted time step: a code for this step or earlier is a replay. */
  lastStep: number;
  assignedAt: number;
}

/** An imported token waiting to be assigned. */
export interface TotpTokenRecord extends TotpParams {
  format: 1;
  serial: string;
  sealedSeed: string;
  importedAt: number;
  assignedTo?: string;
}

export interface SessionRecord {
  format: 1;
  kind: 'primary';
  /** Public session id (not the cookie): goes into tokens as `sid` and into audit events. */
  sid: string;
  userId: string;
  roles: RoleMap;
  amr: string[];
  acr: string;
  credentialId: string;
  /** The host whose cookie holds it. */
  host: string;
  createdAt: number;
  lastSeen: number;
  lastWebAuthnAt: number;
  /** createdAt + absolute timeout. */
  expiresAt: number;
  ip: string;
  userAgent: string;
  lease: string;
}

/** Another route host's cookie for the same session (same lease: they end together). */
export interface SessionAlias {
  format: 1;
  kind: 'alias';
  primary: string;
  host: string;
  createdAt: number;
}

export type StoredSession = SessionRecord | SessionAlias;

export interface LoginRecord {
  format: 1;
  purpose: 'login' | 'step-up';
  username: string;
  /** Where to go afterwards (already checked by safeReturnTo). */
  returnTo: string;
  /** sha256 of the app host's state cookie, for a cross-host handoff. */
  stateDigest?: string;
  factors: Factor[];
  done: Factor[];
  credentialId?: string;
  lastWebAuthnAt?: number;
  /** step-up: the session (hash) to refresh. */
  sessionHash?: string;
  createdAt: number;
}

export interface ChallengeRecord {
  format: 1;
  purpose: 'register' | 'login' | 'step-up';
  userId: string;
  /** The pending sign-in or enrollment it belongs to (hash). */
  bound: string;
  createdAt: number;
}

export interface EnrollmentRecord {
  format: 1;
  userId: string;
  createdAt: number;
  expiresAt: number;
  webauthnDone: boolean;
  /** A seed offered on the page, sealed, until two consecutive codes confirm it. */
  pendingSeed?: { serial: string; sealedSeed: string };
}

export interface HandoffRecord {
  format: 1;
  sessionHash: string;
  host: string;
  path: string;
  stateDigest: string;
  createdAt: number;
}

export interface RegulationRecord {
  format: 1;
  failures: number[];
  lockedUntil?: number;
}

/** RFC 8176 values a factor contributes to `amr`. */
export const AMR: Record<Factor, string[]> = { 'webauthn-uv': ['hwk', 'user'], totp: ['otp'] };

/** NIST SP 800-63B level reached: both factors (hardware key with UV + hardware OTP) is AAL3. */
export function acrOf(done: readonly Factor[]): string {
  if (done.includes('webauthn-uv') && done.includes('totp')) return 'aal3';
  if (done.includes('webauthn-uv')) return 'aal2';
  return 'aal1';
}

export function amrOf(done: readonly Factor[]): string[] {
  const out: string[] = [];
  for (const f of ['webauthn-uv', 'totp'] as const) if (done.includes(f)) out.push(...AMR[f]);
  return out;
}
