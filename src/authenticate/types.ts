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
  enabledAt?: number;
  /** sha256 of the one live enrollment link: a newer link or a finished enrollment voids every other. */
  enrollment?: string;
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
  /**
   * The attestation chained to a webauthn.attestationRoots certificate at registration: the
   * make is proven, not claimed. Absent (older records) counts as not verified.
   */
  attestationVerified?: boolean;
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
  /** hardware: an imported vendor token; software: a seed generated at enrollment (a phone app). */
  kind?: OtpKind;
}

export type OtpKind = 'hardware' | 'software';

/** Records from before `kind`: enrollment named its seeds `enrolled-<user>-…`; the rest were imported. */
export function otpKindOf(t: Pick<TotpRecord, 'kind' | 'serial'>): OtpKind {
  return t.kind ?? (t.serial.startsWith('enrolled-') ? 'software' : 'hardware');
}

/** An imported token waiting to be assigned. */
export interface TotpTokenRecord extends TotpParams {
  format: 1;
  serial: string;
  sealedSeed: string;
  importedAt: number;
  assignedTo?: string;
  /** Last accepted step when it was unassigned: a reassignment keeps refusing codes already used. */
  lastStep?: number;
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
  /** What the factors done proved (absent: not proven). */
  keyAttested?: boolean;
  otpHardware?: boolean;
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
  /** The key registered in this enrollment: stored under webauthn/ only when every factor is done. */
  pendingCredential?: CredentialRecord;
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

/** What a sign-in proved: the factors done, and whether each was proven to be hardware. */
export interface Proofs {
  done: readonly Factor[];
  /** The WebAuthn credential's attestation verified to a trusted root (CredentialRecord.attestationVerified). */
  keyAttested: boolean;
  /** The OTP token is an imported hardware token, not a seed generated for a phone app. */
  otpHardware: boolean;
}

export type Acr = 'aal1' | 'aal2' | 'aal3';
export const ACR_LEVELS: readonly Acr[] = ['aal1', 'aal2', 'aal3'];

/**
 * NIST SP 800-63B level reached (docs/threat-model.md, "acr and amr", is this table):
 * aal3 only with a security key whose make was proven by attestation, with UV, plus a hardware
 * OTP token; any WebAuthn assertion with UV is at least aal2 (a multi-factor cryptographic
 * authenticator); an OTP code alone is aal1.
 */
export function acrOf(p: Proofs): Acr {
  const key = p.done.includes('webauthn-uv');
  const otp = p.done.includes('totp');
  if (key && p.keyAttested && otp && p.otpHardware) return 'aal3';
  if (key) return 'aal2';
  return 'aal1';
}

/**
 * RFC 8176 methods, in a stable order: hwk for a key proven to be hardware, swk for one that is
 * not (an unattested credential, a phone-app seed), user for the UV flag, otp for a code, mfa
 * when both factors were used.
 */
export function amrOf(p: Proofs): string[] {
  const out: string[] = [];
  const add = (...m: string[]): void => {
    for (const v of m) if (!out.includes(v)) out.push(v);
  };
  const key = p.done.includes('webauthn-uv');
  const otp = p.done.includes('totp');
  if (key) add(p.keyAttested ? 'hwk' : 'swk', 'user');
  if (otp) add('otp', ...(p.otpHardware ? [] : ['swk']));
  if (key && otp) add('mfa');
  return out;
}

/** a >= b in the aal order; an unknown level (an older session's) is below everything. */
export function acrSatisfies(have: string, need: Acr): boolean {
  return ACR_LEVELS.indexOf(have as Acr) >= ACR_LEVELS.indexOf(need);
}
