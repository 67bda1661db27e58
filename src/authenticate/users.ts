// Users and their enrollment links. A user is created pending with a one-time link (only the
// token's SHA-256 is stored, under a lease); enrollment makes them active; disable ends every
// session they hold, on every replica (the lease revocations reach each replica's watch).
import { GatehouseError, isGatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { type Store } from '../store/index.js';
import { randomSecret, sha256hex } from './lib/digest.js';
import { parseRecord, readRecord, ttlSeconds, updateRecord } from './lib/records.js';
import { ENROLLMENTS_PREFIX, USERS_PREFIX, USER_SESSIONS_PREFIX, type EnrollmentRecord, type RoleMap, type UserRecord } from './types.js';

export const USER_ID = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const ROLE = /^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?):([A-Za-z0-9._-]{1,64})$/;

export function assertUserId(id: unknown): string {
  if (typeof id !== 'string' || !USER_ID.test(id)) throw new GatehouseError('ERR_USER_INVALID', 'a user id is 1-63 of a-z 0-9 . _ - starting with a letter or digit');
  return id;
}

/** ["payments:ops-admin", "ops:viewer"] -> { payments: ["ops-admin"], ops: ["viewer"] } */
export function parseRoles(specs: readonly string[]): RoleMap {
  const out: RoleMap = {};
  for (const spec of specs) {
    const m = ROLE.exec(spec);
    if (m === null) throw new GatehouseError('ERR_USER_INVALID', `role ${JSON.stringify(spec.slice(0, 80))} is not namespace:role`);
    const list = (out[m[1]!] ??= []);
    if (!list.includes(m[2]!)) list.push(m[2]!);
  }
  return out;
}

export interface IssuedEnrollment {
  /** The secret in the link. Shown once, never stored. */
  token: string;
  expiresAt: number;
}

/** A fresh one-time enrollment token for a user, stored as its hash under a lease. */
export async function issueEnrollment(store: Store, userId: string, o: { clock: Clock; ttlMs: number }): Promise<IssuedEnrollment> {
  const token = randomSecret();
  const now = o.clock.now();
  const lease = await store.grant(ttlSeconds(o.ttlMs));
  const record: EnrollmentRecord = { format: 1, userId, createdAt: now, expiresAt: now + o.ttlMs, webauthnDone: false };
  await store.put(ENROLLMENTS_PREFIX + sha256hex(token), JSON.stringify(record), { lease: lease.id, ifAbsent: true });
  return { token, expiresAt: record.expiresAt };
}

export async function addUser(store: Store, input: { id: string; roles: RoleMap; enrollmentTtlMs: number }, clock: Clock): Promise<{ user: UserRecord; enrollment: IssuedEnrollment }> {
  const id = assertUserId(input.id);
  const user: UserRecord = { format: 1, id, roles: input.roles, status: 'pending', createdAt: clock.now() };
  try {
    await store.put(USERS_PREFIX + id, JSON.stringify(user), { ifAbsent: true });
  } catch (err) {
    if (isGatehouseError(err, 'ERR_STORE_CONFLICT')) throw new GatehouseError('ERR_USER_EXISTS', `user ${id} already exists`);
    throw err;
  }
  return { user, enrollment: await issueEnrollment(store, id, { clock, ttlMs: input.enrollmentTtlMs }) };
}

export async function getUser(store: Store, id: string): Promise<UserRecord | undefined> {
  if (!USER_ID.test(id)) return undefined;
  return (await readRecord<UserRecord>(store, USERS_PREFIX + id))?.value;
}

export async function listUsers(store: Store): Promise<UserRecord[]> {
  const out: UserRecord[] = [];
  let start = USERS_PREFIX;
  for (;;) {
    const page = await store.range({ start, end: USERS_PREFIX.slice(0, -1) + '0' }, { limit: 500 });
    for (const kv of page.kvs) out.push(parseRecord<UserRecord>(kv));
    if (!page.more || page.kvs.length === 0) return out;
    start = `${Buffer.from(page.kvs[page.kvs.length - 1]!.key).toString('utf8')}\u0000`;
  }
}

/** Marks the user disabled and revokes the lease of every session they hold. */
export async function disableUser(store: Store, id: string, clock: Clock): Promise<{ user: UserRecord; sessionsEnded: number }> {
  assertUserId(id);
  const user = await updateRecord<UserRecord>(store, USERS_PREFIX + id, (u) => (u.status === 'disabled' ? undefined : { ...u, status: 'disabled', disabledAt: clock.now() }));
  if (user === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${id}`);
  return { user, sessionsEnded: await endSessionsOf(store, id) };
}

export async function endSessionsOf(store: Store, userId: string): Promise<number> {
  const r = await store.range({ prefix: `${USER_SESSIONS_PREFIX}${userId}/` });
  const leases = new Set(r.kvs.map((kv) => Buffer.from(kv.value).toString('utf8')));
  for (const lease of leases) {
    await store.revoke(lease).catch((err: unknown) => {
      if (!isGatehouseError(err, 'ERR_STORE_LEASE_NOT_FOUND')) throw err;
    });
  }
  return leases.size;
}
