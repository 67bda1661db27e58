// The session records revocation needs, read and ended directly in the store (authenticate owns
// their writing; its layout is DESIGN.md's "Keys in the store"): find a session by its public
// sid (never by the secret cookie), and end every session of a user. A session, its aliases
// and its index entry share one lease, so revoking that lease ends them on every replica.
import { GatehouseError, isGatehouseError } from '../errors.js';
import { rangePages, text, type Store } from '../store/index.js';
import { SESSIONS_PREFIX, SESSION_SUMMARY, USER_SESSIONS_PREFIX, keyName, storeKeys } from '../store/keys.js';

export { SESSIONS_PREFIX, USER_SESSIONS_PREFIX };

/** The fields of a primary session record that revocation reads. */
export interface SessionSummary {
  /** SHA-256 of the cookie: the store key. */
  hash: string;
  sid: string;
  userId: string;
  expiresAt: number;
  lease: string;
}

const PAGE = 500;

/** Scans the sessions for the primary whose sid is this one (sessions are few: one page per 500). */
export async function findSessionBySid(store: Store, sid: string): Promise<SessionSummary | undefined> {
  const revision = await store.revision();
  for await (const page of rangePages(store, { prefix: SESSIONS_PREFIX }, { limit: PAGE, revision })) {
    for (const kv of page) {
      // most records are not this one: skip decoding them
      if (!text(kv.value).includes(sid)) continue;
      const r = SESSION_SUMMARY.decode(kv);
      if (r instanceof GatehouseError || r.sid !== sid || r.lease === '') continue;
      return { hash: keyName(kv, SESSIONS_PREFIX), sid, userId: r.userId, expiresAt: r.expiresAt, lease: r.lease };
    }
  }
  return undefined;
}

async function revokeLease(store: Store, lease: string): Promise<boolean> {
  try {
    await store.revoke(lease);
    return true;
  } catch (err) {
    if (isGatehouseError(err, 'ERR_STORE_LEASE_NOT_FOUND')) return false;
    throw err;
  }
}

/** Ends one session (its lease) in the store; every replica's session watch drops it. */
export async function endSession(store: Store, s: SessionSummary): Promise<boolean> {
  return revokeLease(store, s.lease);
}

/** Ends every session a user holds (the user-sessions index names their leases). */
export async function endSessionsOfUser(store: Store, userId: string): Promise<number> {
  if (userId.includes('/')) throw new GatehouseError('ERR_REVOCATION_INVALID', 'a user id has no /');
  const r = await store.range({ prefix: storeKeys.userSessions(userId) });
  const leases = new Set(r.kvs.map((kv) => text(kv.value)));
  let n = 0;
  for (const lease of leases) if (await revokeLease(store, lease)) n++;
  return n;
}
