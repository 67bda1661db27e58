// Lifting a revocation: its record leaves the store (the authority), then a lift is broadcast.
// Every replica's RevocationSet follows revoked/ with the store follower and drops the entry on
// the delete; the broadcast reaches entries a replica knows from the bus only, and keeps an
// older revocation message (a JetStream replay) from bringing it back.
import { GatehouseError, isGatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';
import { retryOnConflict, CONFLICT } from '../store/update.js';
import type { Bus } from '../bus/index.js';
import { canonicalId, parseRevocationTarget, publishWithRetry } from './revoke.js';
import { decodeStoredRevocation } from './revocation-set.js';
import { LIFT_SUBJECT_PREFIX, REVOKED_PREFIX, revokedKey, type RevocationKind, type RevocationLift, type RevocationRecord } from './types.js';

export interface LiftRequest {
  kind: RevocationKind;
  id: string;
  reason?: string;
  /** Who asked (audited, broadcast). */
  by: string;
}

export interface LiftResult {
  /** The record that was deleted; `unreadable` when it could not be read (it is lifted all the same). */
  lifted: RevocationRecord & { unreadable?: true };
  key: string;
  /** The bus sequence of the lift, or null (replicas learn through the store). */
  published: number | null;
}

/** {kind, id, reason?}: the same checks as a revocation's. */
export function parseLiftRequest(args: unknown, by: string): LiftRequest {
  const { kind, id, reason } = parseRevocationTarget(args);
  return { kind, id, reason, by };
}

export async function liftRevocation(store: Store, bus: Bus | undefined, req: LiftRequest, clock: Clock, onError?: (err: Error) => void): Promise<LiftResult> {
  const id = canonicalId(req.kind, req.id);
  // RFC 5280: a revoked certificate stays revoked (Gatehouse uses no certificateHold); the CRL lists it until it expires
  if (req.kind === 'cert') throw new GatehouseError('ERR_REVOCATION_PERMANENT', 'a certificate revocation is final (it is on the CRL until the certificate expires); issue a new certificate');
  const key = revokedKey(req.kind, id);
  const lifted = await retryOnConflict(`lift ${req.kind} ${id}`, async () => {
    const kv = await store.get(key);
    if (kv === undefined) throw new GatehouseError('ERR_REVOCATION_NOT_FOUND', `${req.kind} ${id} is not revoked`);
    let record: LiftResult['lifted'];
    try {
      record = decodeStoredRevocation(kv, key.slice(REVOKED_PREFIX.length), clock.now());
    } catch (err) {
      if (!isGatehouseError(err, 'ERR_STORE_CORRUPT')) throw err;
      // an unreadable record counts as revoked everywhere (fail closed); lifting it is how it goes
      record = { format: 1, kind: req.kind, id, reason: 'unspecified', revokedAt: new Date(clock.now()).toISOString(), by: 'unknown', expiresAt: null, unreadable: true };
    }
    // delete exactly what was read: a revocation written again meanwhile is not lifted unseen
    const txn = await store.txn([{ key, target: 'modRevision', op: '==', value: kv.modRevision }], [{ op: 'delete', key }]);
    if (!txn.succeeded) return CONFLICT;
    // a record's lease held only it (revoke grants one per record): end it rather than let it run out
    if (kv.lease !== undefined) await store.revoke(kv.lease).catch(() => undefined);
    return record;
  });
  const message: RevocationLift = { format: 1, lift: { kind: req.kind, id, revokedAt: lifted.revokedAt, liftedAt: new Date(clock.now()).toISOString(), by: req.by.slice(0, 200) } };
  const published = await publishWithRetry(bus, `${LIFT_SUBJECT_PREFIX}${req.kind}`, JSON.stringify(message), onError, clock);
  return { lifted, key, published };
}
