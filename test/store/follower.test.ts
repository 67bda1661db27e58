// The one store follower (PrefixMirror): paged load at one revision, watch from the next, a bad
// record counted and reported but never fatal, and a re-read with backoff on the injected
// clock after a lost watch. Embedded store on a ManualClock: nothing sleeps.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../src/errors.js';
import { text, type KeyValue } from '../../src/store/index.js';
import { PrefixMirror, reporterFor, type FollowPhase, type PrefixMirrorHandlers } from '../../src/store/mirror.js';
import { breakable, followerHarness, recordingReporter, until, type FollowerHarness } from './follower-helpers.js';

const PREFIX = '/t/items/';

interface Item {
  n: number;
}

function decodeItem(kv: KeyValue): Item {
  const v = JSON.parse(text(kv.value)) as Partial<Item>;
  if (typeof v.n !== 'number') throw new Error('n is not a number');
  return { n: v.n };
}

/** Handlers that keep a Map, like a component, and log every call. */
function mapHandlers(): { held: Map<string, number>; calls: string[]; handlers: PrefixMirrorHandlers<Item> } {
  const held = new Map<string, number>();
  const calls: string[] = [];
  return {
    held,
    calls,
    handlers: {
      put: (name, item, _kv, phase: FollowPhase) => {
        held.set(name, item.n);
        calls.push(`put ${name} ${phase}`);
      },
      delete: (name, _rev, phase) => {
        held.delete(name);
        calls.push(`delete ${name} ${phase}`);
      },
      synced: (_rev, phase) => void calls.push(`synced ${phase}`),
    },
  };
}

describe('store follower (PrefixMirror)', () => {
  let h: FollowerHarness;
  beforeEach(async () => {
    h = await followerHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('loads a prefix page by page at one revision, then follows it from the next revision', async () => {
    for (let i = 0; i < 25; i++) await h.store.put(`${PREFIX}${String(i).padStart(2, '0')}`, JSON.stringify({ n: i }));
    await h.store.put('/t/itemsX', JSON.stringify({ n: -1 })); // not under the prefix
    const ranges: number[] = [];
    const counting = new Proxy(h.store, {
      get(target, prop) {
        const v: unknown = Reflect.get(target, prop, target);
        if (prop === 'range') return (...a: Parameters<typeof target.range>) => (ranges.push(a[1]?.revision ?? -1), target.range(...a));
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const m = mapHandlers();
    const before = await h.store.revision();
    const mirror = await PrefixMirror.open({ store: counting, prefix: PREFIX, clock: h.clock, decode: decodeItem, pageSize: 10 }, m.handlers);
    try {
      assert.equal(m.held.size, 25);
      assert.deepEqual(ranges, [before, before, before], 'three pages, all at the revision read first');
      assert.equal(m.calls.at(-1), 'synced load');
      assert.ok(m.calls.slice(0, 25).every((c) => c.endsWith(' load')));
      await h.store.put(`${PREFIX}new`, JSON.stringify({ n: 99 }));
      await h.store.delete(`${PREFIX}00`);
      await h.settle();
      assert.deepEqual(m.calls.slice(-2), ['put new watch', 'delete 00 watch']);
      assert.equal(m.held.get('new'), 99);
      assert.equal(mirror.revision, await h.store.revision());
      assert.deepEqual(mirror.stats(), { revision: mirror.revision, keys: 25, badRecords: 0, watchesLost: 0, resyncs: 0 });
    } finally {
      await mirror.close();
    }
  });

  it('a record that cannot be decoded is counted, reported and skipped; the changes after it are seen', async () => {
    const r = recordingReporter();
    const m = mapHandlers();
    await h.store.put(`${PREFIX}bad-at-load`, '{not json "secret-value"');
    const mirror = await PrefixMirror.open({ store: h.store, prefix: PREFIX, clock: h.clock, decode: decodeItem, reporter: r.reporter }, m.handlers);
    try {
      await h.store.put(`${PREFIX}a`, JSON.stringify({ n: 1 }));
      const badRev = (await h.store.put(`${PREFIX}a`, JSON.stringify({ n: 'one' }))).revision; // a good record turned bad
      await h.store.put(`${PREFIX}b`, JSON.stringify({ n: 2 }));
      await h.settle();
      assert.deepEqual([...m.held], [['b', 2]], 'the bad records are held as absent; the later change is seen');
      assert.deepEqual(r.bad.map((b) => [b.prefix, b.key, b.error.code]), [
        [PREFIX, `${PREFIX}bad-at-load`, 'ERR_STORE_CORRUPT'],
        [PREFIX, `${PREFIX}a`, 'ERR_STORE_CORRUPT'],
      ]);
      assert.equal(r.bad[1]?.revision, badRev);
      assert.match(r.bad[0]!.error.message, /not valid JSON/);
      assert.ok(!r.bad.some((b) => b.error.message.includes('secret-value')), 'a record value never reaches the report');
      assert.equal(mirror.stats().badRecords, 2);
      assert.equal(mirror.stats().keys, 3, 'bad keys still count as present');
    } finally {
      await mirror.close();
    }
  });

  it('a handler that throws is reported like a bad record and does not end the watch', async () => {
    const r = recordingReporter();
    const seen: string[] = [];
    const mirror = await PrefixMirror.open<Item>(
      { store: h.store, prefix: PREFIX, clock: h.clock, decode: decodeItem, reporter: r.reporter },
      {
        put: (name) => {
          if (name === 'boom') throw new GatehouseError('ERR_INTERNAL', 'handler failed');
          seen.push(name);
        },
        delete: () => undefined,
        invalid: () => {
          throw new Error('and so does invalid');
        },
      },
    );
    try {
      await h.store.put(`${PREFIX}boom`, JSON.stringify({ n: 1 }));
      await h.store.put(`${PREFIX}after`, JSON.stringify({ n: 2 }));
      await h.settle();
      assert.deepEqual(seen, ['after']);
      assert.deepEqual(r.bad.map((b) => b.error.code), ['ERR_INTERNAL']);
    } finally {
      await mirror.close();
    }
  });

  it('invalid() lets a component fail closed instead of dropping the key; describeKey shortens keys in reports', async () => {
    const r = recordingReporter();
    const held = new Map<string, string>();
    const mirror = await PrefixMirror.open<Item>(
      { store: h.store, prefix: PREFIX, clock: h.clock, decode: decodeItem, reporter: r.reporter, describeKey: (name) => `${name.slice(0, 4)}…` },
      {
        put: (name, item) => void held.set(name, `ok ${item.n}`),
        delete: (name) => void held.delete(name),
        invalid: (name) => void held.set(name, 'fallback'),
      },
    );
    try {
      await h.store.put(`${PREFIX}0123456789abcdef`, 'garbage');
      await h.settle();
      assert.equal(held.get('0123456789abcdef'), 'fallback');
      assert.equal(r.bad[0]?.key, `${PREFIX}0123…`);
    } finally {
      await mirror.close();
    }
  });

  it('after a lost watch it re-reads on the clock with backoff: puts and deletes made meanwhile arrive, then the new watch', async () => {
    const flaky = breakable(h.store);
    const r = recordingReporter();
    const m = mapHandlers();
    await h.store.put(`${PREFIX}stays`, JSON.stringify({ n: 1 }));
    await h.store.put(`${PREFIX}goes`, JSON.stringify({ n: 2 }));
    const mirror = await PrefixMirror.open({ store: flaky.store, prefix: PREFIX, clock: h.clock, decode: decodeItem, reporter: r.reporter, retry: { minMs: 500, maxMs: 30_000 } }, m.handlers);
    try {
      assert.equal(await flaky.breakWatches('connection reset'), 1);
      assert.deepEqual(r.lost, [{ prefix: PREFIX, message: 'connection reset' }]);
      await h.store.put(`${PREFIX}stays`, JSON.stringify({ n: 10 }));
      await h.store.delete(`${PREFIX}goes`);
      await h.store.put(`${PREFIX}bad`, 'nope');
      await h.store.put(`${PREFIX}added`, JSON.stringify({ n: 3 }));
      await h.settle();
      assert.deepEqual([...m.held].sort(), [['goes', 2], ['stays', 1]], 'nothing arrives while the watch is lost');

      flaky.failRevision(1); // the store is still down at the first retry
      await h.advance(499);
      assert.equal(r.lost.length, 1, 'no retry before the first delay');
      await h.advance(1);
      await until('the failed retry is reported', () => r.lost.length === 2);
      assert.equal(r.lost[1]?.message, 'store unavailable');
      await h.advance(999);
      assert.equal(r.resyncs.length, 0, 'the next retry waits twice as long');
      await h.advance(1);
      await until('resynced', () => r.resyncs.length === 1);

      const now = await h.store.revision();
      assert.deepEqual(r.resyncs, [{ prefix: PREFIX, revision: now }]);
      assert.deepEqual([...m.held].sort(), [['added', 3], ['stays', 10]]);
      assert.ok(m.calls.includes('delete goes resync'), 'a key gone meanwhile is a delete');
      assert.equal(m.calls.at(-1), 'synced resync');
      assert.deepEqual(r.bad.map((b) => b.key), [`${PREFIX}bad`], 'the bad record met on the re-read is reported');
      // and the new watch delivers
      await h.store.put(`${PREFIX}later`, JSON.stringify({ n: 4 }));
      await h.settle();
      assert.equal(m.held.get('later'), 4);
      assert.deepEqual(mirror.stats(), { revision: now + 1, keys: 4, badRecords: 1, watchesLost: 1, resyncs: 1 });
      // a second loss starts the delays over
      await flaky.breakWatches();
      await h.advance(500);
      await until('resynced again', () => r.resyncs.length === 2);
    } finally {
      await mirror.close();
    }
  });

  it('events of a replaced watch never reach the handlers; close stops everything', async () => {
    const flaky = breakable(h.store);
    const m = mapHandlers();
    const mirror = await PrefixMirror.open({ store: flaky.store, prefix: PREFIX, clock: h.clock, decode: decodeItem, reporter: recordingReporter().reporter }, m.handlers);
    await flaky.breakWatches();
    await mirror.close();
    await h.store.put(`${PREFIX}x`, JSON.stringify({ n: 1 }));
    await h.advance(60_000);
    assert.equal(m.held.size, 0);
  });

  it('a closed store ends the follower without retrying; the first read failing fails open()', async () => {
    const r = recordingReporter();
    const flaky = breakable(h.store);
    flaky.failRevision(1);
    await assert.rejects(PrefixMirror.open({ store: flaky.store, prefix: PREFIX, clock: h.clock, decode: decodeItem }, mapHandlers().handlers), /store unavailable/);
    const mirror = await PrefixMirror.open({ store: h.store, prefix: PREFIX, clock: h.clock, decode: decodeItem, reporter: r.reporter }, mapHandlers().handlers);
    await h.store.close();
    await until('lost', () => r.lost.length === 1);
    h.clock.advance(60_000);
    assert.equal(r.lost.length, 1, 'no re-read of a closed store');
    await mirror.close();
  });

  it('reporterFor hands bad records and lost watches to a plain onError', () => {
    const errors: Error[] = [];
    const rep = reporterFor((e) => errors.push(e));
    const error = new GatehouseError('ERR_STORE_CORRUPT', 'x');
    rep.badRecord({ prefix: PREFIX, key: `${PREFIX}k`, revision: 1, error });
    rep.watchLost(PREFIX, new Error('lost'));
    rep.resynced(PREFIX, 2);
    assert.deepEqual(errors.map((e) => e.message), ['x', 'lost']);
  });
});
