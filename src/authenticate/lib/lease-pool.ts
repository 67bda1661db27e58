// Shared leases for short-lived records. Granting a lease is a durable write; a record that
// only needs to disappear some time after its TTL (a pending sign-in, a challenge, a one-time
// code) can share a lease with every record of the same TTL created in the same time bucket.
//
// A pooled lease lives ttl + slack (slack = min(10 s, ttl / 10)) from the moment it was asked
// for, and is handed out only during its first `slack`: so every record put under it outlives
// its own TTL, measured from before lease() was called, and by at most slack + 1 s. Lease
// expiry is cleanup only: the records still carry and check their own expiry. Never revoke a
// pooled lease (it is shared); records that must end on demand need a lease of their own.
import type { Clock } from '../../lib/clock.js';
import type { LeaseId, Store } from '../../store/index.js';

const MAX_SLACK_MS = 10_000;

interface Bucket {
  id: Promise<LeaseId>;
  /** The id once granted. */
  granted?: LeaseId;
  /** Last instant at which the lease still covers a full TTL. */
  usableUntil: number;
}

export class LeasePool {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #buckets = new Map<number, Bucket>();

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /** A lease that lives at least ttlMs from now (and at most slack + 1 s longer). */
  lease(ttlMs: number): Promise<LeaseId> {
    const now = this.#clock.now();
    const current = this.#buckets.get(ttlMs);
    if (current !== undefined && now <= current.usableUntil) return current.id;
    const slack = Math.min(MAX_SLACK_MS, Math.floor(ttlMs / 10));
    const ttlSeconds = Math.max(1, Math.ceil((ttlMs + slack) / 1000));
    // the store starts the TTL when it grants, after `now`: usableUntil errs on the safe side
    const bucket: Bucket = {
      id: this.#store.grant(ttlSeconds).then((g) => (bucket.granted = g.id)),
      usableUntil: now + ttlSeconds * 1000 - ttlMs,
    };
    this.#buckets.set(ttlMs, bucket);
    // a failed grant is not kept: the next caller asks again
    bucket.id.catch(() => this.#buckets.get(ttlMs) === bucket && this.#buckets.delete(ttlMs));
    return bucket.id;
  }

  /** Stops handing out a lease the store no longer knows (ERR_STORE_LEASE_NOT_FOUND). */
  forget(id: LeaseId): void {
    for (const [ttl, b] of this.#buckets) if (b.granted === id) this.#buckets.delete(ttl);
  }
}
