// Revocation records (DESIGN.md, "Keys in the store": revoked/<kind>/<id>) and the bus subjects
// they are broadcast on. The store is the authority; the bus only makes replicas hear sooner.
import { jsonCodec, storeKeys, type RecordCodec } from '../store/keys.js';

// Where revocations live: the store's one key layout (src/store/keys.ts).
export { REVOKED_PREFIX } from '../store/keys.js';
/** Bus subjects: revocation.<kind>, and revocation.lifted.<kind> for a lift; every replica subscribes to revocation.> */
export const REVOCATION_SUBJECT_PREFIX = 'revocation.';
export const LIFT_SUBJECT_PREFIX = 'revocation.lifted.';
export const REVOCATION_PATTERN = 'revocation.>';

export const REVOCATION_KINDS = ['session', 'user', 'token', 'cert', 'service'] as const;
export type RevocationKind = (typeof REVOCATION_KINDS)[number];

export function isRevocationKind(v: unknown): v is RevocationKind {
  return typeof v === 'string' && (REVOCATION_KINDS as readonly string[]).includes(v);
}

/**
 * The value at /gatehouse/revoked/<kind>/<id> (for cert: the existing CertRevocation shape,
 * written by revokeCertificate) and the body of every revocation.<kind> bus message.
 */
export interface RevocationRecord {
  format: 1;
  kind: RevocationKind;
  /** session: sid; user: user id; token: jti; cert: serial (lowercase hex); service: SPIFFE ID. */
  id: string;
  reason: string;
  /** ISO 8601. */
  revokedAt: string;
  /** Who asked: `cli`, `local-operator`, `user:<id>` (admin API). */
  by: string;
  /** ISO 8601 end of the record's lease, or null: no lease (user, service). */
  expiresAt: string | null;
  /** session: the user it belongs to (their cached tokens are dropped). */
  subject?: string;
}

/** Tokens live at most this long (tokens.maxTtlSeconds) plus clock skew; a token revocation lasts that long. */
export const TOKEN_MAX_LIFE_MS = (900 + 30) * 1000;
/** Added to every lease: a replica whose clock runs behind still refuses. */
export const REVOCATION_SKEW_MS = 60_000;

/** `revoked/<kind>/<url-encoded id>` (storeKeys.revoked, for the kinds there are). */
export const revokedKey: (kind: RevocationKind, id: string) => string = storeKeys.revoked;

/** A revocation record as revoke() writes it (not the certificate kind's: that is pki's CertRevocation). */
export const revocationCodec: RecordCodec<RevocationRecord> = jsonCodec<RevocationRecord>('revocation', (v) =>
  isRevocationKind(v.kind) && typeof v.id === 'string' && typeof v.revokedAt === 'string' ? undefined : 'not a revocation record (kind, id, revokedAt)');

/**
 * The body of a revocation.lifted.<kind> message: the record at revoked/<kind>/<id> that was
 * deleted. Nested under `lift`, so a replica that predates lifts reads it as no revocation.
 */
export interface RevocationLift {
  format: 1;
  lift: {
    kind: RevocationKind;
    id: string;
    /** The lifted record's revokedAt: a replica drops what it holds up to it, and any older message. */
    revokedAt: string;
    liftedAt: string;
    by: string;
  };
}
