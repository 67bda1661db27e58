// Serialises every write. Calls queue up while a batch commits; the next batch takes all of
// them (up to a size cap) into ONE LMDB transaction, so N puts in flight cost one commit and
// one fsync. Revisions are assigned here, in queue order, by one JS thread: serial by
// construction.
//
// Two batches may be in flight: while one is flushed (fsync, on LMDB's write thread), the next
// runs its operations on this thread. A long queue with nothing in flight is split in two so
// that this overlap happens at all. Each batch reads its base revision inside its own
// transaction, so it builds on exactly what is stored, even if the batch before it failed to
// commit. Callers still hear back in commit order, only once their batch is durable.
//
// lmdb-js commits an async transaction even if its callback throws, so the batch runs in a
// child transaction: an operation that fails after writing aborts it, and the batch is redone
// with each operation in its own child transaction (only the failing one is lost).
import type { Clock } from '../../lib/clock.js';
import { GatehouseError } from '../../errors.js';
import type { WatchEvent } from '../types.js';
import { OpContext, type LeaseTimers } from './context.js';
import { encodeLogScratch, revKeyScratch } from './encoding.js';
import { META_REVISION, type Tables } from './tables.js';

export type Apply<T> = (ctx: OpContext) => T;

const MAX_BATCH_OPS = 10_000;
const MAX_BATCH_BYTES = 16 * 1024 * 1024;
/** Batches started whose commit has not resolved yet. */
const MAX_IN_FLIGHT = 2;
/** A queue is split in two only if both halves are worth a commit of their own. */
const SPLIT_MIN_BYTES = 32 * 1024;
/** Bytes an operation counts for when splitting, besides its key and value. */
const OP_OVERHEAD_BYTES = 64;

interface Pending {
  apply: Apply<unknown>;
  size: number;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  /** undefined: not run (or its work was rolled back); then value or error holds the outcome. */
  ok: boolean | undefined;
  value: unknown;
  error: unknown;
}

interface BatchState {
  start: number;
  rev: number;
  /** undefined: nobody watched while the batch ran, so its events were not built. */
  events: WatchEvent[] | undefined;
  after: Array<() => void>;
}

function settle(batch: readonly Pending[]): void {
  for (const op of batch) {
    if (op.ok === true) op.resolve(op.value);
    else op.reject(op.ok === undefined ? new GatehouseError('ERR_INTERNAL') : op.error);
  }
}

function rejectAll(batch: readonly Pending[], err: unknown): void {
  for (const op of batch) op.reject(err);
}

export class Writer {
  readonly #t: Tables;
  readonly #clock: Clock;
  readonly #timers: LeaseTimers;
  readonly #onCommit: (events: WatchEvent[] | undefined, from: number, to: number) => void;
  readonly #watched: () => boolean;
  #queue: Pending[] = [];
  #queuedBytes = 0;
  #pumpQueued = false;
  /** The batch whose transaction callback has not run yet: the next one waits for it. */
  #applying: Pending[] | undefined;
  #inFlight = 0;
  /** Batches started and not yet settled. */
  #unsettled = 0;
  #idle: Array<() => void> = [];
  #revision: number;
  /** Settles callers in commit order once their batch is on disk. */
  #acks: Promise<void> = Promise.resolve();

  constructor(
    t: Tables,
    clock: Clock,
    timers: LeaseTimers,
    revision: number,
    onCommit: (events: WatchEvent[] | undefined, from: number, to: number) => void,
    watched: () => boolean,
  ) {
    this.#watched = watched;
    this.#t = t;
    this.#clock = clock;
    this.#timers = timers;
    this.#revision = revision;
    this.#onCommit = onCommit;
  }

  /** The revision of the last committed batch. */
  get revision(): number {
    return this.#revision;
  }

  submit<T>(apply: Apply<T>, size = 0): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ apply, size, resolve, reject, ok: undefined, value: undefined, error: undefined });
      this.#queuedBytes += size + OP_OVERHEAD_BYTES;
      this.#schedulePump();
    });
  }

  /** Resolves once every queued write has committed. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #isIdle(): boolean {
    return this.#queue.length === 0 && this.#unsettled === 0;
  }

  #wakeIdle(): void {
    if (!this.#isIdle() || this.#idle.length === 0) return;
    const idle = this.#idle;
    this.#idle = [];
    for (const fn of idle) fn();
  }

  // On a microtask: calls made in the same tick share a batch, and a batch never starts from
  // inside another's transaction callback.
  #schedulePump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    queueMicrotask(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#applying !== undefined || this.#inFlight >= MAX_IN_FLIGHT || this.#queue.length === 0) return;
    this.#start(this.#take());
  }

  #take(): Pending[] {
    const q = this.#queue;
    let limitBytes = MAX_BATCH_BYTES;
    // Nothing in flight: take half, so the rest runs while this half is flushed.
    if (this.#inFlight === 0 && q.length > 1 && this.#queuedBytes >= SPLIT_MIN_BYTES) limitBytes = Math.min(limitBytes, Math.ceil(this.#queuedBytes / 2));
    let n = 0;
    let bytes = 0;
    while (n < q.length && n < MAX_BATCH_OPS && (n === 0 || bytes + q[n]!.size + OP_OVERHEAD_BYTES <= limitBytes)) {
      bytes += q[n]!.size + OP_OVERHEAD_BYTES;
      n++;
    }
    this.#queuedBytes -= bytes;
    return n === q.length ? q.splice(0) : q.splice(0, n);
  }

  #start(batch: Pending[]): void {
    this.#applying = batch;
    this.#inFlight++;
    this.#unsettled++;
    let state: BatchState | undefined;
    const committed = this.#t.root.transaction(() => {
      try {
        state = this.#run(batch);
      } finally {
        this.#applying = undefined;
        this.#schedulePump();
      }
    });
    // Taken right after queueing the transaction, so it names the flush that covers it.
    const durable = new Promise<unknown>((resolve, reject) => {
      void this.#t.root.flushed.then(resolve, reject);
    });
    // Only a committed batch waits on it; a failed commit is reported on its own.
    durable.catch(() => undefined);
    committed.then(
      () => this.#committed(batch, state, durable),
      (err: unknown) => {
        // The commit failed: nothing of this batch is stored.
        rejectAll(batch, new GatehouseError('ERR_STORE_UNAVAILABLE', 'the embedded store failed to commit a write', { cause: err, retryable: true }));
        this.#finished(batch);
      },
    );
  }

  #committed(batch: Pending[], state: BatchState | undefined, durable: Promise<unknown>): void {
    if (state === undefined) {
      rejectAll(batch, new GatehouseError('ERR_INTERNAL'));
      this.#finished(batch);
      return;
    }
    if (state.rev !== state.start) this.#revision = state.rev;
    for (const fn of state.after) fn();
    // Committed: visible to reads and watchers now (the next batch may run while this one is
    // flushed); callers hear back only once it is durable.
    if (state.rev !== state.start) this.#onCommit(state.events, state.start + 1, state.rev);
    this.#acks = Promise.all([this.#acks, durable]).then(
      () => settle(batch),
      (err: unknown) => rejectAll(batch, new GatehouseError('ERR_STORE_UNAVAILABLE', 'the embedded store failed to flush a write', { cause: err })),
    );
    void this.#acks.then(() => this.#finished(batch, false));
    this.#inFlight--;
    this.#schedulePump();
  }

  /** A batch is done (settled, or rejected without committing). */
  #finished(batch: Pending[], wasInFlight = true): void {
    if (this.#applying === batch) this.#applying = undefined;
    if (wasInFlight) this.#inFlight--;
    this.#unsettled--;
    this.#schedulePump();
    this.#wakeIdle();
  }

  /** Runs in the batch's write transaction. */
  #run(batch: Pending[]): BatchState {
    // What is stored, not what was expected: a batch before this one may have failed to commit.
    const start = this.#t.meta.get(META_REVISION) ?? 0;
    let state: BatchState | undefined;
    try {
      this.#t.root.transactionSync(() => {
        state = this.#applyAll(batch, start, false);
      });
    } catch {
      state = this.#applyAll(batch, start, true);
    }
    return state!;
  }

  #applyAll(batch: Pending[], start: number, isolate: boolean): BatchState {
    const wantEvents = this.#watched();
    const state: BatchState = { start, rev: start, events: wantEvents ? [] : undefined, after: [] };
    const now = this.#clock.now();
    for (const op of batch) {
      if (!isolate) {
        this.#applyOne(op, state, now, wantEvents);
        continue;
      }
      try {
        this.#t.root.transactionSync(() => this.#applyOne(op, state, now, wantEvents));
      } catch (err) {
        op.ok = false;
        op.error = err;
      }
    }
    if (state.rev !== start) this.#t.meta.putSync(META_REVISION, state.rev);
    return state;
  }

  #applyOne(op: Pending, state: BatchState, now: number, wantEvents: boolean): void {
    op.ok = undefined;
    const ctx = new OpContext(this.#t, now, this.#timers, state.rev, wantEvents);
    let value: unknown;
    try {
      value = op.apply(ctx);
    } catch (err) {
      // Nothing written yet: fail just this operation. Otherwise abort the transaction.
      if (ctx.dirty) throw err;
      op.ok = false;
      op.error = err;
      return;
    }
    if (ctx.wroteRevision) {
      this.#t.log.putSync(revKeyScratch(ctx.current), encodeLogScratch(ctx.changes));
      state.rev = ctx.current;
    }
    if (state.events !== undefined) for (const e of ctx.events) state.events.push(e);
    for (const fn of ctx.after) state.after.push(fn);
    op.ok = true;
    op.value = value;
  }
}
