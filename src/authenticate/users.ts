// Users and their enrollment links. A user is created pending with a one-time link (only the
// token's SHA-256 is stored, under a lease); the user record names the one live link, so a
// newer link or a finished enrollment voids every older one. Enrollment makes them active;
// disable, delete and a change of roles end every session they hold, on every replica (the
// lease revocations reach each replica's watch).
import { GatehouseError, isGatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { rangePages, type KeyValue, type Store, type TxnOp } from '../store/index.js';
import { CONFLICT, retryOnConflict } from '../store/update.js';
import { randomSecret, sha256hex } from './lib/digest.js';
import { commit, parseRecord, readRecord, ttlSeconds, unchanged, updateRecord, type Versioned } from './lib/records.js';
import { CREDENTIALS_PREFIX, ENROLLMENTS_PREFIX, SESSIONS_PREFIX, TOTP_PREFIX, TOTP_TOKENS_PREFIX, USERS_PREFIX, USER_SESSIONS_PREFIX, otpKindOf, type CredentialRecord, type EnrollmentRecord, type RoleMap, type SessionRecord, type TotpRecord, type TotpTokenRecord, type UserRecord } from './types.js';

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

async function userOrThrow(store: Store, id: string): Promise<Versioned<UserRecord>> {
  const user = await readRecord<UserRecord>(store, USERS_PREFIX + assertUserId(id));
  if (user === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${id}`);
  return user;
}

/**
 * A fresh one-time enrollment link for a user, stored as its hash under a lease; the user record
 * names it in the same transaction, which voids every older link. `create`: a new user record
 * to store with it (user add), instead of an existing one.
 */
export async function issueEnrollment(store: Store, userId: string, o: { clock: Clock; ttlMs: number; create?: UserRecord }): Promise<IssuedEnrollment> {
  const token = randomSecret();
  const hash = sha256hex(token);
  const now = o.clock.now();
  const lease = await store.grant(ttlSeconds(o.ttlMs));
  const record: EnrollmentRecord = { format: 1, userId, createdAt: now, expiresAt: now + o.ttlMs, webauthnDone: false };
  const key = ENROLLMENTS_PREFIX + hash;
  return retryOnConflict('enrollment link', async () => {
    let user: Versioned<UserRecord> | undefined;
    let next: UserRecord;
    if (o.create !== undefined) {
      next = { ...o.create, enrollment: hash };
    } else {
      user = await userOrThrow(store, userId);
      if (user.value.status === 'disabled') throw new GatehouseError('ERR_USER_DISABLED', `${userId} is disabled: enable them first (gatehouse user enable ${userId})`);
      next = { ...user.value, enrollment: hash };
    }
    const ops: TxnOp[] = [
      { op: 'put', key, value: JSON.stringify(record), lease: lease.id },
      { op: 'put', key: USERS_PREFIX + userId, value: JSON.stringify(next) },
    ];
    // the link it replaces is void already (the user names this one); remove it too
    if (user?.value.enrollment !== undefined) ops.push({ op: 'delete', key: ENROLLMENTS_PREFIX + user.value.enrollment });
    const r = await store.txn([unchanged(key, undefined), unchanged(USERS_PREFIX + userId, user)], ops);
    if (r.succeeded) return { token, expiresAt: record.expiresAt };
    if (o.create !== undefined) throw new GatehouseError('ERR_USER_EXISTS', `user ${userId} already exists`);
    return CONFLICT;
  });
}

export async function addUser(store: Store, input: { id: string; roles: RoleMap; enrollmentTtlMs: number }, clock: Clock): Promise<{ user: UserRecord; enrollment: IssuedEnrollment }> {
  const id = assertUserId(input.id);
  const user: UserRecord = { format: 1, id, roles: input.roles, status: 'pending', createdAt: clock.now() };
  const enrollment = await issueEnrollment(store, id, { clock, ttlMs: input.enrollmentTtlMs, create: user });
  return { user, enrollment };
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

/** Marks the user disabled, voids their enrollment link and revokes the lease of every session they hold. */
export async function disableUser(store: Store, id: string, clock: Clock): Promise<{ user: UserRecord; sessionsEnded: number }> {
  assertUserId(id);
  const user = await updateRecord<UserRecord>(store, USERS_PREFIX + id, (u) => {
    if (u.status === 'disabled') return undefined;
    // a link issued before must not work again once they are enabled: they get a new one
    const { enrollment: _void, ...rest } = u;
    return { ...rest, status: 'disabled', disabledAt: clock.now() };
  });
  if (user === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${id}`);
  return { user, sessionsEnded: await endSessionsOf(store, id) };
}

/** A disabled user may sign in again (active) if they hold a key, else they must enroll (pending). */
export async function enableUser(store: Store, id: string, clock: Clock): Promise<{ user: UserRecord; changed: boolean }> {
  await userOrThrow(store, id);
  let changed = false;
  const user = await updateRecord<UserRecord>(store, USERS_PREFIX + id, (u) => {
    changed = u.status === 'disabled';
    if (!changed) return undefined;
    const { disabledAt: _gone, ...rest } = u;
    const enrolled = u.enrolledAt !== undefined && (u.credentialIds ?? []).length > 0;
    const next: UserRecord = { ...rest, status: enrolled ? 'active' : 'pending', enabledAt: clock.now() };
    return next;
  });
  if (user === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${id}`);
  return { user, changed };
}

/**
 * Changes a user's roles. A session carries the roles it was signed in with, so when they change
 * every session of the user ends (on every replica): the next sign-in carries the new ones.
 */
export async function changeRoles(store: Store, id: string, change: (roles: RoleMap) => RoleMap): Promise<{ user: UserRecord; changed: boolean; sessionsEnded: number }> {
  await userOrThrow(store, id);
  let changed = false;
  const user = await updateRecord<UserRecord>(store, USERS_PREFIX + id, (u) => {
    const roles = normalRoles(change(u.roles));
    changed = JSON.stringify(roles) !== JSON.stringify(normalRoles(u.roles));
    return changed ? { ...u, roles } : undefined;
  });
  if (user === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${id}`);
  return { user, changed, sessionsEnded: changed ? await endSessionsOf(store, id) : 0 };
}

/** Namespaces and roles sorted, empty namespaces dropped: equal maps compare equal. */
function normalRoles(roles: RoleMap): RoleMap {
  const out: RoleMap = {};
  for (const ns of Object.keys(roles).sort()) {
    const rs = [...new Set(roles[ns])].sort();
    if (rs.length > 0) out[ns] = rs;
  }
  return out;
}

export function addRoles(roles: RoleMap, more: RoleMap): RoleMap {
  const out: RoleMap = Object.fromEntries(Object.entries(roles).map(([ns, rs]) => [ns, [...rs]]));
  for (const [ns, rs] of Object.entries(more)) out[ns] = [...(out[ns] ?? []), ...rs];
  return out;
}

export function removeRoles(roles: RoleMap, less: RoleMap): RoleMap {
  return Object.fromEntries(Object.entries(roles).map(([ns, rs]) => [ns, rs.filter((r) => !(less[ns] ?? []).includes(r))]));
}

/**
 * Deletes a user with their credentials, OTP token (an imported one goes back to the pool,
 * keeping its last used step) and live enrollment link, and ends their sessions. The user
 * record goes first, in one transaction: a half-finished delete leaves credentials no user
 * lists, which sign-in refuses.
 */
export async function deleteUser(store: Store, id: string): Promise<{ id: string; credentialsDeleted: number; sessionsEnded: number }> {
  const credentialIds = await retryOnConflict('user delete', async () => {
    const user = await userOrThrow(store, id);
    const totp = await readRecord<TotpRecord>(store, TOTP_PREFIX + id);
    const token = totp !== undefined && otpKindOf(totp.value) === 'hardware' ? await readRecord<TotpTokenRecord>(store, TOTP_TOKENS_PREFIX + totp.value.serial) : undefined;
    const ops: TxnOp[] = [{ op: 'delete', key: USERS_PREFIX + id }, { op: 'delete', key: TOTP_PREFIX + id }];
    if (user.value.enrollment !== undefined) ops.push({ op: 'delete', key: ENROLLMENTS_PREFIX + user.value.enrollment });
    if (token !== undefined && token.value.assignedTo === id) ops.push({ op: 'put', key: TOTP_TOKENS_PREFIX + token.value.serial, value: JSON.stringify(returned(token.value, totp?.value)) });
    const guards = [unchanged(USERS_PREFIX + id, user), unchanged(TOTP_PREFIX + id, totp), ...(token !== undefined ? [unchanged(TOTP_TOKENS_PREFIX + token.value.serial, token)] : [])];
    return (await commit(store, { compares: guards, ops })) === undefined ? CONFLICT : user.value.credentialIds ?? [];
  });
  // every credential of theirs, listed or not (records from before enrollment stored keys atomically)
  const all = new Set([...credentialIds, ...(await credentialsOf(store, id)).map((c) => c.id)]);
  const keys = [...all].map((c) => CREDENTIALS_PREFIX + c);
  for (let i = 0; i < keys.length; i += 100) await store.txn([], keys.slice(i, i + 100).map((key): TxnOp => ({ op: 'delete', key })));
  return { id, credentialsDeleted: all.size, sessionsEnded: await endSessionsOf(store, id) };
}

/** An imported token given back to the pool: unassigned, remembering the last step used. */
export function returned(token: TotpTokenRecord, held: TotpRecord | undefined): TotpTokenRecord {
  const { assignedTo: _gone, ...rest } = token;
  const lastStep = Math.max(token.lastStep ?? 0, held?.serial === token.serial ? held.lastStep : 0);
  return { ...rest, lastStep };
}

/** Credential records whose userId is this user (a scan: for commands, not sign-in). */
export async function credentialsOf(store: Store, userId: string): Promise<CredentialRecord[]> {
  const out: CredentialRecord[] = [];
  for await (const page of rangePages(store, { prefix: CREDENTIALS_PREFIX }, { limit: 500 })) {
    for (const kv of page) {
      const c = readable<CredentialRecord>(kv);
      if (c?.userId === userId) out.push(c);
    }
  }
  return out;
}

/** Revokes the lease of every session of the user (each lease ends a session and its aliases on every replica). */
export async function endSessionsOf(store: Store, userId: string): Promise<number> {
  return endSessionsWhere(store, userId);
}

/** Ends the user's sessions signed in with this credential. */
export async function endSessionsOfCredential(store: Store, userId: string, credentialId: string): Promise<number> {
  return endSessionsWhere(store, userId, (s) => s?.credentialId === credentialId);
}

async function endSessionsWhere(store: Store, userId: string, match?: (s: SessionRecord | undefined) => boolean): Promise<number> {
  const prefix = `${USER_SESSIONS_PREFIX}${userId}/`;
  const r = await store.range({ prefix });
  const leases = new Set<string>();
  for (const kv of r.kvs) {
    if (match !== undefined && !match(await sessionRecord(store, Buffer.from(kv.key).toString('utf8').slice(prefix.length)))) continue;
    leases.add(Buffer.from(kv.value).toString('utf8'));
  }
  for (const lease of leases) {
    await store.revoke(lease).catch((err: unknown) => {
      if (!isGatehouseError(err, 'ERR_STORE_LEASE_NOT_FOUND')) throw err;
    });
  }
  return leases.size;
}

async function sessionRecord(store: Store, hash: string): Promise<SessionRecord | undefined> {
  const kv = await store.get(SESSIONS_PREFIX + hash);
  const rec = kv === undefined ? undefined : readable<SessionRecord | { kind: 'alias' }>(kv);
  return rec?.kind === 'primary' ? rec : undefined;
}

/** A record, or undefined when it cannot be read (the followers report those). */
function readable<T>(kv: KeyValue): T | undefined {
  try {
    return parseRecord<T>(kv);
  } catch {
    return undefined;
  }
}
