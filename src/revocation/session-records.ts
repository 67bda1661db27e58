// The session records revocation needs, read and ended directly in the store (authenticate owns
// their writing; its layout is DESIGN.md's "Keys in the store"): find a session by its public
// sid (never by the secret cookie), and end every session of a user. A session, its aliases
// and its index entry share one lease, so revoking that lease ends them on every replica.
import { GatehouseError, isGatehouseError } from '../errors.js';
import { text, type Store } from '../store/index.js';

export const SESSIONS_PREFIX = '/gatehouse/sessions/';
export const USER_SESSIONS_PREFIX = '/gatehouse/user-sessions/';

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
  const end = SESSIONS_PREFIX.slice(0, -1) + '0';
  let start = SESSIONS_PREFIX;
  const revision = await store.revision();
  for (;;) {
    const page = await store.range({ start, end }, { limit: PAGE, revision });
    for (const kv of page.kvs) {
      const raw = text(kv.value);
      if (!raw.includes(sid)) continue;
      try {
        const r = JSON.parse(raw) as { kind?: unknown; sid?: unknown; userId?: unknown; expiresAt?: unknown; lease?: unknown };
        if (r.kind === 'primary' && r.sid === sid && typeof r.userId === 'string' && typeof r.expiresAt === 'number' && typeof r.lease === 'string') {
          return { hash: text(kv.key).slice(SESSIONS_PREFIX.length), sid, userId: r.userId, expiresAt: r.expiresAt, lease: r.lease };
        }
      } catch {
        // not a session record: skip
      }
    }
    if (!page.more || page.kvs.length === 0) return undefined;
    start = `${text(page.kvs[page.kvs.length - 1]!.key)}\u0000`;
  }
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
  const r = await store.range({ prefix: `${USER_SESSIONS_PREFIX}${userId}/` });
  const leases = new Set(r.kvs.map((kv) => text(kv.value)));
  let n = 0;
  for (const lease of leases) if (await revokeLease(store, lease)) n++;
  return n;
}
