// Revoke anything: the record goes to the store first (the authority, with a lease that ends
// when the revoked thing would have expired anyway), then to the bus (best effort, retried):
// every replica hears through whichever path arrives first.
import { GatehouseError } from '../errors.js';
import { Delays, sleep } from '../lib/backoff.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';
import { decodeOrThrow } from '../store/keys.js';
import type { Bus } from '../bus/index.js';
import { canonicalSerial, lookupIssued, parseSpiffeId, revokeCertificate, REVOCATION_REASONS, type RevocationReason } from '../pki/index.js';
import { endSession, endSessionsOfUser, findSessionBySid } from './session-records.js';
import { REVOCATION_SKEW_MS, REVOCATION_SUBJECT_PREFIX, TOKEN_MAX_LIFE_MS, isRevocationKind, revocationCodec, revokedKey, type RevocationKind, type RevocationRecord } from './types.js';

export interface RevokeRequest {
  kind: RevocationKind;
  id: string;
  reason?: string;
  /** Who asked (audited, stored). */
  by: string;
  /** cert only: the certificate's notAfter when the issued index does not know the serial. */
  notAfter?: string;
  /** Revoke what checkRevocationTarget would refuse (an unknown user, a foreign trust domain). */
  force?: boolean;
}

export interface RevokeResult {
  record: RevocationRecord;
  /** False when it was already revoked: the first record stands (and is broadcast again). */
  created: boolean;
  key: string;
  /** The bus sequence of the broadcast, or null when the bus could not take it (replicas learn through the store). */
  published: number | null;
  /** session: whether a live session had this sid; user: how many sessions were ended. */
  sessionsEnded: number;
}

const USER_ID = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const SID = /^[A-Za-z0-9_-]{16,64}$/;
const JTI = /^[A-Za-z0-9_-]{8,128}$/;

function bad(message: string): GatehouseError {
  return new GatehouseError('ERR_REVOCATION_INVALID', message);
}

/** Validates and canonicalises an id of a kind; throws ERR_REVOCATION_INVALID. */
export function canonicalId(kind: RevocationKind, id: unknown): string {
  if (typeof id !== 'string' || id === '' || id.length > 512) throw bad(`${kind}: an id is required`);
  switch (kind) {
    case 'session':
      if (!SID.test(id)) throw bad('session: expected the session sid (base64url), never the cookie');
      return id;
    case 'user':
      if (!USER_ID.test(id)) throw bad('user: a user id is 1-63 of a-z 0-9 . _ -');
      return id;
    case 'token':
      if (!JTI.test(id)) throw bad('token: expected a jti (base64url)');
      return id;
    case 'cert': {
      const s = canonicalSerial(id);
      if (s === undefined) throw bad('cert: not a certificate serial (hex, at most 20 bytes)');
      return s;
    }
    case 'service':
      try {
        parseSpiffeId(id);
      } catch {
        throw bad('service: expected spiffe://<trust-domain>/ns/<namespace>/sa/<service>');
      }
      return id;
  }
}

/** The kind, canonical id and reason of a revocation or a lift; throws ERR_REVOCATION_INVALID. */
export function parseRevocationTarget(args: unknown): { kind: RevocationKind; id: string; reason: string; a: Record<string, unknown> } {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw bad('expected {kind, id, reason?}');
  const a = args as Record<string, unknown>;
  if (!isRevocationKind(a.kind)) throw bad('kind must be session, user, token, cert or service');
  const reason = a.reason ?? 'unspecified';
  if (typeof reason !== 'string' || reason.length > 200 || [...reason].some((ch) => ch.charCodeAt(0) < 0x20)) throw bad('reason must be text of at most 200 characters');
  return { kind: a.kind, id: canonicalId(a.kind, a.id), reason, a };
}

export function parseRevokeRequest(args: unknown, by: string): RevokeRequest {
  const { kind, id, reason, a } = parseRevocationTarget(args);
  const out: RevokeRequest = { kind, id, reason, by };
  if (a.notAfter !== undefined) {
    if (typeof a.notAfter !== 'string' || Number.isNaN(Date.parse(a.notAfter))) throw bad('notAfter must be an ISO time');
    out.notAfter = a.notAfter;
  }
  if (a.force !== undefined) {
    if (typeof a.force !== 'boolean') throw bad('force must be true or false');
    out.force = a.force;
  }
  return out;
}

const PUBLISH_ATTEMPTS = 3;
/** No retry starts after this long: a bus that is down must not hold the operator for long (the store already has it). */
const PUBLISH_BUDGET_MS = 1_500;
/** Pauses between attempts: 100 ms, then 300 ms. */
const PUBLISH_RETRY = { minMs: 100, maxMs: 900, factor: 3 };

/** Broadcasts a record; retried (on the clock), never thrown: the store write already happened and is the authority. */
export function publishRevocation(bus: Bus | undefined, record: RevocationRecord, onError?: (err: Error) => void, clock: Clock = systemClock): Promise<number | null> {
  return publishWithRetry(bus, `${REVOCATION_SUBJECT_PREFIX}${record.kind}`, JSON.stringify(record), onError, clock);
}

/** A revocation or a lift on the bus, after its store write: a few attempts within the budget; null when none got through. */
export async function publishWithRetry(bus: Bus | undefined, subject: string, body: string, onError?: (err: Error) => void, clock: Clock = systemClock): Promise<number | null> {
  if (bus === undefined) return null;
  const started = clock.now();
  const delays = new Delays(PUBLISH_RETRY);
  for (let attempt = 0; attempt < PUBLISH_ATTEMPTS && (attempt === 0 || clock.now() - started < PUBLISH_BUDGET_MS); attempt++) {
    try {
      return await bus.publish(subject, body);
    } catch (err) {
      onError?.(err instanceof Error ? err : new Error(String(err)));
      if (attempt < PUBLISH_ATTEMPTS - 1) await sleep(clock, delays.next());
    }
  }
  return null;
}

/** Create-if-absent under a lease (or none); returns the record that stands. */
async function writeRecord(store: Store, record: RevocationRecord, leaseSeconds: number | undefined): Promise<{ record: RevocationRecord; created: boolean }> {
  const key = revokedKey(record.kind, record.id);
  // one round trip: create if absent, else read what stands (no read first: revocation time is mostly this write)
  const lease = leaseSeconds === undefined ? undefined : await store.grant(leaseSeconds);
  const txn = await store.txn(
    [{ key, target: 'createRevision', op: '==', value: 0 }],
    [{ op: 'put', key, value: revocationCodec.encode(record), ...(lease !== undefined ? { lease: lease.id } : {}) }],
    [{ op: 'get', key }],
  );
  if (txn.succeeded) return { record, created: true };
  if (lease !== undefined) await store.revoke(lease.id).catch(() => undefined);
  const got = txn.results[0];
  const winner = got?.op === 'get' && got.kv !== undefined ? decodeOrThrow(revocationCodec, got.kv) : undefined;
  if (winner === undefined) throw new GatehouseError('ERR_STORE_CONFLICT', `the revocation of ${record.kind} ${record.id} changed while it was written; retry`, { retryable: true });
  return { record: winner, created: false };
}

function leaseUntil(end: number, now: number): { seconds: number; expiresAt: string } {
  const seconds = Math.max(1, Math.ceil((end + REVOCATION_SKEW_MS - now) / 1000));
  return { seconds, expiresAt: new Date(now + seconds * 1000).toISOString() };
}

/**
 * Writes the revocation (idempotent), ends what the store can end (a session's lease, a user's
 * sessions), then broadcasts it. Leases:
 *   session: until its absolute expiry or the last token minted for it expires, + skew
 *   token:   max token life (900 s) + skew (no jti index is kept: minting stays write-free)
 *   cert:    notAfter + 5 min (revokeCertificate, the existing record and CRL path)
 *   user, service: no lease (they have no natural expiry); lifted only by deleting the key.
 */
export async function revoke(store: Store, bus: Bus | undefined, req: RevokeRequest, clock: Clock, onError?: (err: Error) => void): Promise<RevokeResult> {
  const id = canonicalId(req.kind, req.id);
  const now = clock.now();
  const base = { format: 1 as const, kind: req.kind, id, reason: req.reason ?? 'unspecified', revokedAt: new Date(now).toISOString(), by: req.by.slice(0, 200) };
  let stood: { record: RevocationRecord; created: boolean };
  let sessionsEnded = 0;
  switch (req.kind) {
    case 'cert': {
      const issued = await lookupIssued(store, id);
      const candidates = [issued?.notAfter, req.notAfter].filter((d): d is string => d !== undefined).map((d) => Date.parse(d));
      if (candidates.length === 0) throw new GatehouseError('ERR_CERT_UNKNOWN_SERIAL', `${id} is not in the issued index; pass notAfter (--not-after) with the certificate's expiry to revoke it anyway`);
      const reason: RevocationReason = Object.hasOwn(REVOCATION_REASONS, base.reason) ? (base.reason as RevocationReason) : 'unspecified';
      const r = await revokeCertificate(store, { serial: id, notAfter: new Date(Math.max(...candidates)), reason, clock });
      stood = {
        record: { ...base, reason: r.record.reason, revokedAt: r.record.revokedAt, expiresAt: r.expiresAt.toISOString() },
        created: r.created,
      };
      break;
    }
    case 'token': {
      const l = leaseUntil(now + TOKEN_MAX_LIFE_MS, now);
      stood = await writeRecord(store, { ...base, expiresAt: l.expiresAt }, l.seconds);
      break;
    }
    case 'session': {
      const s = await findSessionBySid(store, id);
      // tokens minted for the session carry its sid and may outlive it by a token life
      const l = leaseUntil(Math.max(s?.expiresAt ?? 0, now + TOKEN_MAX_LIFE_MS), now);
      stood = await writeRecord(store, { ...base, expiresAt: l.expiresAt, ...(s !== undefined ? { subject: s.userId } : {}) }, l.seconds);
      if (s !== undefined && (await endSession(store, s))) sessionsEnded = 1;
      break;
    }
    case 'user':
    case 'service':
      stood = await writeRecord(store, { ...base, expiresAt: null }, undefined);
      if (req.kind === 'user') sessionsEnded = await endSessionsOfUser(store, id);
      break;
  }
  const published = await publishRevocation(bus, stood.record, onError, clock);
  return { record: stood.record, created: stood.created, key: revokedKey(req.kind, id), published, sessionsEnded };
}
