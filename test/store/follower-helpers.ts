// Helpers for the store follower tests: an embedded store on a ManualClock, a reporter that
// records what it is told, and a store whose watches the test can break (as a lost etcd
// connection or a compaction would).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManualClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import type { BadRecord, FollowerReporter } from '../../src/store/mirror.js';
import type { Store, WatchOptions } from '../../src/store/types.js';

/** A FollowerReporter that keeps everything it is told (what the gateway's metric, log and alert would see). */
export function recordingReporter(): { reporter: FollowerReporter; bad: BadRecord[]; lost: { prefix: string; message: string }[]; resyncs: { prefix: string; revision: number }[] } {
  const bad: BadRecord[] = [];
  const lost: { prefix: string; message: string }[] = [];
  const resyncs: { prefix: string; revision: number }[] = [];
  return {
    bad,
    lost,
    resyncs,
    reporter: {
      badRecord: (info) => void bad.push(info),
      watchLost: (prefix, err) => void lost.push({ prefix, message: err.message }),
      resynced: (prefix, revision) => void resyncs.push({ prefix, revision }),
    },
  };
}

export interface BreakableStore {
  store: Store;
  /** Ends every watch open now (reported through its onError); returns how many were broken. */
  breakWatches(message?: string): Promise<number>;
  /** The next n calls of store.revision() fail (a store that is still down when the follower retries). */
  failRevision(n: number): void;
}

/** Wraps a store so the test can break its watches and make re-reads fail. */
export function breakable(inner: Store): BreakableStore {
  let live: { close(): Promise<void>; onError: ((err: Error) => void) | undefined }[] = [];
  let revisionFailures = 0;
  const watch: Store['watch'] = async (selector, handler, options: WatchOptions = {}) => {
    const w = await inner.watch(selector, handler, options);
    live.push({ close: () => w.close(), onError: options.onError });
    return w;
  };
  const revision: Store['revision'] = async () => {
    if (revisionFailures > 0) {
      revisionFailures--;
      throw new Error('store unavailable');
    }
    return inner.revision();
  };
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'watch') return watch;
      if (prop === 'revision') return revision;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    store,
    async breakWatches(message = 'watch lost') {
      const ws = live;
      live = [];
      for (const w of ws) {
        await w.close();
        w.onError?.(new Error(message));
      }
      return ws.length;
    },
    failRevision(n) {
      revisionFailures = n;
    },
  };
}

export interface FollowerHarness {
  clock: ManualClock;
  store: EmbeddedStore;
  /** Lets queued writes commit and watch events arrive (no timers involved). */
  settle(): Promise<void>;
  /** Advances the clock, then settles. */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export async function followerHarness(): Promise<FollowerHarness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-follower-'));
  const clock = new ManualClock();
  const store = await openEmbeddedStore({ kind: 'embedded', path: path.join(dir, 'store'), clock });
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      await store.settle();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  return {
    clock,
    store,
    settle,
    async advance(ms) {
      clock.advance(ms);
      await settle();
    },
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Yields to the event loop until cond holds (at most `turns` times); no timers involved. */
export async function until(what: string, cond: () => boolean, turns = 5_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!cond()) throw new Error(`condition not reached: ${what}`);
}
