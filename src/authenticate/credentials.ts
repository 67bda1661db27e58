// A user's registered security keys, for operators: list them, remove one. Removing a key ends
// every session signed in with it, on every replica (their leases are revoked).
import { GatehouseError } from '../errors.js';
import type { Store } from '../store/index.js';
import { CONFLICT, retryOnConflict } from '../store/update.js';
import { commit, readRecord, unchanged } from './lib/records.js';
import { assertUserId, endSessionsOfCredential } from './users.js';
import { CREDENTIALS_PREFIX, TOTP_PREFIX, USERS_PREFIX, otpKindOf, type CredentialRecord, type OtpKind, type TotpRecord, type UserRecord } from './types.js';

/** What an operator sees of a key: never the public key. */
export interface CredentialSummary {
  id: string;
  aaguid: string;
  fmt: string;
  /** The attestation verified to a trusted root at registration (the key counts as hwk). */
  attestationVerified: boolean;
  createdAt: number;
  lastUsedAt?: number;
  lockedAt?: number;
  transports?: string[];
}

export interface UserAuthenticators {
  user: string;
  status: UserRecord['status'];
  credentials: CredentialSummary[];
  /** Listed on the user but without a record (an interrupted write before enrollment stored keys atomically). */
  missing: string[];
  otp?: { serial: string; kind: OtpKind; assignedAt: number };
}

function summary(c: CredentialRecord): CredentialSummary {
  return {
    id: c.id,
    aaguid: c.aaguid,
    fmt: c.fmt,
    attestationVerified: c.attestationVerified === true,
    createdAt: c.createdAt,
    ...(c.lastUsedAt !== undefined ? { lastUsedAt: c.lastUsedAt } : {}),
    ...(c.lockedAt !== undefined ? { lockedAt: c.lockedAt } : {}),
    ...(c.transports !== undefined ? { transports: c.transports } : {}),
  };
}

export async function listAuthenticators(store: Store, userId: string): Promise<UserAuthenticators> {
  const user = await readRecord<UserRecord>(store, USERS_PREFIX + assertUserId(userId));
  if (user === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${userId}`);
  const credentials: CredentialSummary[] = [];
  const missing: string[] = [];
  for (const id of user.value.credentialIds ?? []) {
    const c = await readRecord<CredentialRecord>(store, CREDENTIALS_PREFIX + id);
    if (c === undefined || c.value.userId !== userId) missing.push(id);
    else credentials.push(summary(c.value));
  }
  const otp = await readRecord<TotpRecord>(store, TOTP_PREFIX + userId);
  return {
    user: userId,
    status: user.value.status,
    credentials,
    missing,
    ...(otp !== undefined ? { otp: { serial: otp.value.serial, kind: otpKindOf(otp.value), assignedAt: otp.value.assignedAt } } : {}),
  };
}

/** The one credential of the user whose id is `ref` or starts with it (8 characters at least). */
function resolve(user: UserRecord, ref: string): string {
  const ids = user.credentialIds ?? [];
  if (ids.includes(ref)) return ref;
  const matches = ref.length >= 8 ? ids.filter((id) => id.startsWith(ref)) : [];
  if (matches.length === 1) return matches[0]!;
  const why = matches.length > 1 ? `${matches.length} credentials of ${user.id} start with ${ref}: give more of the id` : `${user.id} has no credential ${ref.slice(0, 80)} (gatehouse user keys ${user.id})`;
  throw new GatehouseError('ERR_CREDENTIAL_NOT_FOUND', why);
}

/**
 * Removes one key: the user stops listing it and its record goes, in one transaction (a sign-in
 * racing it commits only against the user as it was, and its session is then ended below).
 */
export async function removeCredential(store: Store, userId: string, ref: string): Promise<{ user: string; credentialId: string; remaining: number; sessionsEnded: number }> {
  const done = await retryOnConflict('credential removal', async () => {
    const user = await readRecord<UserRecord>(store, USERS_PREFIX + assertUserId(userId));
    if (user === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${userId}`);
    const id = resolve(user.value, ref);
    const cred = await readRecord<CredentialRecord>(store, CREDENTIALS_PREFIX + id);
    const credentialIds = (user.value.credentialIds ?? []).filter((c) => c !== id);
    const next: UserRecord = { ...user.value, credentialIds };
    const ops = [{ op: 'put' as const, key: USERS_PREFIX + userId, value: JSON.stringify(next) }, ...(cred !== undefined && cred.value.userId === userId ? [{ op: 'delete' as const, key: CREDENTIALS_PREFIX + id }] : [])];
    const r = await commit(store, { compares: [unchanged(USERS_PREFIX + userId, user), unchanged(CREDENTIALS_PREFIX + id, cred)], ops });
    return r === undefined ? CONFLICT : { id, remaining: credentialIds.length };
  });
  return { user: userId, credentialId: done.id, remaining: done.remaining, sessionsEnded: await endSessionsOfCredential(store, userId, done.id) };
}
