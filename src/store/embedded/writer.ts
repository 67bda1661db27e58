// Serialises every write. Calls queue up while a batch commits; the next batch takes all of
// them (up to a size cap) into ONE LMDB transaction, so N puts in flight cost one commit and
// one fsync. Revisions are assigned here, in queue order, by one JS thread: serial by
// construction.
//
// lmdb-js commits an async transaction even if its callback throws, so the batch runs in a
// child transaction: an operation that fails after writing aborts it, and the batch is redone
// with each operation in its own child transaction (only the failing one is lost).
import type { Clock } from '../../lib/clock.js';
import { GatehouseError } from '../../errors.js';
import type { WatchEvent } from '../types.js';
import { OpContext, type LeaseTimers } from './context.js';
import { encodeLog, revKey } from './encoding.js';
import { META_REVISION, type Tables } from './tables.js';

export type Apply<T> = (ctx: OpContext) => T;

const MAX_BATCH_OPS = 10_000;
const MAX_BATCH_BYTES = 16 * 1024 * 1024;

interface Pending {
  apply: Apply<unknown>;
  size: number;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  outcome: { ok: true; value: unknown } | { ok: false; error: unknown } | undefined;
}

interface BatchState {
  rev: number;
  /** undefined: nobody watched while the batch ran, so its events were not built. */
  events: WatchEvent[] | undefined;
  after: Array<() => void>;
}

function settle(batch: readonly Pending[]): void {
  for (const op of batch) {
    const outcome = op.outcome;
    if (outcome?.ok === true) op.resolve(outcome.value);
    else op.reject(outcome === undefined ? new GatehouseError('ERR_INTERNAL') : outcome.error);
  }
}

export class Writer {
  readonly #t: Tables;
  readonly #clock: Clock;
  readonly #timers: LeaseTimers;
  readonly #onCommit: (events: WatchEvent[] | undefined, from: number, to: number) => void;
  #queue: Pending[] = [];
  #running = false;
  #idle: Array<() => void> = [];
  #revision: number;
  /** Settles callers in commit order once their batch is on disk. */
  #acks: Promise<void> = Promise.resolve();

  readonly #watched: () => boolean;

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
      this.#queue.push({ apply, size, resolve, reject, outcome: undefined });
      if (!this.#running) {
        this.#running = true;
        // Start on a microtask so calls made in the same tick share the first batch.
        queueMicrotask(() => void this.#loop());
      }
    });
  }

  /** Resolves once every queued write has committed. */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #loop(): Promise<void> {
    for (;;) {
      while (this.#queue.length > 0) {
        let n = 0;
        let bytes = 0;
        while (n < this.#queue.length && n < MAX_BATCH_OPS && (n === 0 || bytes + this.#queue[n]!.size <= MAX_BATCH_BYTES)) {
          bytes += this.#queue[n]!.size;
          n++;
        }
        const batch = this.#queue.splice(0, n);
        await this.#commit(batch);
      }
      await this.#acks;
      // Callers settled by that wait may have queued more.
      if (this.#queue.length === 0) break;
    }
    this.#running = false;
    const idle = this.#idle;
    this.#idle = [];
    for (const fn of idle) fn();
  }

  async #commit(batch: Pending[]): Promise<void> {
    const start = this.#revision;
    let state: BatchState = { rev: start, events: undefined, after: [] };
    try {
      await this.#t.root.transaction(() => {
        try {
          this.#t.root.transactionSync(() => {
            state = this.#applyAll(batch, start, false);
          });
        } catch {
          state = this.#applyAll(batch, start, true);
        }
      });
    } catch (err) {
      // The commit failed: nothing of this batch is stored.
      const failure = new GatehouseError('ERR_STORE_UNAVAILABLE', 'the embedded store failed to commit a write', { cause: err, retryable: true });
      for (const op of batch) op.reject(failure);
      return;
    }
    this.#revision = state.rev;
    for (const fn of state.after) fn();
    // Committed: visible to reads and watchers now (the next batch may start while this one
    // is flushed); callers hear back only once it is durable.
    if (state.rev !== start) this.#onCommit(state.events, start + 1, state.rev);
    const durable = new Promise<unknown>((resolve, reject) => {
      // Called synchronously, so it names this commit's flush, not a later one's.
      void this.#t.root.flushed.then(resolve, reject);
    });
    this.#acks = Promise.all([this.#acks, durable]).then(
      () => settle(batch),
      (err: unknown) => {
        const failure = new GatehouseError('ERR_STORE_UNAVAILABLE', 'the embedded store failed to flush a write', { cause: err });
        for (const op of batch) op.reject(failure);
      },
    );
  }

  #applyAll(batch: Pending[], start: number, isolate: boolean): BatchState {
    const wantEvents = this.#watched();
    const state: BatchState = { rev: start, events: wantEvents ? [] : undefined, after: [] };
    const now = this.#clock.now();
    for (const op of batch) {
      if (!isolate) {
        this.#applyOne(op, state, now, wantEvents);
        continue;
      }
      try {
        this.#t.root.transactionSync(() => this.#applyOne(op, state, now, wantEvents));
      } catch (err) {
        op.outcome = { ok: false, error: err };
      }
    }
    if (state.rev !== start) this.#t.meta.putSync(META_REVISION, state.rev);
    return state;
  }

  #applyOne(op: Pending, state: BatchState, now: number, wantEvents: boolean): void {
    op.outcome = undefined;
    const ctx = new OpContext(this.#t, now, this.#timers, state.rev, wantEvents);
    let value: unknown;
    try {
      value = op.apply(ctx);
    } catch (err) {
      // Nothing written yet: fail just this operation. Otherwise abort the transaction.
      if (ctx.dirty) throw err;
      op.outcome = { ok: false, error: err };
      return;
    }
    if (ctx.wroteRevision) {
      this.#t.log.putSync(revKey(ctx.current), encodeLog(ctx.changes));
      state.rev = ctx.current;
    }
    if (state.events !== undefined) for (const e of ctx.events) state.events.push(e);
    for (const fn of ctx.after) state.after.push(fn);
    op.outcome = { ok: true, value };
  }
}
