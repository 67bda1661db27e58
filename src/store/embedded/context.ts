// What one queued write sees while it runs inside the batch's LMDB transaction: the tables
// (reads see earlier writes of the same batch), a lazily assigned revision, and buffers for
// the log entry, watch events and after-commit effects that the writer keeps only if the
// operation succeeds.
import type { WatchEvent } from '../types.js';
import type { LogChange } from './encoding.js';
import type { Tables } from './tables.js';

/** Lease timers live in memory; writes only ask for them to change once their batch commits. */
export interface LeaseTimers {
  schedule(lease: number, deadline: number): void;
  cancel(lease: number): void;
}

export class OpContext {
  /** 0 until the operation first writes a key; then base + 1, shared by all its writes. */
  #rev = 0;
  /** True once anything was written: an error after that must abort the LMDB transaction. */
  dirty = false;
  readonly changes: LogChange[] = [];
  readonly events: WatchEvent[] = [];
  readonly after: Array<() => void> = [];

  constructor(
    readonly t: Tables,
    readonly now: number,
    readonly leaseTimers: LeaseTimers,
    readonly base: number,
    /** False when nobody watches: events are then not built at all (replays read the log). */
    readonly wantEvents: boolean,
  ) {}

  /** The revision this operation writes at (allocated on first use). */
  revision(): number {
    if (this.#rev === 0) this.#rev = this.base + 1;
    return this.#rev;
  }

  /** The store revision once this operation is applied. */
  get current(): number {
    return this.#rev === 0 ? this.base : this.#rev;
  }

  get wroteRevision(): boolean {
    return this.#rev !== 0;
  }
}
