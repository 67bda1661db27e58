// The store: an MVCC key-value interface with etcd v3 semantics (see DESIGN.md, "The store").
// Both implementations (embedded LMDB, etcd) pass test/conformance/kv.ts.

import type { Clock } from '../lib/clock.js';

/** Keys and values are bytes; strings are accepted and encoded as UTF-8. */
export type Bytes = Uint8Array;
export type KeyInput = string | Uint8Array;
export type ValueInput = string | Uint8Array;

/** etcd lease ids are int64; they travel as decimal strings so no precision is lost. */
export type LeaseId = string;

export const LIMITS = {
  /** Longest key in bytes. */
  maxKeyBytes: 1024,
  /** Largest value in bytes (1.25 MiB: a 1 MiB value fits with room; etcd's default request cap is 1.5 MiB). */
  maxValueBytes: 1_310_720,
  /** Most operations in one transaction (etcd's default --max-txn-ops). */
  maxTxnOps: 128,
  /** Longest lease TTL in seconds (etcd's MaxLeaseTTL). */
  maxLeaseTtlSeconds: 9_000_000_000,
} as const;

export interface KeyValue {
  key: Bytes;
  value: Bytes;
  /** Revision of the write that created this key (since its last delete). */
  createRevision: number;
  /** Revision of the last write to this key. */
  modRevision: number;
  /** Number of writes since creation; 1 after the first put. */
  version: number;
  /** Lease the key is bound to, if any. */
  lease?: LeaseId;
}

/** Selects keys: one key, every key with a prefix, or the half-open interval [start, end) (no end: every key from start on). */
export type KeySelector = { key: KeyInput } | { prefix: KeyInput } | { start: KeyInput; end?: KeyInput };
export type RangeSelector = { prefix: KeyInput } | { start: KeyInput; end?: KeyInput };

export interface ReadOptions {
  /** Read the store as it was at this revision (must not be compacted nor in the future). */
  revision?: number;
}

export interface RangeOptions extends ReadOptions {
  limit?: number;
  reverse?: boolean;
  /** Return keys and metadata only; values are empty. */
  keysOnly?: boolean;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** True when limit cut the result short. */
  more: boolean;
  /** Number of keys in the range (before limit). */
  count: number;
  /** The store revision this read was served at (the header revision). */
  revision: number;
}

export interface PutOptions {
  lease?: LeaseId;
  /** Compare-and-swap: succeed only if the key's modRevision is this (0 = absent). */
  ifModRevision?: number;
  /** Succeed only if the key does not exist. */
  ifAbsent?: boolean;
}

export interface PutResult {
  /** Revision of this write. */
  revision: number;
}

export interface DeleteOptions {
  /** Compare-and-swap, for a single key only: delete only if its modRevision is this. */
  ifModRevision?: number;
}

export interface DeleteResult {
  /** Store revision after the delete (unchanged when nothing was deleted). */
  revision: number;
  deleted: number;
}

export type CompareOp = '==' | '!=' | '<' | '>';

/** A transaction guard; an absent key has version, createRevision and modRevision 0. */
export type Compare =
  | { key: KeyInput; target: 'version' | 'createRevision' | 'modRevision'; op: CompareOp; value: number }
  | { key: KeyInput; target: 'value'; op: CompareOp; value: ValueInput }
  | { key: KeyInput; target: 'lease'; op: '==' | '!='; value: LeaseId };

export type TxnOp =
  | { op: 'put'; key: KeyInput; value: ValueInput; lease?: LeaseId }
  | { op: 'delete'; key: KeyInput }
  | { op: 'delete'; range: RangeSelector }
  | { op: 'get'; key: KeyInput }
  | { op: 'range'; range: RangeSelector; options?: Omit<RangeOptions, 'revision'> };

export type TxnOpResult =
  | { op: 'put'; revision: number }
  | { op: 'delete'; deleted: number }
  | { op: 'get'; kv: KeyValue | undefined }
  | { op: 'range'; kvs: KeyValue[]; more: boolean; count: number };

export interface TxnResult {
  succeeded: boolean;
  /** Store revision after the transaction. */
  revision: number;
  /** One result per operation of the branch that ran, in order. */
  results: TxnOpResult[];
}

export interface LeaseGrant {
  id: LeaseId;
  ttlSeconds: number;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  /** For a delete: the key, empty value, and modRevision = the delete's revision. */
  kv: KeyValue;
}

export interface WatchOptions {
  /** Deliver every event from this revision on (inclusive); default: events after now. */
  fromRevision?: number;
  /** Called if the watch ends on its own (store closed, compacted while disconnected). */
  onError?: (err: Error) => void;
}

export type WatchHandler = (event: WatchEvent) => void;

export interface Watch {
  /** The watch's start revision: events with modRevision >= this are delivered. */
  readonly startRevision: number;
  close(): Promise<void>;
}

export interface Store {
  readonly kind: 'embedded' | 'etcd';

  get(key: KeyInput, options?: ReadOptions): Promise<KeyValue | undefined>;
  range(selector: RangeSelector, options?: RangeOptions): Promise<RangeResult>;
  put(key: KeyInput, value: ValueInput, options?: PutOptions): Promise<PutResult>;
  delete(target: KeyInput | RangeSelector, options?: DeleteOptions): Promise<DeleteResult>;
  txn(compares: Compare[], onSuccess: TxnOp[], onFailure?: TxnOp[]): Promise<TxnResult>;

  grant(ttlSeconds: number): Promise<LeaseGrant>;
  /** Refreshes the lease once to its full TTL; fails with ERR_STORE_LEASE_NOT_FOUND if it is gone. */
  keepAlive(lease: LeaseId): Promise<LeaseGrant>;
  /** Ends the lease now and deletes its keys. */
  revoke(lease: LeaseId): Promise<void>;

  /** Delivers events in revision order; rejects with ERR_STORE_COMPACTED if fromRevision is compacted. */
  watch(selector: KeySelector, handler: WatchHandler, options?: WatchOptions): Promise<Watch>;

  /** Discards history below revision; reads and watches below it fail with ERR_STORE_COMPACTED. */
  compact(revision: number): Promise<void>;

  /** The current store revision. */
  revision(): Promise<number>;
  /** Resolves true when the store answers (used by /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface EmbeddedStoreOptions {
  kind: 'embedded';
  path: string;
  clock?: Clock;
  /**
   * Bytes of address space LMDB maps for the data file at open (default DEFAULT_MAP_SIZE).
   * Address space, not memory: the file grows only as data does. A store that outgrows it
   * is remapped larger, but every old mapping stays resident, so set it above any size the
   * store will reach.
   */
  mapSize?: number;
}

export interface EtcdStoreOptions {
  kind: 'etcd';
  endpoints: string[];
  /** Per-call deadline in ms (default 2,000). */
  timeoutMs?: number;
  /** Optional TLS and auth for production clusters. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  auth?: { username: string; password: string };
}

export type StoreOptions = EmbeddedStoreOptions | EtcdStoreOptions;
