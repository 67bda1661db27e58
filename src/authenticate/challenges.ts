// WebAuthn challenges: 32 random bytes, stored as their SHA-256 under a short lease and
// consumed with a compare-and-swap delete, so a response is accepted once across all replicas.
import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { type Store } from '../store/index.js';
import { sha256hex } from './lib/digest.js';
import { consumeRecord, ttlSeconds } from './lib/records.js';
import { CHALLENGES_PREFIX, type ChallengeRecord } from './types.js';

export async function issueChallenge(store: Store, o: { clock: Clock; ttlMs: number; purpose: ChallengeRecord['purpose']; userId: string; bound: string }): Promise<string> {
  const challenge = randomBytes(32).toString('base64url');
  const lease = await store.grant(ttlSeconds(o.ttlMs));
  const record: ChallengeRecord = { format: 1, purpose: o.purpose, userId: o.userId, bound: o.bound, createdAt: o.clock.now() };
  await store.put(CHALLENGES_PREFIX + sha256hex(challenge), JSON.stringify(record), { lease: lease.id, ifAbsent: true });
  return challenge;
}

/** Takes the challenge out of the store; only the first caller gets it. */
export async function consumeChallenge(store: Store, challenge: string, expect: { purpose: ChallengeRecord['purpose']; userId: string; bound: string; clock: Clock; ttlMs: number }): Promise<void> {
  // The challenge must be one we issued and nobody used yet
  if (!/^[A-Za-z0-9_-]{43}$/.test(challenge)) throw new GatehouseError('ERR_WEBAUTHN_CHALLENGE', 'expected a 32-byte base64url challenge, got another shape');
  const record = await consumeRecord<ChallengeRecord>(store, CHALLENGES_PREFIX + sha256hex(challenge));
  if (record === undefined) throw new GatehouseError('ERR_WEBAUTHN_CHALLENGE', 'expected a live challenge, got one that is unknown, expired or already used');
  // It must be for this ceremony, this user and this sign-in
  if (record.purpose !== expect.purpose || record.userId !== expect.userId || record.bound !== expect.bound) {
    throw new GatehouseError('ERR_WEBAUTHN_CHALLENGE', `expected a ${expect.purpose} challenge of this sign-in, got a ${record.purpose} challenge of another`);
  }
  // Lease expiry is coarse (whole seconds, and etcd may keep it a little longer): check the age too
  if (expect.clock.now() - record.createdAt > expect.ttlMs) throw new GatehouseError('ERR_WEBAUTHN_CHALLENGE', 'expected a challenge younger than webauthn.challengeTtl, got an older one');
}
