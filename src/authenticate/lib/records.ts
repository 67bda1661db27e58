// authenticate's JSON records in the store (read with the store's codecs and changed with its
// compare-and-swap update), and guarded writes that several steps fold into one transaction
// (one durable commit).
import type { Compare, KeyValue, Store, TxnOp } from '../../store/index.js';
import { decodeOrThrow, jsonCodec, type RecordCodec } from '../../store/keys.js';
import { readCurrent, updateKey, type Current } from '../../store/update.js';

export type Versioned<T> = Current<T>;

/** authenticate writes and reads its own records: any JSON object, ERR_STORE_CORRUPT otherwise. */
const anyRecord = jsonCodec<unknown>('record');
export const recordCodec = <T>(): RecordCodec<T> => anyRecord as RecordCodec<T>;

/** One record; throws ERR_STORE_CORRUPT when it is not a JSON object. */
export function parseRecord<T>(kv: KeyValue): T {
  return decodeOrThrow(recordCodec<T>(), kv);
}

export function readRecord<T>(store: Store, key: string): Promise<Versioned<T> | undefined> {
  return readCurrent(store, key, recordCodec<T>());
}

/**
 * Changes an existing record by compare-and-swap (store/update.ts); `change` returns undefined
 * to leave it as it is. An absent record stays absent (undefined). Keeps the key's lease.
 */
export async function updateRecord<T>(store: Store, key: string, change: (current: T) => T | undefined): Promise<T | undefined> {
  const r = await updateKey(store, key, recordCodec<T>(), (cur) => (cur === undefined ? undefined : change(cur)));
  return r.value;
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
