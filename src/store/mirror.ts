// The one store follower. Everything that keeps a store prefix in memory (sessions, user status,
// policies, signing keys, revocations, the CRL list) uses it:
//   - reads the whole prefix a page at a time at one revision, then watches from the next one;
//   - after a lost watch (compaction while away, a broken connection) reads it whole again, with
//     backoff on the injected clock, until it holds; keys gone meanwhile are reported as deletes;
//   - decodes each record on its own: one that cannot be decoded (or whose handler throws) is
//     counted and reported, and the component forgets what it held for that key, but the
//     follower goes on: a bad record never ends a watch.
// Events of a watch that was replaced never reach the handlers.
import { GatehouseError, isGatehouseError } from '../errors.js';
import { Backoff, type BackoffPolicy } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { text, toBytes } from './bytes.js';
import { rangePages } from './pages.js';
import type { KeyValue, Store, Watch, WatchEvent } from './types.js';

/** Where a record comes from: the first read, a re-read after a lost watch, or the watch. */
export type FollowPhase = 'load' | 'resync' | 'watch';

/** A record that could not be decoded or applied. */
export interface BadRecord {
  prefix: string;
  /** The key, shortened for logs (a component may hide part of it: describeKey). */
  key: string;
  /** The record's modRevision. */
  revision: number;
  /** Why; never carries the record's value. */
  error: GatehouseError;
}

/**
 * The one way followers report trouble: every component takes one as its `follower` option.
 * The gateway wires one that counts a metric, logs and raises an audit alert.
 */
export interface FollowerReporter {
  /** A record was skipped (counted; the follower goes on). */
  badRecord(info: BadRecord): void;
  /** The watch ended on its own, or a re-read after that failed: another re-read is scheduled. */
  watchLost(prefix: string, err: Error): void;
  /** After a lost watch the prefix was read whole again: current at `revision`, watching again. */
  resynced(prefix: string, revision: number): void;
}

/** A reporter that hands bad records and lost watches to a component's onError (when no reporter is wired). */
export function reporterFor(onError: ((err: Error) => void) | undefined): FollowerReporter {
  return {
    badRecord: (info) => onError?.(info.error),
    watchLost: (_prefix, err) => onError?.(err),
    resynced: () => undefined,
  };
}

export interface PrefixMirrorHandlers<T> {
  /** A decoded record: every record of a whole-prefix read, then each put the watch brings. */
  put(name: string, value: T, kv: KeyValue, phase: FollowPhase): void;
  /**
   * A key left the store: a delete event (revision: the delete's), or, after a re-read, a key
   * that was there before and is not now (revision: the re-read's).
   */
  delete(name: string, revision: number, phase: FollowPhase): void;
  /** A record that was skipped (already counted and reported). Default: delete(name), so nothing stale stays. */
  invalid?(name: string, kv: KeyValue, phase: FollowPhase): void;
  /** A whole-prefix read at `revision` was applied (puts and deletes above come first). */
  synced?(revision: number, phase: 'load' | 'resync'): void;
}

export interface PrefixMirrorOptions<T> {
  store: Store;
  /** Followed keys start with it; handlers get `name`, the rest of the key. */
  prefix: string;
  clock: Clock;
  /** A stored record as the component holds it; throws for one it cannot read. */
  decode(kv: KeyValue, name: string): T;
  /** Re-reads after a lost watch (default 500 ms doubling to 30 s). */
  retry?: BackoffPolicy;
  /** Rows per page of a whole-prefix read (default 1,000). */
  pageSize?: number;
  /** Default: each problem goes nowhere but the counters. */
  reporter?: FollowerReporter | undefined;
  /** How a key is named in reports (e.g. to shorten a hash); default the name, at most 80 characters. */
  describeKey?: (name: string) => string;
}

export interface MirrorStats {
  /** The store revision the mirror reflects. */
  revision: number;
  /** Keys under the prefix now (bad ones included). */
  keys: number;
  badRecords: number;
  watchesLost: number;
  resyncs: number;
}

const DEFAULT_RETRY: BackoffPolicy = { minMs: 500, maxMs: 30_000 };
const DEFAULT_PAGE = 1_000;

function shorten(name: string): string {
  const s = name.length > 80 ? `${name.slice(0, 80)}…` : name;
  return JSON.stringify(s).slice(1, -1); // control characters escaped: it goes to logs
}

/**
 * The error reported for a record: a fresh one with the decoder's code and message (ours name
 * keys, never values) or, for anything else, ERR_STORE_CORRUPT; never a cause, since
 * JSON.parse's message quotes the text it choked on and the record's value stays out of logs.
 */
function recordError(err: unknown, key: string, revision: number): GatehouseError {
  const details = { key, revision };
  if (err instanceof GatehouseError) return new GatehouseError(err.code, err.message, { details });
  const why = err instanceof SyntaxError ? 'not valid JSON' : err instanceof Error ? err.message.slice(0, 200) : 'unreadable';
  return new GatehouseError('ERR_STORE_CORRUPT', `${key} (revision ${revision}): ${why}`, { details });
}

export class PrefixMirror<T> {
  readonly #o: PrefixMirrorOptions<T>;
  readonly #h: PrefixMirrorHandlers<T>;
  readonly #prefixLength: number;
  readonly #resync: Backoff;
  #watch: Watch | undefined;
  #generation = 0;
  #closed = false;
  #revision = 0;
  /** Every key under the prefix as of #revision, decodable or not: a re-read reports the ones gone. */
  #live = new Set<string>();
  #badRecords = 0;
  #watchesLost = 0;
  #resyncs = 0;

  private constructor(o: PrefixMirrorOptions<T>, h: PrefixMirrorHandlers<T>) {
    this.#o = o;
    this.#h = h;
    this.#prefixLength = toBytes(o.prefix).length;
    this.#resync = new Backoff(o.clock, o.retry ?? DEFAULT_RETRY, () => this.#sync('resync'), (err) => this.#o.reporter?.watchLost(o.prefix, err));
  }

  /** Resolves once the whole prefix is applied and the watch runs; rejects if that first read fails. */
  static async open<T>(o: PrefixMirrorOptions<T>, h: PrefixMirrorHandlers<T>): Promise<PrefixMirror<T>> {
    const m = new PrefixMirror(o, h);
    try {
      await m.#sync('load');
    } catch (err) {
      await m.close();
      throw err;
    }
    return m;
  }

  /** The store revision the mirror reflects. */
  get revision(): number {
    return this.#revision;
  }

  stats(): MirrorStats {
    return { revision: this.#revision, keys: this.#live.size, badRecords: this.#badRecords, watchesLost: this.#watchesLost, resyncs: this.#resyncs };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#resync.stop();
    const w = this.#watch;
    this.#watch = undefined;
    await w?.close().catch(() => undefined);
  }

  async #sync(phase: 'load' | 'resync'): Promise<void> {
    const generation = ++this.#generation;
    const stale = (): boolean => this.#closed || generation !== this.#generation;
    const old = this.#watch;
    this.#watch = undefined;
    await old?.close().catch(() => undefined);
    const { store, prefix } = this.#o;
    try {
      const revision = await store.revision();
      const seen = new Set<string>();
      for await (const page of rangePages(store, { prefix }, { limit: this.#o.pageSize ?? DEFAULT_PAGE, revision })) {
        if (stale()) return;
        for (const kv of page) {
          const name = this.#name(kv);
          seen.add(name);
          this.#put(name, kv, phase);
        }
      }
      if (stale()) return;
      for (const name of this.#live) if (!seen.has(name)) this.#guard(name, revision, () => this.#h.delete(name, revision, phase));
      this.#live = seen;
      this.#revision = revision;
      this.#guard('', revision, () => this.#h.synced?.(revision, phase));
      const watch = await store.watch({ prefix }, (e) => this.#event(e, generation), {
        fromRevision: revision + 1,
        onError: (err) => this.#lost(err, generation),
      });
      if (stale()) {
        await watch.close();
        return;
      }
      this.#watch = watch;
      this.#resync.reset();
      if (phase === 'resync') {
        this.#resyncs++;
        this.#o.reporter?.resynced(prefix, revision);
      }
    } catch (err) {
      // A closed store will not come back: stop retrying.
      if (phase === 'resync' && isGatehouseError(err, 'ERR_STORE_CLOSED')) {
        this.#resync.stop();
        this.#o.reporter?.watchLost(prefix, err);
        return;
      }
      throw err;
    }
  }

  #name(kv: KeyValue): string {
    // decoded on its own, not sliced from the whole key: a slice would keep the key string alive
    return text(kv.key.subarray(this.#prefixLength));
  }

  #put(name: string, kv: KeyValue, phase: FollowPhase): void {
    let value: T;
    try {
      value = this.#o.decode(kv, name);
    } catch (err) {
      this.#bad(name, kv, err, phase);
      return;
    }
    try {
      this.#h.put(name, value, kv, phase);
    } catch (err) {
      this.#bad(name, kv, err, phase);
    }
  }

  #bad(name: string, kv: KeyValue, err: unknown, phase: FollowPhase): void {
    this.#badRecords++;
    const key = this.#o.prefix + (this.#o.describeKey ?? shorten)(name);
    this.#o.reporter?.badRecord({ prefix: this.#o.prefix, key, revision: kv.modRevision, error: recordError(err, key, kv.modRevision) });
    // A handler that throws here too must not take the follower down: it is counted once, above.
    try {
      if (this.#h.invalid !== undefined) this.#h.invalid(name, kv, phase);
      else this.#h.delete(name, kv.modRevision, phase);
    } catch {
      // already reported
    }
  }

  /** Runs a handler call that has no record to blame (a delete, synced): a throw is reported, never raised. */
  #guard(name: string, revision: number, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#badRecords++;
      const key = this.#o.prefix + (this.#o.describeKey ?? shorten)(name);
      this.#o.reporter?.badRecord({ prefix: this.#o.prefix, key, revision, error: recordError(err, key, revision) });
    }
  }

  #event(e: WatchEvent, generation: number): void {
    if (this.#closed || generation !== this.#generation) return;
    this.#revision = Math.max(this.#revision, e.kv.modRevision);
    const name = this.#name(e.kv);
    if (e.type === 'put') {
      this.#live.add(name);
      this.#put(name, e.kv, 'watch');
    } else {
      this.#live.delete(name);
      this.#guard(name, e.kv.modRevision, () => this.#h.delete(name, e.kv.modRevision, 'watch'));
    }
  }

  #lost(err: Error, generation: number): void {
    if (this.#closed || generation !== this.#generation) return;
    this.#watch = undefined;
    this.#watchesLost++;
    this.#o.reporter?.watchLost(this.#o.prefix, err);
    // A closed store will not come back; anything else is healed by a re-read.
    if (isGatehouseError(err, 'ERR_STORE_CLOSED')) return;
    this.#resync.schedule();
  }
}
