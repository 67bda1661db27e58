// The Store contract on a real etcd v3 cluster. Every Store call maps to one etcd RPC (a
// compare-and-swap is a one-compare txn), so revisions, versions and leases are etcd's own.
import type {
  ICompare,
  IDeleteRangeResponse,
  ILeaseGrantResponse,
  ILeaseKeepAliveRequest,
  ILeaseKeepAliveResponse,
  IPutResponse,
  IRangeResponse,
  IResponseOp,
  ITxnResponse,
} from 'etcd3';
import { CompareResult, CompareTarget } from 'etcd3';
import { GatehouseError } from '../../errors.js';
import { LIMITS } from '../types.js';
import type {
  Compare,
  DeleteOptions,
  DeleteResult,
  EtcdStoreOptions,
  KeyInput,
  KeySelector,
  KeyValue,
  LeaseGrant,
  LeaseId,
  PutOptions,
  PutResult,
  RangeOptions,
  RangeResult,
  RangeSelector,
  ReadOptions,
  Store,
  TxnOp,
  TxnOpResult,
  TxnResult,
  ValueInput,
  Watch,
  WatchHandler,
  WatchOptions,
} from '../types.js';
import {
  bad,
  checkLeaseId,
  checkRevision,
  checkTtl,
  compareMessage,
  isRangeSelector,
  keyBuf,
  num,
  putRequest,
  rangeBufs,
  rangeRequest,
  selectorBufs,
  toKeyValue,
  txnOpMessage,
} from './codec.js';
import { Connection, type CallSpec } from './connection.js';
import { EtcdWatch } from './watch.js';

const READ = { idempotence: 'idempotent' } as const;
/** The key revision() and ping() read: any single key is a cheap linearizable round trip. */
const PROBE_KEY = Buffer.from([0]);

function spec<T>(s: CallSpec<T>): CallSpec<T> {
  return s;
}

/** The expected modRevision of a compare-and-swap (0 = absent), or undefined for a plain write. */
function expectedModRevision(options: { ifModRevision?: number; ifAbsent?: boolean }): number | undefined {
  const { ifModRevision, ifAbsent } = options;
  if (ifModRevision !== undefined && (!Number.isSafeInteger(ifModRevision) || ifModRevision < 0)) {
    throw bad('ifModRevision must be a non-negative integer');
  }
  if (ifAbsent === true) {
    if (ifModRevision !== undefined && ifModRevision !== 0) throw bad('ifAbsent contradicts ifModRevision');
    return 0;
  }
  return ifModRevision;
}

function conflict(key: Buffer, expected: number, res: ITxnResponse): GatehouseError {
  const current = res.responses[0]?.response_range?.kvs[0];
  const modRevision = current === undefined ? 0 : num(current.mod_revision);
  return new GatehouseError('ERR_STORE_CONFLICT', `key ${JSON.stringify(key.toString('utf8'))} has modRevision ${modRevision}, expected ${expected}`, {
    details: { modRevision },
  });
}

function casTxn(key: Buffer, expected: number, then: ITxnRequestOp): { compare: ICompare[]; success: ITxnRequestOp[]; failure: ITxnRequestOp[] } {
  return {
    compare: [{ key, target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: expected }],
    success: [then],
    // The failure branch reads the key so the conflict can say what it found.
    failure: [{ request_range: { key, keys_only: true } }],
  };
}
type ITxnRequestOp = ReturnType<typeof txnOpMessage>;

function opResult(op: TxnOp, res: IResponseOp | undefined, revision: number): TxnOpResult {
  switch (op.op) {
    case 'put':
      // All writes of a txn share its revision.
      return { op: 'put', revision };
    case 'delete':
      return { op: 'delete', deleted: num(res?.response_delete_range?.deleted) };
    case 'get': {
      const kv = res?.response_range?.kvs[0];
      return { op: 'get', kv: kv === undefined ? undefined : toKeyValue(kv) };
    }
    case 'range': {
      const r = res?.response_range;
      return { op: 'range', kvs: (r?.kvs ?? []).map(toKeyValue), more: r?.more ?? false, count: num(r?.count) };
    }
  }
}

export class EtcdStore implements Store {
  readonly kind = 'etcd' as const;
  readonly #conn: Connection;
  readonly #watches = new Set<EtcdWatch>();

  constructor(options: EtcdStoreOptions) {
    this.#conn = new Connection(options);
  }

  #open(): void {
    if (this.#conn.closed) throw this.#conn.closedError();
  }

  async get(key: KeyInput, options: ReadOptions = {}): Promise<KeyValue | undefined> {
    this.#open();
    const req = { key: keyBuf(key), revision: checkRevision(options.revision) };
    const res = await this.#conn.unary<IRangeResponse>('KV', 'range', req, READ);
    const kv = res.kvs[0];
    return kv === undefined ? undefined : toKeyValue(kv);
  }

  async range(selector: RangeSelector, options: RangeOptions = {}): Promise<RangeResult> {
    this.#open();
    const res = await this.#conn.unary<IRangeResponse>('KV', 'range', rangeRequest(selector, options), READ);
    return { kvs: res.kvs.map(toKeyValue), more: res.more, count: num(res.count), revision: num(res.header.revision) };
  }

  async put(key: KeyInput, value: ValueInput, options: PutOptions = {}): Promise<PutResult> {
    this.#open();
    const req = putRequest(key, value, options.lease);
    const expected = expectedModRevision(options);
    if (expected === undefined) {
      // Retried even after an ambiguous failure: applying the same value twice only adds a revision.
      const res = await this.#conn.unary<IPutResponse>('KV', 'put', req, READ);
      return { revision: num(res.header.revision) };
    }
    const res = await this.#conn.unary<ITxnResponse>('KV', 'txn', casTxn(req.key, expected, { request_put: req }), { idempotence: 'conditional' });
    if (!res.succeeded) throw conflict(req.key, expected, res);
    return { revision: num(res.header.revision) };
  }

  async delete(target: KeyInput | RangeSelector, options: DeleteOptions = {}): Promise<DeleteResult> {
    this.#open();
    const ranged = isRangeSelector(target);
    const req = ranged ? rangeBufs(target) : { key: keyBuf(target) };
    const expected = expectedModRevision(options);
    if (expected === undefined) {
      // Retried after an ambiguous failure: a second delete is a no-op (deleted may then read 0).
      const res = await this.#conn.unary<IDeleteRangeResponse>('KV', 'deleteRange', req, READ);
      return { revision: num(res.header.revision), deleted: num(res.deleted) };
    }
    if (ranged) throw bad('ifModRevision applies to a single key only');
    const res = await this.#conn.unary<ITxnResponse>('KV', 'txn', casTxn(req.key, expected, { request_delete_range: req }), { idempotence: 'conditional' });
    if (!res.succeeded) throw conflict(req.key, expected, res);
    return { revision: num(res.header.revision), deleted: num(res.responses[0]?.response_delete_range?.deleted) };
  }

  async txn(compares: Compare[], onSuccess: TxnOp[], onFailure: TxnOp[] = []): Promise<TxnResult> {
    this.#open();
    if (compares.length > LIMITS.maxTxnOps || onSuccess.length > LIMITS.maxTxnOps || onFailure.length > LIMITS.maxTxnOps) {
      throw new GatehouseError('ERR_STORE_TXN_TOO_LARGE', `a transaction may hold at most ${LIMITS.maxTxnOps} compares and ${LIMITS.maxTxnOps} operations per branch`);
    }
    const req = { compare: compares.map(compareMessage), success: onSuccess.map(txnOpMessage), failure: onFailure.map(txnOpMessage) };
    // Only a guarded txn that writes is unsafe to repeat: its first attempt could flip the guard.
    const writes = [...onSuccess, ...onFailure].some((op) => op.op === 'put' || op.op === 'delete');
    const idempotence = writes && compares.length > 0 ? 'conditional' : 'idempotent';
    const res = await this.#conn.unary<ITxnResponse>('KV', 'txn', req, { idempotence, tooLarge: 'ERR_STORE_TXN_TOO_LARGE' });
    const revision = num(res.header.revision);
    const ops = res.succeeded ? onSuccess : onFailure;
    return { succeeded: res.succeeded, revision, results: ops.map((op, i) => opResult(op, res.responses[i], revision)) };
  }

  async grant(ttlSeconds: number): Promise<LeaseGrant> {
    this.#open();
    checkTtl(ttlSeconds);
    // A retry after an ambiguous failure may leave an unused lease behind; it expires on its own.
    const res = await this.#conn.unary<ILeaseGrantResponse>('Lease', 'leaseGrant', { TTL: ttlSeconds, ID: 0 }, READ);
    if (res.error) throw new GatehouseError('ERR_STORE_UNAVAILABLE', `etcd: lease grant failed: ${res.error}`, { retryable: true });
    return { id: String(res.ID), ttlSeconds: num(res.TTL) };
  }

  async keepAlive(lease: LeaseId): Promise<LeaseGrant> {
    this.#open();
    const id = checkLeaseId(lease);
    const res = await this.#conn.exchange<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>('Lease', 'leaseKeepAlive', { ID: id }, READ);
    // etcd answers a keepalive for an unknown or expired lease with TTL 0, not with an error.
    if (num(res.TTL) <= 0) throw new GatehouseError('ERR_STORE_LEASE_NOT_FOUND', `lease ${id} does not exist or has expired`);
    return { id: lease, ttlSeconds: num(res.TTL) };
  }

  async revoke(lease: LeaseId): Promise<void> {
    this.#open();
    const id = checkLeaseId(lease);
    await this.#conn.unary<object>(
      'Lease',
      'leaseRevoke',
      { ID: id },
      spec<object>({ idempotence: 'idempotent', appliedEarlier: (e) => (e.code === 'ERR_STORE_LEASE_NOT_FOUND' ? {} : undefined) }),
    );
  }

  async watch(selector: KeySelector, handler: WatchHandler, options: WatchOptions = {}): Promise<Watch> {
    this.#open();
    const range = selectorBufs(selector);
    const from = checkRevision(options.fromRevision, 'fromRevision');
    if (from > 0) {
      // etcd reports a compacted start only after confirming the watch; ask first so watch() can reject.
      try {
        await this.#conn.unary<IRangeResponse>('KV', 'range', { ...range, revision: from, limit: 1, keys_only: true }, READ);
      } catch (err) {
        if (!(err instanceof GatehouseError && err.code === 'ERR_STORE_FUTURE_REVISION')) throw err;
      }
    }
    const w = new EtcdWatch(this.#conn, range, handler, from > 0 ? { ...options, fromRevision: from } : { ...options, fromRevision: 0 }, (ended) => this.#watches.delete(ended));
    this.#watches.add(w);
    try {
      await w.start();
    } catch (err) {
      await w.close();
      throw err;
    }
    return w;
  }

  async compact(revision: number): Promise<void> {
    this.#open();
    if (!Number.isSafeInteger(revision) || revision < 1) throw bad('compact revision must be a positive integer');
    await this.#conn.unary<object>(
      'KV',
      'compact',
      { revision },
      spec<object>({ idempotence: 'idempotent', appliedEarlier: (e) => (e.code === 'ERR_STORE_COMPACTED' ? {} : undefined) }),
    );
  }

  async revision(): Promise<number> {
    this.#open();
    const res = await this.#conn.unary<IRangeResponse>('KV', 'range', { key: PROBE_KEY, keys_only: true }, READ);
    return num(res.header.revision);
  }

  async ping(): Promise<boolean> {
    this.#open();
    try {
      await this.revision();
      return true;
    } catch (err) {
      if (err instanceof GatehouseError && err.code === 'ERR_STORE_CLOSED') throw err;
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#conn.closed) return;
    for (const w of [...this.#watches]) w.endWithStoreClosed();
    this.#watches.clear();
    this.#conn.close();
  }
}
