// OTP tokens in the store: import (sealed seeds, unassigned), assign to a user, and the login
// step that accepts a code once. The last accepted time step per user is compare-and-swapped
// (alone, or in the sign-in's transaction), so the same code at the same instant on two
// replicas succeeds exactly once.
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../../errors.js';
import type { Clock } from '../../lib/clock.js';
import { rangePages, type Store, type TxnOp } from '../../store/index.js';
import { CONFLICT, retryOnConflict } from '../../store/update.js';
import { commit, parseRecord, readRecord, unchanged, type Writes } from '../lib/records.js';
import { endSessionsOf, returned } from '../users.js';
import { TOTP_PREFIX, TOTP_TOKENS_PREFIX, USERS_PREFIX, otpKindOf, type OtpKind, type TotpParams, type TotpRecord, type TotpTokenRecord } from '../types.js';
import { matchStep } from './codes.js';
import { openSeed } from './seed.js';

export interface SealedImport extends TotpParams {
  serial: string;
  sealedSeed: string;
}

/** Writes imported tokens (all or none per batch of 100); a serial seen before is refused. */
export async function importTokens(store: Store, tokens: readonly SealedImport[], clock: Clock): Promise<{ imported: number }> {
  const now = clock.now();
  for (let i = 0; i < tokens.length; i += 100) {
    const batch = tokens.slice(i, i + 100);
    const ops: TxnOp[] = batch.map((t) => {
      const record: TotpTokenRecord = { format: 1, serial: t.serial, sealedSeed: t.sealedSeed, digits: t.digits, period: t.period, algorithm: t.algorithm, importedAt: now };
      return { op: 'put', key: TOTP_TOKENS_PREFIX + t.serial, value: JSON.stringify(record) };
    });
    const r = await store.txn(batch.map((t) => ({ key: TOTP_TOKENS_PREFIX + t.serial, target: 'version', op: '==', value: 0 })), ops);
    if (!r.succeeded) throw new GatehouseError('ERR_TOTP_TOKEN_ASSIGNED', `a serial in ${batch[0]!.serial}..${batch[batch.length - 1]!.serial} was imported before`);
  }
  return { imported: tokens.length };
}

/**
 * Gives an imported token to a user. A hardware token they held before goes back to the pool;
 * the token keeps its last used step, so codes already accepted stay refused.
 */
export async function assignToken(store: Store, serial: string, userId: string, clock: Clock): Promise<TotpRecord> {
  return retryOnConflict('OTP token assignment', async () => {
    const token = await readRecord<TotpTokenRecord>(store, TOTP_TOKENS_PREFIX + serial);
    if (token === undefined) throw new GatehouseError('ERR_TOTP_TOKEN_UNKNOWN', `no imported token ${serial}`);
    if (token.value.assignedTo !== undefined) throw new GatehouseError('ERR_TOTP_TOKEN_ASSIGNED', `token ${serial} is assigned to ${token.value.assignedTo}`);
    const user = await store.get(USERS_PREFIX + userId);
    if (user === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${userId}`);
    const held = await readRecord<TotpRecord>(store, TOTP_PREFIX + userId);
    const before = held !== undefined && otpKindOf(held.value) === 'hardware' ? await readRecord<TotpTokenRecord>(store, TOTP_TOKENS_PREFIX + held.value.serial) : undefined;
    const t = token.value;
    const record: TotpRecord = { format: 1, userId, serial, sealedSeed: t.sealedSeed, digits: t.digits, period: t.period, algorithm: t.algorithm, lastStep: t.lastStep ?? 0, assignedAt: clock.now(), kind: 'hardware' };
    const ops: TxnOp[] = [
      { op: 'put', key: TOTP_TOKENS_PREFIX + serial, value: JSON.stringify({ ...t, assignedTo: userId }) },
      { op: 'put', key: TOTP_PREFIX + userId, value: JSON.stringify(record) },
    ];
    if (before !== undefined && before.value.assignedTo === userId) ops.push({ op: 'put', key: TOTP_TOKENS_PREFIX + before.value.serial, value: JSON.stringify(returned(before.value, held?.value)) });
    const compares = [
      unchanged(TOTP_TOKENS_PREFIX + serial, token),
      { key: USERS_PREFIX + userId, target: 'version' as const, op: '>' as const, value: 0 },
      unchanged(TOTP_PREFIX + userId, held),
      ...(before !== undefined ? [unchanged(TOTP_TOKENS_PREFIX + before.value.serial, before)] : []),
    ];
    return (await commit(store, { compares, ops })) === undefined ? CONFLICT : record;
  }, { exhausted: () => new GatehouseError('ERR_TOTP_TOKEN_ASSIGNED', `token ${serial} changed while assigning; try again`) });
}

/**
 * Takes a token (imported, or a phone-app seed, by serial) from its user: the user has no OTP
 * token until another is assigned, and every session of theirs ends (it was proven with it).
 * An imported token goes back to the pool keeping its last used step.
 */
export async function unassignToken(store: Store, serial: string): Promise<{ serial: string; user: string; kind: OtpKind; sessionsEnded: number }> {
  const done = await retryOnConflict('OTP token unassignment', async () => {
    const token = await readRecord<TotpTokenRecord>(store, TOTP_TOKENS_PREFIX + serial);
    const userId = token !== undefined ? token.value.assignedTo : await softwareHolder(store, serial);
    if (userId === undefined) {
      if (token !== undefined) throw new GatehouseError('ERR_TOTP_TOKEN_NOT_ASSIGNED', `token ${serial} is not assigned to anyone`);
      throw new GatehouseError('ERR_TOTP_TOKEN_UNKNOWN', `no imported token or enrolled seed ${serial}`);
    }
    const held = await readRecord<TotpRecord>(store, TOTP_PREFIX + userId);
    const ops: TxnOp[] = [];
    if (held?.value.serial === serial) ops.push({ op: 'delete', key: TOTP_PREFIX + userId });
    if (token !== undefined) ops.push({ op: 'put', key: TOTP_TOKENS_PREFIX + serial, value: JSON.stringify(returned(token.value, held?.value)) });
    const compares = [unchanged(TOTP_PREFIX + userId, held), ...(token !== undefined ? [unchanged(TOTP_TOKENS_PREFIX + serial, token)] : [])];
    return (await commit(store, { compares, ops })) === undefined ? CONFLICT : { userId, kind: token !== undefined ? ('hardware' as const) : ('software' as const) };
  });
  return { serial, user: done.userId, kind: done.kind, sessionsEnded: await endSessionsOf(store, done.userId) };
}

/** Who holds the enrolled (phone-app) seed with this serial: a scan of totp/, for commands only. */
async function softwareHolder(store: Store, serial: string): Promise<string | undefined> {
  for await (const page of rangePages(store, { prefix: TOTP_PREFIX }, { limit: 500 })) {
    for (const kv of page) {
      try {
        const t = parseRecord<TotpRecord>(kv);
        if (t.serial === serial) return t.userId;
      } catch {
        // an unreadable record names nobody
      }
    }
  }
  return undefined;
}

export interface VerifyTotpOptions {
  store: Store;
  kek: KeyObject;
  clock: Clock;
  userId: string;
  code: string;
}

/** Login step two: the code must match a step within ±1 of now that is after the last accepted step. */
export async function verifyTotp(o: VerifyTotpOptions): Promise<{ step: number; serial: string }> {
  return retryOnConflict('OTP token', async () => {
    const accepted = await checkTotp(o);
    // another replica accepted a code meanwhile: check again, and this one is a replay if it was the same step
    if ((await commit(o.store, accepted.writes)) === undefined) return CONFLICT;
    return { step: accepted.step, serial: accepted.serial };
  }, { exhausted: () => new GatehouseError('ERR_TOTP_REPLAY', 'too many concurrent attempts for this token') });
}

/**
 * Checks the code; commits nothing. `writes` records its step as the last accepted one,
 * guarded by the token record being as read: of two commits for the same step, one fails.
 */
export async function checkTotp(o: VerifyTotpOptions): Promise<{ step: number; serial: string; kind: OtpKind; writes: Writes }> {
  const key = TOTP_PREFIX + o.userId;
  const current = await readRecord<TotpRecord>(o.store, key);
  // The user must hold a token
  if (current === undefined) throw new GatehouseError('ERR_TOTP_NOT_ENROLLED', `expected an OTP token for ${o.userId}, found none`);
  const t = current.value;
  const seed = openSeed(o.kek, t.serial, t.sealedSeed);
  let step: number | undefined;
  try {
    step = matchStep(seed, o.code.trim(), o.clock.now(), t);
  } finally {
    seed.fill(0);
  }
  // The code must be the token's code for now, the step before or the step after
  if (step === undefined) throw new GatehouseError('ERR_TOTP_INVALID', `expected the code of token ${t.serial} for now ±1 step, got another`);
  // Its step must come after the last accepted one (a code is good once)
  if (step <= t.lastStep) throw new GatehouseError('ERR_TOTP_REPLAY', `expected a time step after ${t.lastStep}, got ${step}`);
  return { step, serial: t.serial, kind: otpKindOf(t), writes: { compares: [unchanged(key, current)], ops: [{ op: 'put', key, value: JSON.stringify({ ...t, lastStep: step }) }] } };
}
