// Keeps something in memory current with a store prefix: reads the whole prefix at one
// revision, watches from the next, and after a lost watch (compaction while away, a broken
// connection) reads it whole again, with backoff, until it holds. Events of a watch that was
// replaced never reach the handlers.
import { isGatehouseError } from '../errors.js';
import { Backoff } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import type { KeyValue, Store, Watch, WatchEvent } from './types.js';

export interface PrefixMirrorHandlers {
  /** The whole prefix at `revision`: at open (firstLoad) and after each lost watch. */
  snapshot(kvs: readonly KeyValue[], revision: number, firstLoad: boolean): void;
  /** One change after the snapshot, in revision order. */
  event(e: WatchEvent): void;
  onError(err: Error): void;
}

export interface PrefixMirrorOptions {
  store: Store;
  prefix: string;
  clock: Clock;
  retryMinMs: number;
  retryMaxMs: number;
}

export class PrefixMirror {
  readonly #o: PrefixMirrorOptions;
  readonly #h: PrefixMirrorHandlers;
  readonly #resync: Backoff;
  #watch: Watch | undefined;
  #generation = 0;
  #closed = false;
  #loaded = false;
  #revision = 0;

  private constructor(o: PrefixMirrorOptions, h: PrefixMirrorHandlers) {
    this.#o = o;
    this.#h = h;
    this.#resync = new Backoff(o.clock, o.retryMinMs, o.retryMaxMs, () => this.#sync(), (e) => h.onError(e));
  }

  /** Resolves once the first snapshot is applied and the watch runs; rejects if the first read fails. */
  static async open(o: PrefixMirrorOptions, h: PrefixMirrorHandlers): Promise<PrefixMirror> {
    const m = new PrefixMirror(o, h);
    await m.#sync();
    return m;
  }

  /** The store revision the mirror reflects. */
  get revision(): number {
    return this.#revision;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#resync.stop();
    const w = this.#watch;
    this.#watch = undefined;
    await w?.close().catch(() => undefined);
  }

  async #sync(): Promise<void> {
    const generation = ++this.#generation;
    const old = this.#watch;
    this.#watch = undefined;
    await old?.close().catch(() => undefined);
    const { store, prefix } = this.#o;
    const r = await store.range({ prefix });
    this.#h.snapshot(r.kvs, r.revision, !this.#loaded);
    this.#revision = r.revision;
    const watch = await store.watch({ prefix }, (e) => this.#apply(e, generation), {
      fromRevision: r.revision + 1,
      onError: (err) => this.#lost(err, generation),
    });
    if (this.#closed || generation !== this.#generation) {
      await watch.close();
      return;
    }
    this.#watch = watch;
    this.#loaded = true;
    this.#resync.reset();
  }

  #apply(e: WatchEvent, generation: number): void {
    if (this.#closed || generation !== this.#generation) return;
    this.#revision = Math.max(this.#revision, e.kv.modRevision);
    this.#h.event(e);
  }

  #lost(err: Error, generation: number): void {
    if (this.#closed || generation !== this.#generation) return;
    this.#h.onError(err);
    // A closed store will not come back; anything else is healed by a reload.
    if (isGatehouseError(err, 'ERR_STORE_CLOSED')) return;
    this.#resync.schedule();
  }
}
