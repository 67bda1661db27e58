// WebAuthn challenges: 32 random bytes, stored as their SHA-256 under a short lease and
// consumed with a compare-and-swap delete, so a response is accepted once across all replicas.
// A sign-in stores and consumes its challenge in the same transaction as its other writes.
import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { type LeaseId, type Store } from '../store/index.js';
import { sha256hex } from './lib/digest.js';
import { commit, readRecord, ttlSeconds, unchanged, type Versioned, type Writes } from './lib/records.js';
import { CHALLENGES_PREFIX, type ChallengeRecord } from './types.js';

type ChallengeFor = Pick<ChallengeRecord, 'purpose' | 'userId' | 'bound'>;

/**
 * A fresh challenge and the write that stores it under `lease` (the caller commits it, with its
 * own writes). createdAt: taken before the lease was asked for, so the lease covers the TTL.
 */
export function newChallenge(o: ChallengeFor & { createdAt: number; lease: LeaseId }): { challenge: string; writes: Writes } {
  const challenge = randomBytes(32).toString('base64url');
  const key = CHALLENGES_PREFIX + sha256hex(challenge);
  const record: ChallengeRecord = { format: 1, purpose: o.purpose, userId: o.userId, bound: o.bound, createdAt: o.createdAt };
  return { challenge, writes: { compares: [unchanged(key, undefined)], ops: [{ op: 'put', key, value: JSON.stringify(record), lease: o.lease }] } };
}

export async function issueChallenge(store: Store, o: ChallengeFor & { clock: Clock; ttlMs: number }): Promise<string> {
  const createdAt = o.clock.now();
  const lease = await store.grant(ttlSeconds(o.ttlMs));
  const { challenge, writes } = newChallenge({ purpose: o.purpose, userId: o.userId, bound: o.bound, createdAt, lease: lease.id });
  if ((await commit(store, writes)) === undefined) throw new GatehouseError('ERR_INTERNAL', 'challenge collision');
  return challenge;
}

type Expect = ChallengeFor & { clock: Clock; ttlMs: number };

/**
 * Checks that the challenge is live and this ceremony's, and returns the guarded delete that
 * consumes it: only the first transaction to commit it gets the challenge. A challenge that
 * fails a check is consumed at once.
 */
export async function takeChallenge(store: Store, challenge: string, expect: Expect): Promise<Writes> {
  // The challenge must be one we issued and nobody used yet
  if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) throw new GatehouseError('ERR_WEBAUTHN_CHALLENGE', 'expected a 32-byte base64url challenge, got another shape');
  const key = CHALLENGES_PREFIX + sha256hex(challenge);
  const stored = await readRecord<ChallengeRecord>(store, key);
  if (stored === undefined) throw new GatehouseError('ERR_WEBAUTHN_CHALLENGE', 'expected a live challenge, got one that is unknown, expired or already used');
  const writes: Writes = { compares: [unchanged(key, stored)], ops: [{ op: 'delete', key }] };
  try {
    checkChallenge(stored, expect);
  } catch (err) {
    await commit(store, writes);
    throw err;
  }
  return writes;
}

function checkChallenge({ value: record }: Versioned<ChallengeRecord>, expect: Expect): void {
  // It must be for this ceremony, this user and this sign-in
  if (record.purpose !== expect.purpose || record.userId !== expect.userId || record.bound !== expect.bound) {
    throw new GatehouseError('ERR_WEBAUTHN_CHALLENGE', `expected a ${expect.purpose} challenge of this sign-in, got a ${record.purpose} challenge of another`);
  }
  // Lease expiry is coarse (whole seconds, and etcd may keep it a little longer): check the age too
  if (expect.clock.now() - record.createdAt > expect.ttlMs) throw new GatehouseError('ERR_WEBAUTHN_CHALLENGE', 'expected a challenge younger than webauthn.challengeTtl, got an older one');
}

/** Takes the challenge out of the store; only the first caller gets it. */
export async function consumeChallenge(store: Store, challenge: string, expect: Expect): Promise<void> {
  const writes = await takeChallenge(store, challenge, expect);
  if ((await commit(store, writes)) === undefined) throw new GatehouseError('ERR_WEBAUTHN_CHALLENGE', 'expected a live challenge, got one that is unknown, expired or already used');
}
