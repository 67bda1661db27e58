// JSON records in the store, the compare-and-swap update loop every record change uses, and
// guarded writes that several steps fold into one transaction (one durable commit).
import { GatehouseError, isGatehouseError } from '../../errors.js';
import { text, type Compare, type KeyValue, type Store, type TxnOp } from '../../store/index.js';

export interface Versioned<T> {
  value: T;
  modRevision: number;
  lease: string | undefined;
}

export function parseRecord<T>(kv: KeyValue): T {
  return JSON.parse(text(kv.value)) as T;
}

export async function readRecord<T>(store: Store, key: string): Promise<Versioned<T> | undefined> {
  const kv = await store.get(key);
  if (kv === undefined) return undefined;
  return { value: parseRecord<T>(kv), modRevision: kv.modRevision, lease: kv.lease };
}

/**
 * Reads, changes and writes back with ifModRevision, retrying when another writer won;
 * `change` returns undefined to leave the record as it is. Keeps the key's lease.
 */
export async function updateRecord<T>(store: Store, key: string, change: (current: T) => T | undefined, attempts = 8): Promise<T | undefined> {
  for (let i = 0; i < attempts; i++) {
    const cur = await readRecord<T>(store, key);
    if (cur === undefined) return undefined;
    const next = change(cur.value);
    if (next === undefined) return cur.value;
    try {
      await store.put(key, JSON.stringify(next), { ifModRevision: cur.modRevision, ...(cur.lease !== undefined ? { lease: cur.lease } : {}) });
      return next;
    } catch (err) {
      if (!isGatehouseError(err, 'ERR_STORE_CONFLICT')) throw err;
    }
  }
  throw new GatehouseError('ERR_STORE_CONFLICT', `${key}: too many concurrent writers`, { retryable: true });
}

/** Deletes the key only if it is still the version read: exactly one of several concurrent consumers wins. */
export async function consumeRecord<T>(store: Store, key: string): Promise<T | undefined> {
  const kv = await store.get(key);
  if (kv === undefined) return undefined;
  const r = await store.txn([{ key, target: 'modRevision', op: '==', value: kv.modRevision }], [{ op: 'delete', key }]);
  return r.succeeded ? parseRecord<T>(kv) : undefined;
}

/** Writes to commit together: the guards they assume and the operations. */
export interface Writes {
  compares: Compare[];
  ops: TxnOp[];
}

/** The guard that a record is still the version read (absent: still absent). */
export function unchanged(key: string, read: { modRevision: number } | undefined): Compare {
  return { key, target: 'modRevision', op: '==', value: read?.modRevision ?? 0 };
}

/** Commits the writes of several steps in one transaction: its revision, or undefined when a guard failed (another writer came first). */
export async function commit(store: Store, ...parts: Writes[]): Promise<number | undefined> {
  const r = await store.txn(
    parts.flatMap((p) => p.compares),
    parts.flatMap((p) => p.ops),
  );
  return r.succeeded ? r.revision : undefined;
}

/** Lease TTLs are whole seconds; round up so a record never outlives its meaning by less. */
export function ttlSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
