// Regulation of guessing (NIST SP 800-63B §5.2.2): failed factor attempts per user name, kept
// in the store so every replica agrees. maxFailures within `window` lock the name for
// `duration`. Unknown names are regulated the same way, so a lockout says nothing about
// whether a user exists.
import type { Clock } from '../lib/clock.js';
import { GatehouseError, isGatehouseError } from '../errors.js';
import { type Store } from '../store/index.js';
import { readRecord, ttlSeconds, type Writes } from './lib/records.js';
import { REGULATION_PREFIX, type RegulationRecord } from './types.js';

export interface RegulationPolicy {
  maxFailures: number;
  window: number;
  duration: number;
}

export class Regulator {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #policy: RegulationPolicy;

  constructor(store: Store, clock: Clock, policy: RegulationPolicy) {
    this.#store = store;
    this.#clock = clock;
    this.#policy = policy;
  }

  #key(username: string): string {
    return REGULATION_PREFIX + encodeURIComponent(username.toLowerCase().slice(0, 128));
  }

  /** Throws ERR_USER_LOCKED while the name is locked. */
  async check(username: string): Promise<void> {
    const r = await readRecord<RegulationRecord>(this.#store, this.#key(username));
    const until = r?.value.lockedUntil;
    if (until !== undefined && this.#clock.now() < until) {
      throw new GatehouseError('ERR_USER_LOCKED', `too many failed attempts: locked for ${Math.ceil((until - this.#clock.now()) / 60_000)} more minute(s)`, { details: { retryAfterSeconds: Math.ceil((until - this.#clock.now()) / 1000) } });
    }
  }

  /** Records a failure; returns true when this failure locked the name. */
  async fail(username: string): Promise<boolean> {
    const key = this.#key(username);
    const p = this.#policy;
    for (let i = 0; i < 8; i++) {
      const now = this.#clock.now();
      const cur = await readRecord<RegulationRecord>(this.#store, key);
      const locked = cur?.value.lockedUntil !== undefined && now < cur.value.lockedUntil;
      const failures = [...(cur?.value.failures ?? []).filter((t) => now - t < p.window), now];
      const lockNow = !locked && failures.length >= p.maxFailures;
      const next: RegulationRecord = { format: 1, failures: lockNow ? [] : failures.slice(-p.maxFailures) };
      if (lockNow) next.lockedUntil = now + p.duration;
      else if (locked) next.lockedUntil = cur.value.lockedUntil!;
      // the record cleans itself up once neither the window nor a lock can matter
      const lease = await this.#store.grant(ttlSeconds(Math.max(p.window, p.duration) + 60_000));
      try {
        await this.#store.put(key, JSON.stringify(next), { lease: lease.id, ifModRevision: cur?.modRevision ?? 0 });
        return lockNow;
      } catch (err) {
        await this.#store.revoke(lease.id).catch(() => undefined);
        if (!isGatehouseError(err, 'ERR_STORE_CONFLICT')) throw err;
      }
    }
    return false;
  }

  /** A complete sign-in clears the count. */
  async clear(username: string): Promise<void> {
    await this.#store.delete(this.#key(username));
  }

  /** clear() as a write of the sign-in's own transaction. */
  clearing(username: string): Writes {
    return { compares: [], ops: [{ op: 'delete', key: this.#key(username) }] };
  }
}
