// The compare-and-swap read-modify-write every record change uses: read, decide, write guarded
// by "still as read" (the modRevision read, or still absent), and on ERR_STORE_CONFLICT start
// again from the read. Of several writers racing on any replicas each change is applied once,
// to the value it was computed from; none is lost.
import { GatehouseError, isGatehouseError } from '../errors.js';
import type { RecordCodec } from './keys.js';
import type { KeyValue, LeaseId, Store } from './types.js';

/**
 * Attempts before giving up. A conflict means another writer committed in between; eight in a
 * row means a key under a write storm, and the caller gets a retryable error rather than a wait.
 */
export const CAS_ATTEMPTS = 8;

/** What an attempt returns when its guarded write lost to another writer: it starts again. */
export const CONFLICT: unique symbol = Symbol('store-conflict');
export type Conflict = typeof CONFLICT;

export interface RetryOptions {
  /** The error after the last attempt (default ERR_STORE_CONFLICT, retryable, naming `what`). */
  exhausted?: () => GatehouseError;
  /**
   * Attempts before `exhausted` (default CAS_ATTEMPTS). Fewer for an attempt that is costly to
   * repeat (a whole-prefix read, a fresh key pair) and whose caller retries later anyway.
   */
  attempts?: number;
}

/**
 * Runs `attempt` until it does not lose a compare-and-swap: it returns CONFLICT, or throws
 * ERR_STORE_CONFLICT, when its guarded write found the store changed since its reads. Every
 * attempt must read afresh. After CAS_ATTEMPTS (or options.attempts) losses: `exhausted()`.
 */
export async function retryOnConflict<T>(what: string, attempt: (n: number) => Promise<T | Conflict>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? CAS_ATTEMPTS;
  for (let n = 0; n < attempts; n++) {
    try {
      const r = await attempt(n);
      if (r !== CONFLICT) return r;
    } catch (err) {
      if (!isGatehouseError(err, 'ERR_STORE_CONFLICT')) throw err;
    }
  }
  throw options.exhausted?.() ?? new GatehouseError('ERR_STORE_CONFLICT', `${what}: too many concurrent writers`, { retryable: true });
}

export interface Current<T> {
  value: T;
  modRevision: number;
  lease: LeaseId | undefined;
}

export interface UpdateOptions {
  /**
   * The lease of the written value: by default the key keeps the lease it has. A function is
   * asked for a fresh lease on each attempt; a lease whose write lost is revoked.
   */
  lease?: () => Promise<LeaseId>;
  /** Throw ERR_STORE_CORRUPT for an undecodable record (default); false: treat it as absent, so the change overwrites it. */
  strict?: boolean;
}

export interface UpdateResult<T> {
  /** The value now stored (undefined: the key is absent and the change left it so). */
  value: T | undefined;
  /** False when the change left the record as it was (nothing written). */
  written: boolean;
  /** Store revision of the write, when written. */
  revision?: number;
}

/** Reads one record (undefined when absent); a record that does not decode throws its ERR_STORE_CORRUPT. */
export async function readCurrent<T>(store: Store, key: string, codec: RecordCodec<T>): Promise<Current<T> | undefined> {
  const kv = await store.get(key);
  return kv === undefined ? undefined : current(kv, codec);
}

function current<T>(kv: KeyValue, codec: RecordCodec<T>): Current<T> {
  const value = codec.decode(kv);
  if (value instanceof GatehouseError) throw value;
  return { value, modRevision: kv.modRevision, lease: kv.lease };
}

/**
 * Read-modify-write of one key. `change` gets the record as read (undefined: absent) and
 * returns the record to write, or undefined to leave it as it is. It may run several times
 * (once per attempt), so it must not have side effects beyond its result.
 */
export async function updateKey<T>(
  store: Store,
  key: string,
  codec: RecordCodec<T>,
  change: (current: T | undefined) => T | undefined,
  options: UpdateOptions = {},
): Promise<UpdateResult<T>> {
  return retryOnConflict(key, async () => {
    const kv = await store.get(key);
    let cur: Current<T> | undefined;
    if (kv !== undefined) {
      try {
        cur = current(kv, codec);
      } catch (err) {
        if (options.strict ?? true) throw err;
      }
    }
    const next = change(cur?.value);
    if (next === undefined) return { value: cur?.value, written: false };
    const lease = options.lease === undefined ? cur?.lease : await options.lease();
    try {
      const r = await store.put(key, codec.encode(next), { ifModRevision: kv?.modRevision ?? 0, ...(lease !== undefined ? { lease } : {}) });
      return { value: next, written: true, revision: r.revision };
    } catch (err) {
      if (options.lease !== undefined && lease !== undefined) await store.revoke(lease).catch(() => undefined);
      throw err;
    }
  });
}
