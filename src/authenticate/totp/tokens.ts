// OTP tokens in the store: import (sealed seeds, unassigned), assign to a user, and the login
// step that accepts a code once. The last accepted time step per user is compare-and-swapped
// (alone, or in the sign-in's transaction), so the same code at the same instant on two
// replicas succeeds exactly once.
import type { KeyObject } from 'node:crypto';
import { GatehouseError } from '../../errors.js';
import type { Clock } from '../../lib/clock.js';
import { type Store, type TxnOp } from '../../store/index.js';
import { CONFLICT, retryOnConflict } from '../../store/update.js';
import { commit, readRecord, unchanged, type Writes } from '../lib/records.js';
import { TOTP_PREFIX, TOTP_TOKENS_PREFIX, USERS_PREFIX, type TotpParams, type TotpRecord, type TotpTokenRecord } from '../types.js';
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

/** Gives an imported token to a user (replacing any token they had). */
export async function assignToken(store: Store, serial: string, userId: string, clock: Clock): Promise<TotpRecord> {
  const token = await readRecord<TotpTokenRecord>(store, TOTP_TOKENS_PREFIX + serial);
  if (token === undefined) throw new GatehouseError('ERR_TOTP_TOKEN_UNKNOWN', `no imported token ${serial}`);
  if (token.value.assignedTo !== undefined) throw new GatehouseError('ERR_TOTP_TOKEN_ASSIGNED', `token ${serial} is assigned to ${token.value.assignedTo}`);
  const user = await store.get(USERS_PREFIX + userId);
  if (user === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${userId}`);
  const t = token.value;
  const record: TotpRecord = { format: 1, userId, serial, sealedSeed: t.sealedSeed, digits: t.digits, period: t.period, algorithm: t.algorithm, lastStep: 0, assignedAt: clock.now() };
  const r = await store.txn(
    [
      { key: TOTP_TOKENS_PREFIX + serial, target: 'modRevision', op: '==', value: token.modRevision },
      { key: USERS_PREFIX + userId, target: 'version', op: '>', value: 0 },
    ],
    [
      { op: 'put', key: TOTP_TOKENS_PREFIX + serial, value: JSON.stringify({ ...t, assignedTo: userId }) },
      { op: 'put', key: TOTP_PREFIX + userId, value: JSON.stringify(record) },
    ],
  );
  if (!r.succeeded) throw new GatehouseError('ERR_TOTP_TOKEN_ASSIGNED', `token ${serial} changed while assigning; try again`);
  return record;
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
export async function checkTotp(o: VerifyTotpOptions): Promise<{ step: number; serial: string; writes: Writes }> {
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
  return { step, serial: t.serial, writes: { compares: [unchanged(key, current)], ops: [{ op: 'put', key, value: JSON.stringify({ ...t, lastStep: step }) }] } };
}
