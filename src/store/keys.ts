// Gatehouse's key layout in the store (DESIGN.md, "Keys in the store") and the JSON record
// codecs every part reads its records with. The one place a prefix is spelled: parts import
// their prefixes and key builders from here instead of writing '/gatehouse/...' again, and
// a part that reads another part's records (audit at, the console, revocation) reads them
// through the same names.
import { GatehouseError } from '../errors.js';
import { text } from './bytes.js';
import type { KeyValue } from './types.js';

export const ROOT = '/gatehouse/';

// people (authenticate)
/** `users/<id>` -> UserRecord. */
export const USERS_PREFIX = `${ROOT}users/`;
/** `webauthn/<credentialId, base64url>` -> CredentialRecord. */
export const CREDENTIALS_PREFIX = `${ROOT}webauthn/`;
/** `totp/<userId>` -> the user's OTP token. */
export const TOTP_PREFIX = `${ROOT}totp/`;
/** `totp-tokens/<serial>` -> an imported OTP token. */
export const TOTP_TOKENS_PREFIX = `${ROOT}totp-tokens/`;
/** `sessions/<sha256(session id), hex>`: the id itself is never stored, so a store copy is no cookie jar. */
export const SESSIONS_PREFIX = `${ROOT}sessions/`;
/** `user-sessions/<userId>/<session hash>` -> the session's lease id (so disabling a user finds them). */
export const USER_SESSIONS_PREFIX = `${ROOT}user-sessions/`;
/** `logins/<sha256(login cookie)>`: sign-ins in progress. */
export const LOGINS_PREFIX = `${ROOT}logins/`;
/** `challenges/<sha256(challenge)>`: WebAuthn challenges, single use. */
export const CHALLENGES_PREFIX = `${ROOT}challenges/`;
/** `enrollments/<sha256(token)>`: enrollment links. */
export const ENROLLMENTS_PREFIX = `${ROOT}enrollments/`;
/** `handoffs/<sha256(code)>`: one-time codes handing a session to another route host. */
export const HANDOFFS_PREFIX = `${ROOT}handoffs/`;
/** `regulation/<url-encoded user name>`: failed factor attempts and lockouts. */
export const REGULATION_PREFIX = `${ROOT}regulation/`;

// revocation
/** `revoked/<kind>/<url-encoded id>`. */
export const REVOKED_PREFIX = `${ROOT}revoked/`;
/** `revoked/cert/<serial>`: the certificate kind, which the CRL follows alone. */
export const REVOKED_CERT_PREFIX = `${REVOKED_PREFIX}cert/`;

// keys and the CA
/** `keys/signing/<kid>` -> a token signing key (private half sealed). */
export const SIGNING_KEY_PREFIX = `${ROOT}keys/signing/`;
/** -> {kid}: the key that signs now; rotation is a compare-and-swap on it. */
export const SIGNING_POINTER_KEY = `${ROOT}keys/signing-current`;
/** `keys/audit/<kid>` -> the audit checkpoint key (private half sealed). */
export const AUDIT_KEY_PREFIX = `${ROOT}keys/audit/`;
/** -> {kid}: created once by a compare-and-swap. */
export const AUDIT_KEY_POINTER = `${ROOT}keys/audit-current`;
/** `ca/issued/<serial>` -> what `cert revoke` needs to know about an issued certificate. */
export const CA_ISSUED_PREFIX = `${ROOT}ca/issued/`;

// policy and audit
/** `policy/<namespace>` -> a policy file's source. */
export const POLICY_PREFIX = `${ROOT}policy/`;
/** `audit/<chain>/<seq, 16 digits>`. */
export const AUDIT_PREFIX = `${ROOT}audit/`;
/** `audit-checkpoints/<chain>/<seq, 16 digits>`. */
export const CHECKPOINT_PREFIX = `${ROOT}audit-checkpoints/`;
/** audit-heads/<replica>: the latest checkpoint of the chain that replica writes, without its witness list. */
export const AUDIT_HEAD_PREFIX = `${ROOT}audit-heads/`;

export const storeKeys = {
  user: (id: string): string => USERS_PREFIX + id,
  credential: (credentialId: string): string => CREDENTIALS_PREFIX + credentialId,
  totp: (userId: string): string => TOTP_PREFIX + userId,
  totpToken: (serial: string): string => TOTP_TOKENS_PREFIX + serial,
  session: (hash: string): string => SESSIONS_PREFIX + hash,
  userSessions: (userId: string): string => `${USER_SESSIONS_PREFIX}${userId}/`,
  userSession: (userId: string, hash: string): string => `${USER_SESSIONS_PREFIX}${userId}/${hash}`,
  login: (hash: string): string => LOGINS_PREFIX + hash,
  challenge: (hash: string): string => CHALLENGES_PREFIX + hash,
  enrollment: (hash: string): string => ENROLLMENTS_PREFIX + hash,
  handoff: (hash: string): string => HANDOFFS_PREFIX + hash,
  /** User names are folded to lower case and bounded, so every spelling of one name shares a count. */
  regulation: (username: string): string => REGULATION_PREFIX + encodeURIComponent(username.toLowerCase().slice(0, 128)),
  revoked: (kind: string, id: string): string => `${REVOKED_PREFIX}${kind}/${encodeURIComponent(id)}`,
  revokedCert: (serial: string): string => REVOKED_CERT_PREFIX + serial,
  signingKey: (kid: string): string => SIGNING_KEY_PREFIX + kid,
  auditKey: (kid: string): string => AUDIT_KEY_PREFIX + kid,
  caIssued: (serial: string): string => CA_ISSUED_PREFIX + serial,
  policy: (namespace: string): string => POLICY_PREFIX + namespace,
} as const;

/** The part of a key after its prefix (a session hash, a kid, a user id...). */
export function keyName(kv: KeyValue | string, prefix: string): string {
  return (typeof kv === 'string' ? kv : text(kv.key)).slice(prefix.length);
}

/**
 * Reads and writes one kind of JSON record. decode never throws: it returns the record or an
 * ERR_STORE_CORRUPT naming the key and what is wrong, so a bad record is reported and skipped,
 * never a crash of whoever reads it.
 */
export interface RecordCodec<T> {
  decode(kv: KeyValue): T | GatehouseError;
  encode(value: T): string;
}

export interface JsonCodecOptions {
  /** How a record's key appears in messages (default: its first 200 characters); sessions show only a hash's start. */
  describeKey?: (key: string) => string;
}

/**
 * A codec for records of `what` (for messages): JSON, a JSON object, and `check`'s verdict
 * (undefined when the value is a T, else what is wrong with it).
 */
export function jsonCodec<T>(what: string, check?: (value: Record<string, unknown>) => string | undefined, options: JsonCodecOptions = {}): RecordCodec<T> {
  const describeKey = options.describeKey ?? ((key: string): string => key.slice(0, 200));
  return {
    decode(kv) {
      const corrupt = (why: string, cause?: unknown): GatehouseError =>
        new GatehouseError('ERR_STORE_CORRUPT', `${describeKey(text(kv.key))}: ${why}`, cause === undefined ? {} : { cause });
      let v: unknown;
      try {
        v = JSON.parse(text(kv.value));
      } catch (cause) {
        return corrupt(`${what} is not JSON`, cause);
      }
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return corrupt(`${what} is not a JSON object`);
      const problem = check?.(v as Record<string, unknown>);
      return problem === undefined ? (v as T) : corrupt(`${what}: ${problem}`);
    },
    encode: (value) => JSON.stringify(value),
  };
}

/** decode, throwing its coded error: for reads where a corrupt record must stop the operation. */
export function decodeOrThrow<T>(codec: RecordCodec<T>, kv: KeyValue): T {
  const v = codec.decode(kv);
  if (v instanceof GatehouseError) throw v;
  return v;
}

/** The fields of a primary session record that other parts read (the console, revocation). */
export interface SessionSummaryRecord {
  kind: 'primary';
  sid: string;
  userId: string;
  roles: Record<string, string[]>;
  createdAt: number;
  lastSeen: number;
  expiresAt: number;
  ip: string;
  userAgent: string;
  lease: string;
}

/**
 * A session's key as messages and logs show it: the hash's first 8 characters. The hash stands in
 * for the cookie (whoever holds it can look the session up), so it is never written out whole.
 */
export function describeSessionHash(hash: string): string {
  return `${hash.slice(0, 8)}…`;
}

/** For the codecs of session records: `/gatehouse/sessions/<8 characters>…`. */
export function describeSessionKey(key: string): string {
  return SESSIONS_PREFIX + describeSessionHash(keyName(key, SESSIONS_PREFIX));
}

/**
 * A session record read as a primary's summary; an alias (or anything but a primary) is a
 * coded error too, which callers listing sessions skip. Missing optional fields read as empty.
 */
const sessionJson = jsonCodec<Record<string, unknown>>(
  'session',
  (v) => (v.kind !== 'primary' ? 'not a primary session' : typeof v.sid !== 'string' || typeof v.userId !== 'string' ? 'no sid or user' : undefined),
  { describeKey: describeSessionKey },
);

export const SESSION_SUMMARY: RecordCodec<SessionSummaryRecord> = {
  decode(kv) {
    const r = sessionJson.decode(kv);
    if (r instanceof GatehouseError) return r;
    const num = (k: string): number => (typeof r[k] === 'number' ? r[k] : 0);
    const str = (k: string): string => (typeof r[k] === 'string' ? r[k] : '');
    return {
      kind: 'primary',
      sid: r.sid as string,
      userId: r.userId as string,
      roles: typeof r.roles === 'object' && r.roles !== null && !Array.isArray(r.roles) ? (r.roles as Record<string, string[]>) : {},
      createdAt: num('createdAt'),
      lastSeen: num('lastSeen'),
      expiresAt: num('expiresAt'),
      ip: str('ip'),
      userAgent: str('userAgent'),
      lease: str('lease'),
    };
  },
  encode: (value) => JSON.stringify(value),
};
