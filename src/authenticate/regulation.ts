// Regulation of guessing (NIST SP 800-63B §5.2.2): failed factor attempts per user name, kept
// in the store so every replica agrees. maxFailures within `window` lock the name for
// `duration`. Unknown names are regulated the same way, so a lockout says nothing about
// whether a user exists.
import type { Clock } from '../lib/clock.js';
import { GatehouseError, isGatehouseError } from '../errors.js';
import { type Store } from '../store/index.js';
import { storeKeys } from '../store/keys.js';
import { updateKey } from '../store/update.js';
import { readRecord, recordCodec, ttlSeconds, type Writes } from './lib/records.js';
import type { RegulationRecord } from './types.js';

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
    return storeKeys.regulation(username);
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
    const p = this.#policy;
    let lockNow = false;
    try {
      await updateKey(this.#store, this.#key(username), recordCodec<RegulationRecord>(), (cur) => {
        const now = this.#clock.now();
        const lockedUntil = cur?.lockedUntil;
        const locked = lockedUntil !== undefined && now < lockedUntil;
        const failures = [...(cur?.failures ?? []).filter((t) => now - t < p.window), now];
        lockNow = !locked && failures.length >= p.maxFailures;
        const next: RegulationRecord = { format: 1, failures: lockNow ? [] : failures.slice(-p.maxFailures) };
        if (lockNow) next.lockedUntil = now + p.duration;
        else if (locked) next.lockedUntil = lockedUntil;
        return next;
      }, {
        // the record cleans itself up once neither the window nor a lock can matter
        lease: async () => (await this.#store.grant(ttlSeconds(Math.max(p.window, p.duration) + 60_000))).id,
        // an unreadable count starts again rather than locking nobody out forever
        strict: false,
      });
    } catch (err) {
      // a count lost to a write storm must not hide the factor's own failure
      if (isGatehouseError(err, 'ERR_STORE_CONFLICT')) return false;
      throw err;
    }
    return lockNow;
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
