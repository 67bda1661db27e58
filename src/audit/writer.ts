// Appends audit events to the store under this replica's prefix, in batches, so the proxy
// never waits on the store per request. Sequence numbers are assigned at append time, so
// the stored order is the order events happened on this replica.
import type { Store, TxnOp } from '../store/index.js';
import { LIMITS } from '../store/index.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { AuditEvent, AuditSink } from '../contracts/audit.js';

export const AUDIT_PREFIX = '/gatehouse/audit/';

/** Zero-padded so keys sort in sequence order. */
export function auditKey(replica: string, seq: number): string {
  return `${AUDIT_PREFIX}${replica}/${String(seq).padStart(16, '0')}`;
}

export interface AuditWriterOptions {
  store: Store;
  replica: string;
  clock: Clock;
  /** Flush when this many events wait (default 256). */
  batchSize?: number;
  /** Flush at least this often, ms (default 50). */
  flushIntervalMs?: number;
  /** Most events held while the store is unreachable (default 100,000); beyond it events are counted as dropped. */
  maxQueued?: number;
  onError?: (err: unknown) => void;
}

export interface AuditWriterStats {
  appended: number;
  written: number;
  dropped: number;
  queued: number;
  failures: number;
}

export class AuditWriter implements AuditSink {
  readonly replica: string;
  #store: Store;
  #clock: Clock;
  #batchSize: number;
  #interval: number;
  #maxQueued: number;
  #onError: (err: unknown) => void;
  #queue: { seq: number; event: AuditEvent }[] = [];
  #nextSeq: number;
  #timer: TimerHandle | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;
  #backoffMs = 0;
  readonly stats: AuditWriterStats = { appended: 0, written: 0, dropped: 0, queued: 0, failures: 0 };

  private constructor(o: AuditWriterOptions, nextSeq: number) {
    this.replica = o.replica;
    this.#store = o.store;
    this.#clock = o.clock;
    this.#batchSize = o.batchSize ?? 256;
    this.#interval = o.flushIntervalMs ?? 50;
    this.#maxQueued = o.maxQueued ?? 100_000;
    this.#onError = o.onError ?? (() => undefined);
    this.#nextSeq = nextSeq;
  }

  /** Opens the writer, continuing this replica's sequence after the last stored event. */
  static async open(o: AuditWriterOptions): Promise<AuditWriter> {
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(o.replica)) throw new TypeError(`bad replica id ${JSON.stringify(o.replica)}`);
    const last = await o.store.range({ prefix: `${AUDIT_PREFIX}${o.replica}/` }, { reverse: true, limit: 1, keysOnly: true });
    const lastKey = last.kvs[0] ? Buffer.from(last.kvs[0].key).toString('utf8') : undefined;
    const lastSeq = lastKey ? Number(lastKey.slice(lastKey.lastIndexOf('/') + 1)) : 0;
    return new AuditWriter(o, lastSeq + 1);
  }

  append(event: AuditEvent): void {
    if (this.#closed) return;
    this.stats.appended++;
    if (this.#queue.length >= this.#maxQueued) {
      this.stats.dropped++;
      return;
    }
    this.#queue.push({ seq: this.#nextSeq++, event });
    this.stats.queued = this.#queue.length;
    if (this.#queue.length >= this.#batchSize && this.#backoffMs === 0) void this.flush();
    else this.#schedule(this.#backoffMs || this.#interval);
  }

  #schedule(ms: number): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      void this.flush();
    }, ms);
  }

  /** Writes everything queued; resolves when it is in the store (or the attempt failed). */
  async flush(): Promise<void> {
    if (this.#flushing) {
      await this.#flushing;
      if (this.#queue.length === 0) return;
    }
    this.#flushing = this.#flushOnce().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async #flushOnce(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, Math.min(this.#batchSize, LIMITS.maxTxnOps));
      const ops: TxnOp[] = batch.map(({ seq, event }) => ({ op: 'put', key: auditKey(this.replica, seq), value: JSON.stringify(event) }));
      try {
        await this.#store.txn([], ops);
      } catch (err) {
        this.stats.failures++;
        this.#onError(err);
        // Keep the events; retry with backoff (the disk spool arrives with the audit-chain issue).
        this.#backoffMs = Math.min(Math.max(this.#backoffMs * 2, 100), 5_000);
        this.#schedule(this.#backoffMs);
        return;
      }
      this.#backoffMs = 0;
      this.#queue.splice(0, batch.length);
      this.stats.written += batch.length;
      this.stats.queued = this.#queue.length;
    }
  }

  /** Flushes what is queued (bounded by the store's own deadlines) and stops. */
  async close(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.flush().catch(() => undefined);
    this.#closed = true;
  }
}
