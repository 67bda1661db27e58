// The embedded Store: LMDB on local disk, etcd semantics. Calls are checked here, writes go
// through the Writer (one serial queue, batched into LMDB transactions), reads go straight to
// LMDB, and watches are fed by the Writer after each commit.
import type { Transaction } from 'lmdb';
import { GatehouseError } from '../../errors.js';
import { systemClock, type Clock } from '../../lib/clock.js';
import { checkKey, resolveRange, toBytes } from '../bytes.js';
import type {
  Compare, DeleteOptions, DeleteResult, EmbeddedStoreOptions, KeyInput, KeySelector, KeyValue, LeaseGrant, LeaseId, PutOptions,
  PutResult, RangeOptions, RangeResult, RangeSelector, ReadOptions, Store, TxnOp, TxnResult, ValueInput, Watch, WatchEvent,
  WatchHandler, WatchOptions,
} from '../types.js';
import { compactStep, type CompactionCursor } from './compaction.js';
import { decodeLease, readU64 } from './encoding.js';
import { LeaseDeadlines } from './lease-deadlines.js';
import { lockDirectory, type DirLock } from './lock.js';
import {
  conflict, deleteRange, endLease, grantLease, latestMeta, leaseNotFound, readLease, refreshLease, requireLease, writeDelete, writePut,
} from './mvcc.js';
import { secureStoreFolder } from './permissions.js';
import { rangeAsOf, rangeLatest, readAt, readLatest, type RangeQuery } from './read.js';
import { META_COMPACTED, META_REVISION, openTables, type Tables } from './tables.js';
import { applyTxn, checkRangeBound, compileCompare, compileOps } from './txn.js';
import { badArgument, checkLimit, checkRevision, checkTtl, checkTxnSize, keyBytes, parseLeaseId, valueBytes } from './validate.js';
import { WatchHub, Watcher, matcher, replay } from './watch.js';
import { Writer } from './writer.js';

function isKeyInput(target: KeyInput | RangeSelector): target is KeyInput {
  return typeof target === 'string' || target instanceof Uint8Array;
}

export class EmbeddedStore implements Store {
  readonly kind = 'embedded' as const;
  readonly #t: Tables;
  readonly #clock: Clock;
  readonly #lock: DirLock;
  readonly #hub = new WatchHub();
  readonly #deadlines: LeaseDeadlines;
  readonly #writer: Writer;
  #closing: Promise<void> | undefined;

  private constructor(t: Tables, clock: Clock, lock: DirLock) {
    this.#t = t;
    this.#clock = clock;
    this.#lock = lock;
    this.#deadlines = new LeaseDeadlines(clock, (id) => this.#expire(id));
    const revision = t.meta.get(META_REVISION) ?? 0;
    this.#writer = new Writer(t, clock, this.#deadlines, revision, (events, from, to) => this.#dispatch(events, from, to), () => this.#hub.size > 0);
  }

  static async open(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
    secureStoreFolder(options.path);
    const lock = lockDirectory(options.path);
    let t: Tables;
    try {
      t = openTables(options.path, options.mapSize);
    } catch (err) {
      lock.release();
      throw new GatehouseError('ERR_STORE_UNAVAILABLE', 'the embedded store could not be opened', { cause: err });
    }
    const store = new EmbeddedStore(t, options.clock ?? systemClock, lock);
    store.#resumeLeases();
    return store;
  }

  // ---- reads

  async get(key: KeyInput, options?: ReadOptions): Promise<KeyValue | undefined> {
    this.#assertOpen();
    const k = keyBytes(key);
    const rev = checkRevision(options?.revision);
    if (rev === 0) return readLatest(this.#t, k);
    return this.#snapshot((txn) => {
      this.#checkReadable(rev, txn);
      return readAt(this.#t, k, rev, txn);
    });
  }

  async range(selector: RangeSelector, options: RangeOptions = {}): Promise<RangeResult> {
    this.#assertOpen();
    const query = toQuery(selector, options);
    const rev = checkRevision(options.revision);
    return this.#snapshot((txn) => {
      const current = this.#checkReadable(rev, txn);
      const rows = rev === 0 ? rangeLatest(this.#t, query, txn) : rangeAsOf(this.#t, query, rev, current, txn);
      return { ...rows, revision: current };
    });
  }

  // ---- writes

  async put(key: KeyInput, value: ValueInput, options: PutOptions = {}): Promise<PutResult> {
    this.#assertOpen();
    const k = keyBytes(key);
    const v = valueBytes(value);
    const lease = options.lease === undefined ? 0 : parseLeaseId(options.lease);
    let expect: number | undefined = options.ifAbsent === true ? 0 : undefined;
    if (options.ifModRevision !== undefined) {
      const m = checkRevision(options.ifModRevision, 'ifModRevision');
      if (expect !== undefined && m !== expect) throw badArgument('ifAbsent and ifModRevision disagree');
      expect = m;
    }
    return this.#writer.submit((ctx) => {
      if (expect !== undefined) {
        const current = latestMeta(ctx, k).modRevision;
        if (current !== expect) throw conflict(current);
      }
      requireLease(ctx, lease);
      return { revision: writePut(ctx, k, v, lease) };
    }, k.length + v.length);
  }

  async delete(target: KeyInput | RangeSelector, options: DeleteOptions = {}): Promise<DeleteResult> {
    this.#assertOpen();
    if (!isKeyInput(target)) {
      if (options.ifModRevision !== undefined) throw badArgument('ifModRevision applies to a single key only');
      const { start, end } = toQuery(target, {});
      return this.#writer.submit((ctx) => {
        const deleted = deleteRange(ctx, start, end);
        return { revision: ctx.current, deleted };
      });
    }
    const k = keyBytes(target);
    const expect = options.ifModRevision === undefined ? undefined : checkRevision(options.ifModRevision, 'ifModRevision');
    return this.#writer.submit((ctx) => {
      const old = latestMeta(ctx, k);
      if (expect !== undefined && old.modRevision !== expect) throw conflict(old.modRevision);
      if (old.exists) writeDelete(ctx, k, old.lease);
      return { revision: ctx.current, deleted: old.exists ? 1 : 0 };
    }, k.length);
  }

  async txn(compares: Compare[], onSuccess: TxnOp[], onFailure: TxnOp[] = []): Promise<TxnResult> {
    this.#assertOpen();
    checkTxnSize(compares.length, onSuccess.length, onFailure.length);
    const cs = compares.map(compileCompare);
    const success = compileOps(onSuccess);
    const failure = compileOps(onFailure);
    let size = 0;
    for (const o of [...success, ...failure]) if (o.op === 'put') size += o.key.length + o.value.length;
    return this.#writer.submit((ctx) => applyTxn(ctx, cs, success, failure), size);
  }

  // ---- leases

  async grant(ttlSeconds: number): Promise<LeaseGrant> {
    this.#assertOpen();
    const ttl = checkTtl(ttlSeconds);
    return this.#writer.submit((ctx) => ({ id: String(grantLease(ctx, ttl)), ttlSeconds: ttl }));
  }

  async keepAlive(lease: LeaseId): Promise<LeaseGrant> {
    this.#assertOpen();
    const id = parseLeaseId(lease);
    if (id === 0) throw leaseNotFound();
    const grant = await this.#writer.submit((ctx): LeaseGrant | undefined => {
      const current = readLease(ctx, id);
      if (current === undefined) throw leaseNotFound();
      // Past its deadline but its timer has not run yet: it is expired; end it now.
      if (current.deadline <= ctx.now) {
        endLease(ctx, id);
        return undefined;
      }
      refreshLease(ctx, id, current.ttlSeconds);
      return { id: String(id), ttlSeconds: current.ttlSeconds };
    });
    if (grant === undefined) throw leaseNotFound();
    return grant;
  }

  async revoke(lease: LeaseId): Promise<void> {
    this.#assertOpen();
    const id = parseLeaseId(lease);
    if (id === 0) throw leaseNotFound();
    await this.#writer.submit((ctx) => {
      if (readLease(ctx, id) === undefined) throw leaseNotFound();
      endLease(ctx, id);
    });
  }

  // ---- watch, compaction

  async watch(selector: KeySelector, handler: WatchHandler, options: WatchOptions = {}): Promise<Watch> {
    this.#assertOpen();
    if ('key' in selector) checkKey(selector.key);
    else if ('prefix' in selector) checkRangeBound(toBytes(selector.prefix));
    else checkRangeBound(resolveRange(selector).start);
    const match = matcher(selector);
    const from = checkRevision(options.fromRevision, 'fromRevision');
    // Everything through `through` has been dispatched; later revisions will be.
    const through = this.#writer.revision;
    const startRevision = from === 0 ? through + 1 : from;
    let history: WatchEvent[] = [];
    if (from !== 0) history = this.#snapshot((txn) => replay(this.#t, match, from, through, txn), through);
    const watcher = new Watcher(this.#hub, match, handler, startRevision, startRevision - 1, options.onError);
    watcher.enqueue(history, through);
    this.#hub.add(watcher);
    if (history.length > 0) queueMicrotask(() => watcher.deliver());
    return watcher;
  }

  async compact(revision: number): Promise<void> {
    this.#assertOpen();
    const target = checkRevision(revision);
    await this.#writer.submit((ctx) => {
      if (target > ctx.current) throw new GatehouseError('ERR_STORE_FUTURE_REVISION', `revision ${target} is newer than the store (${ctx.current})`);
      const compacted = ctx.t.meta.get(META_COMPACTED) ?? 0;
      if (target <= compacted) throw compactedError(target, compacted);
      ctx.dirty = true;
      ctx.t.meta.putSync(META_COMPACTED, target);
    });
    let cursor: CompactionCursor | 'done' = { target, after: undefined, pending: undefined, versionsDone: false };
    while (cursor !== 'done') {
      const from: CompactionCursor = cursor;
      cursor = await this.#writer.submit((ctx) => compactStep(ctx, from));
    }
  }

  // ---- housekeeping

  async revision(): Promise<number> {
    this.#assertOpen();
    return this.#writer.revision;
  }

  async ping(): Promise<boolean> {
    if (this.#closing !== undefined) return false;
    this.#t.meta.get(META_REVISION);
    return true;
  }

  /** Resolves once every write queued so far (including lease expiries) has committed. */
  async settle(): Promise<void> {
    await this.#writer.idle();
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    // Writes accepted before close still commit; nothing new is accepted.
    await this.#writer.idle();
    this.#deadlines.stop();
    this.#hub.endAll(new GatehouseError('ERR_STORE_CLOSED'));
    try {
      await this.#t.root.close();
    } finally {
      this.#lock.release();
    }
  }

  #assertOpen(): void {
    if (this.#closing !== undefined) throw new GatehouseError('ERR_STORE_CLOSED');
  }

  /** Runs fn in one read snapshot that includes at least revision `atLeast`. */
  #snapshot<T>(fn: (txn: Transaction) => T, atLeast = 0): T {
    let txn = this.#t.root.useReadTransaction();
    if ((this.#t.meta.get(META_REVISION, { transaction: txn }) ?? 0) < atLeast) {
      txn.done();
      this.#t.root.resetReadTxn();
      txn = this.#t.root.useReadTransaction();
    }
    try {
      return fn(txn);
    } finally {
      txn.done();
    }
  }

  /** Checks a read revision against the snapshot; returns the snapshot's current revision. */
  #checkReadable(rev: number, txn: Transaction): number {
    const current = this.#t.meta.get(META_REVISION, { transaction: txn }) ?? 0;
    if (rev === 0) return current;
    if (rev > current) throw new GatehouseError('ERR_STORE_FUTURE_REVISION', `revision ${rev} is newer than the store (${current})`, { details: { revision: current } });
    const compacted = this.#t.meta.get(META_COMPACTED, { transaction: txn }) ?? 0;
    if (rev < compacted) throw compactedError(rev, compacted);
    return current;
  }

  #dispatch(events: WatchEvent[] | undefined, from: number, to: number): void {
    if (this.#hub.size === 0) return;
    try {
      // A watch started while the batch ran, which built no events: read them from the log.
      const all = events ?? this.#snapshot((txn) => replay(this.#t, () => true, from, to, txn, false), to);
      this.#hub.dispatch(all, to);
    } catch (err) {
      // Watchers cannot be given a gap: end them; they resume with fromRevision.
      this.#hub.endAll(err instanceof Error ? err : new GatehouseError('ERR_INTERNAL'));
    }
  }

  // ---- lease deadlines (in memory; the leases themselves are in LMDB)

  #expire(id: number): void {
    if (this.#closing !== undefined) return;
    this.#writer
      .submit((ctx) => {
        const lease = readLease(ctx, id);
        if (lease === undefined) return;
        // Kept alive since the timer was set: wait for the new deadline.
        if (lease.deadline > ctx.now) {
          ctx.after.push(() => this.#deadlines.schedule(id, lease.deadline));
          return;
        }
        endLease(ctx, id);
      })
      .catch(() => {
        // The store failed to commit; the next keepAlive or reopen finds the lease overdue.
      });
  }

  #resumeLeases(): void {
    const now = this.#clock.now();
    for (const { key, value } of this.#t.leases.getRange({})) {
      const id = readU64(key, 0);
      const { deadline } = decodeLease(value);
      if (deadline <= now) this.#expire(id);
      else this.#deadlines.schedule(id, deadline);
    }
  }
}

function compactedError(rev: number, compacted: number): GatehouseError {
  return new GatehouseError('ERR_STORE_COMPACTED', `revision ${rev} is compacted (compacted through ${compacted})`, { details: { compactRevision: compacted } });
}

function toQuery(selector: RangeSelector, options: RangeOptions): RangeQuery {
  const { start, end } = resolveRange(selector);
  return {
    start: checkRangeBound(start),
    end: checkRangeBound(end),
    limit: checkLimit(options.limit),
    reverse: options.reverse === true,
    keysOnly: options.keysOnly === true,
  };
}
