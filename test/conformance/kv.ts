// The one KV conformance suite (like Teleport's RunBackendComplianceSuite): every Store
// implementation runs these cases through runKvConformance. Each case writes only under its
// own random prefix, so several suites can share one real etcd cluster; for the same reason
// no case asserts the global revision moved by an exact amount.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isGatehouseError, type ErrorCode } from '../../src/errors.js';
import { LIMITS, prefixEnd, text, type Bytes, type KeyValue, type Store, type WatchEvent } from '../../src/store/index.js';
import { Rng, shuffled } from '../helpers/rng.js';

export interface KvHarness {
  /** Opens a client on the shared backend (embedded: may return the same instance; etcd: a new client). The suite never closes it: close() does. */
  open(): Promise<Store>;
  /** Lets time pass for lease expiry: ManualClock.advance for embedded, a real sleep for etcd. */
  advance(ms: number): Promise<void>;
  /** Smallest lease TTL (s) the backend honours: 1 embedded, 2 for etcd. */
  minLeaseTtlSeconds: number;
  /** Extra ms to wait after the TTL before expecting expiry (etcd's lease checker is coarse). */
  expiryGraceMs: number;
  close(): Promise<void>;
}

const enc = new TextEncoder();

function bytes(...parts: Array<string | number[] | Uint8Array>): Uint8Array {
  const chunks = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : Uint8Array.from(p)));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

function hex(b: Bytes): string {
  return Buffer.from(b).toString('hex');
}

function keysOf(kvs: readonly KeyValue[]): string[] {
  return kvs.map((kv) => text(kv.key));
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isGatehouseError(err), `expected a GatehouseError ${code}, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Runs fn, expecting it to throw a GatehouseError with code; returns it. */
async function errorOf(p: Promise<unknown>): Promise<ErrorCode> {
  try {
    await p;
  } catch (err) {
    assert.ok(isGatehouseError(err), `expected a GatehouseError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected the call to fail');
}

/** Polls fn (real time) until it returns true. Embedded stores pass on the first try. */
async function eventually(what: string, fn: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Collector {
  events: WatchEvent[];
  handler: (event: WatchEvent) => void;
  /** Waits until at least n events arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<WatchEvent[]>;
}

function collector(): Collector {
  const events: WatchEvent[] = [];
  let wake: (() => void) | undefined;
  return {
    events,
    handler: (event) => {
      events.push(event);
      wake?.();
    },
    async waitFor(n, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`expected ${n} watch events, got ${events.length}: ${JSON.stringify(describeEvents(events))}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 100));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
      return events;
    },
  };
}

function describeEvents(events: readonly WatchEvent[]): string[] {
  return events.map((e) => `${e.type} ${text(e.kv.key)}@${e.kv.modRevision}`);
}

/** Lets a watch deliver anything it wrongly would (a write and a short real wait). */
async function quiesce(): Promise<void> {
  await new Promise((r) => setTimeout(r, 100));
}

export function runKvConformance(name: string, makeHarness: () => Promise<KvHarness | { skip: string }>): void {
  describe(`kv conformance: ${name}`, () => {
    let harness: KvHarness | undefined;
    let skip: string | undefined;
    let store: Store;
    const run = randomBytes(4).toString('hex');
    let caseNo = 0;

    before(async () => {
      const made = await makeHarness();
      if ('skip' in made) {
        skip = made.skip;
        return;
      }
      harness = made;
      store = await harness.open();
    });

    after(async () => {
      await harness?.close();
    });

    /** A case: gets a fresh key prefix, is skipped as a whole when the harness says so. */
    function kvCase(title: string, fn: (p: string, h: KvHarness) => Promise<void>): void {
      it(title, async (t) => {
        if (skip !== undefined || harness === undefined) {
          t.skip(skip ?? 'no harness');
          return;
        }
        const p = `/conformance/${run}/${++caseNo}-${randomBytes(3).toString('hex')}/`;
        await fn(p, harness);
      });
    }

    // ---- CRUD

    kvCase('put, get, overwrite, delete', async (p) => {
      const k = `${p}k`;
      assert.equal(await store.get(k), undefined);
      const r1 = await store.put(k, 'v1');
      assert.ok(Number.isSafeInteger(r1.revision) && r1.revision > 0);
      const kv1 = await store.get(k);
      assert.ok(kv1);
      assert.equal(text(kv1.key), k);
      assert.equal(text(kv1.value), 'v1');
      assert.equal(kv1.version, 1);
      assert.equal(kv1.modRevision, r1.revision);

      const r2 = await store.put(k, bytes([0, 1, 2, 255]));
      assert.ok(r2.revision > r1.revision);
      const kv2 = await store.get(bytes(k));
      assert.equal(hex(kv2!.value), '000102ff');
      assert.equal(kv2!.version, 2);

      const d = await store.delete(k);
      assert.equal(d.deleted, 1);
      assert.ok(d.revision > r2.revision);
      assert.equal(await store.get(k), undefined);
      const again = await store.delete(k);
      assert.equal(again.deleted, 0);
      assert.ok(again.revision >= d.revision);
      assert.ok((await store.revision()) >= d.revision);
      assert.equal(await store.ping(), true);
    });

    kvCase('empty values are values', async (p) => {
      await store.put(`${p}e`, '');
      const kv = await store.get(`${p}e`);
      assert.ok(kv);
      assert.equal(kv.value.length, 0);
      assert.equal(kv.version, 1);
    });

    // ---- range

    kvCase('range: prefix, start/end, limit/more/count, reverse, keysOnly', async (p) => {
      const r = `${p}r/`;
      for (const s of ['c', 'a', 'e', 'b', 'd']) await store.put(`${r}${s}`, `v-${s}`);
      await store.put(`${p}r0`, 'outside'); // shares a prefix string with r/ but not r/ itself
      await store.put(`${p}q`, 'outside');

      const all = await store.range({ prefix: r });
      assert.deepEqual(keysOf(all.kvs), ['a', 'b', 'c', 'd', 'e'].map((s) => `${r}${s}`));
      assert.deepEqual(all.kvs.map((kv) => text(kv.value)), ['v-a', 'v-b', 'v-c', 'v-d', 'v-e']);
      assert.equal(all.count, 5);
      assert.equal(all.more, false);
      assert.ok(all.revision >= all.kvs[4]!.modRevision);

      const between = await store.range({ start: `${r}b`, end: `${r}d` });
      assert.deepEqual(keysOf(between.kvs), [`${r}b`, `${r}c`]);
      assert.equal(between.count, 2);

      const open = await store.range({ start: `${r}d` }, { limit: 2 });
      assert.deepEqual(keysOf(open.kvs), [`${r}d`, `${r}e`]);

      const limited = await store.range({ prefix: r }, { limit: 2 });
      assert.deepEqual(keysOf(limited.kvs), [`${r}a`, `${r}b`]);
      assert.equal(limited.more, true);
      assert.equal(limited.count, 5);

      const exact = await store.range({ prefix: r }, { limit: 5 });
      assert.equal(exact.kvs.length, 5);
      assert.equal(exact.more, false);

      const rev = await store.range({ prefix: r }, { reverse: true });
      assert.deepEqual(keysOf(rev.kvs), ['e', 'd', 'c', 'b', 'a'].map((s) => `${r}${s}`));
      const revLimited = await store.range({ prefix: r }, { reverse: true, limit: 2 });
      assert.deepEqual(keysOf(revLimited.kvs), [`${r}e`, `${r}d`]);
      assert.equal(revLimited.more, true);
      assert.equal(revLimited.count, 5);
      const revBetween = await store.range({ start: `${r}b`, end: `${r}d` }, { reverse: true });
      assert.deepEqual(keysOf(revBetween.kvs), [`${r}c`, `${r}b`]);

      const keysOnly = await store.range({ prefix: r }, { keysOnly: true });
      assert.deepEqual(keysOf(keysOnly.kvs), keysOf(all.kvs));
      for (const kv of keysOnly.kvs) {
        assert.equal(kv.value.length, 0);
        assert.equal(kv.version, 1);
        assert.ok(kv.modRevision > 0);
      }

      const none = await store.range({ prefix: `${p}nothing/` });
      assert.deepEqual(none.kvs, []);
      assert.equal(none.count, 0);
      assert.equal(none.more, false);
      const backwards = await store.range({ start: `${r}d`, end: `${r}b` });
      assert.equal(backwards.count, 0);
    });

    // ---- history

    kvCase('reads at an older revision see the past (get and range)', async (p) => {
      const a = `${p}h/a`;
      const b = `${p}h/b`;
      const r1 = (await store.put(a, 'a1')).revision;
      const r2 = (await store.put(b, 'b1')).revision;
      const r3 = (await store.put(a, 'a2')).revision;
      const r4 = (await store.delete(b)).revision;

      assert.equal(text((await store.get(a, { revision: r1 }))!.value), 'a1');
      assert.equal((await store.get(a, { revision: r1 }))!.version, 1);
      assert.equal(text((await store.get(a, { revision: r2 }))!.value), 'a1');
      assert.equal(text((await store.get(a, { revision: r3 }))!.value), 'a2');
      assert.equal(await store.get(b, { revision: r1 }), undefined);
      assert.equal(text((await store.get(b, { revision: r3 }))!.value), 'b1');
      assert.equal(await store.get(b, { revision: r4 }), undefined);
      assert.equal(await store.get(b), undefined);

      const at = async (rev: number): Promise<string[]> =>
        (await store.range({ prefix: `${p}h/` }, { revision: rev })).kvs.map((kv) => `${text(kv.key).slice(p.length)}=${text(kv.value)}`);
      assert.deepEqual(await at(r1), ['h/a=a1']);
      assert.deepEqual(await at(r2), ['h/a=a1', 'h/b=b1']);
      assert.deepEqual(await at(r3), ['h/a=a2', 'h/b=b1']);
      assert.deepEqual(await at(r4), ['h/a=a2']);

      const old = await store.range({ prefix: `${p}h/` }, { revision: r3, reverse: true, limit: 1 });
      assert.deepEqual(keysOf(old.kvs), [b]);
      assert.equal(old.more, true);
      assert.equal(old.count, 2);
      assert.ok(old.revision >= r4, 'the header revision is the current one');
      const oldKeys = await store.range({ prefix: `${p}h/` }, { revision: r2, keysOnly: true });
      assert.deepEqual(keysOf(oldKeys.kvs), [a, b]);
      assert.equal(oldKeys.kvs[0]!.value.length, 0);
    });

    kvCase('compaction: reads and watches below the compacted revision fail', async (p) => {
      const k = `${p}c`;
      const r1 = (await store.put(k, 'v1')).revision;
      const r2 = (await store.put(k, 'v2')).revision;
      const r3 = (await store.put(k, 'v3')).revision;
      // Only our own fresh revision: compaction is global on a shared cluster.
      const code = await store.compact(r2).then(() => undefined, (err: unknown) => (isGatehouseError(err) ? err.code : 'unexpected'));
      assert.ok(code === undefined || code === 'ERR_STORE_COMPACTED', `compact failed with ${code}`);

      await rejectsWith(store.get(k, { revision: r1 }), 'ERR_STORE_COMPACTED');
      await rejectsWith(store.range({ prefix: p }, { revision: r1 }), 'ERR_STORE_COMPACTED');
      await rejectsWith(store.watch({ prefix: p }, () => undefined, { fromRevision: r1 }), 'ERR_STORE_COMPACTED');
      // The newest version at or below the compacted revision survives (unless another suite
      // sharing the cluster compacted further meanwhile).
      const atR2 = await store.get(k, { revision: r2 }).then(
        (kv) => (kv === undefined ? 'absent' : text(kv.value)),
        (err: unknown) => (isGatehouseError(err, 'ERR_STORE_COMPACTED') ? 'compacted-by-another-suite' : 'error'),
      );
      assert.ok(atR2 === 'v2' || atR2 === 'compacted-by-another-suite', `read at the compacted revision gave ${atR2}`);
      assert.equal(text((await store.get(k, { revision: r3 }))!.value), 'v3');
      assert.equal(text((await store.get(k))!.value), 'v3');
      await rejectsWith(store.compact(r1), 'ERR_STORE_COMPACTED');
    });

    kvCase('a revision in the future is refused', async (p) => {
      await store.put(`${p}f`, 'x');
      const future = (await store.revision()) + 1_000_000;
      await rejectsWith(store.get(`${p}f`, { revision: future }), 'ERR_STORE_FUTURE_REVISION');
      await rejectsWith(store.range({ prefix: p }, { revision: future }), 'ERR_STORE_FUTURE_REVISION');
      await rejectsWith(store.compact(future), 'ERR_STORE_FUTURE_REVISION');
    });

    // ---- compare-and-swap

    kvCase('put with ifModRevision: succeeds on match, ERR_STORE_CONFLICT otherwise', async (p) => {
      const k = `${p}cas`;
      const r1 = (await store.put(k, 'v1')).revision;
      const r2 = (await store.put(k, 'v2', { ifModRevision: r1 })).revision;
      assert.ok(r2 > r1);
      await rejectsWith(store.put(k, 'stale', { ifModRevision: r1 }), 'ERR_STORE_CONFLICT');
      await rejectsWith(store.put(k, 'absent?', { ifModRevision: 0 }), 'ERR_STORE_CONFLICT');
      const kv = await store.get(k);
      assert.equal(text(kv!.value), 'v2');
      assert.equal(kv!.modRevision, r2);
      assert.equal(kv!.version, 2);
      // modRevision 0 means "absent".
      await store.put(`${p}fresh`, 'x', { ifModRevision: 0 });
      assert.equal(text((await store.get(`${p}fresh`))!.value), 'x');
    });

    kvCase('delete with ifModRevision: deletes on match, ERR_STORE_CONFLICT otherwise', async (p) => {
      const k = `${p}cas`;
      const r1 = (await store.put(k, 'v1')).revision;
      await rejectsWith(store.delete(k, { ifModRevision: r1 + 1_000_000 }), 'ERR_STORE_CONFLICT');
      await rejectsWith(store.delete(k, { ifModRevision: 0 }), 'ERR_STORE_CONFLICT');
      assert.equal(text((await store.get(k))!.value), 'v1');
      const d = await store.delete(k, { ifModRevision: r1 });
      assert.equal(d.deleted, 1);
      assert.equal(await store.get(k), undefined);
      await rejectsWith(store.delete(k, { ifModRevision: r1 }), 'ERR_STORE_CONFLICT');
    });

    kvCase('ifAbsent creates once', async (p) => {
      const k = `${p}once`;
      await store.put(k, 'first', { ifAbsent: true });
      await rejectsWith(store.put(k, 'second', { ifAbsent: true }), 'ERR_STORE_CONFLICT');
      assert.equal(text((await store.get(k))!.value), 'first');
      await store.delete(k);
      await store.put(k, 'third', { ifAbsent: true });
      const kv = await store.get(k);
      assert.equal(text(kv!.value), 'third');
      assert.equal(kv!.version, 1);
    });

    // ---- transactions

    kvCase('txn: compares pass, all ops apply at one revision, results per op', async (p) => {
      const a = `${p}t/a`;
      const b = `${p}t/b`;
      const c = `${p}t/c`;
      const ra = (await store.put(a, 'a1')).revision;
      await store.put(c, 'c1');
      const res = await store.txn(
        [
          { key: a, target: 'modRevision', op: '==', value: ra },
          { key: a, target: 'createRevision', op: '==', value: ra },
          { key: a, target: 'version', op: '==', value: 1 },
          { key: a, target: 'value', op: '==', value: 'a1' },
          { key: a, target: 'version', op: '<', value: 2 },
          { key: a, target: 'modRevision', op: '>', value: 0 },
          { key: a, target: 'value', op: '!=', value: 'other' },
          { key: b, target: 'version', op: '==', value: 0 },
          { key: b, target: 'createRevision', op: '==', value: 0 },
          { key: b, target: 'modRevision', op: '==', value: 0 },
          { key: a, target: 'lease', op: '==', value: '0' },
        ],
        [
          { op: 'put', key: a, value: 'a2' },
          { op: 'put', key: b, value: 'b1' },
          { op: 'delete', key: c },
          { op: 'get', key: a },
          { op: 'range', range: { prefix: `${p}t/` } },
        ],
        [{ op: 'put', key: `${p}t/failure-ran`, value: 'x' }],
      );
      assert.equal(res.succeeded, true);
      assert.equal(res.results.length, 5);
      const [pa, pb, dc, ga, rg] = res.results;
      assert.equal(pa?.op, 'put');
      assert.equal(pb?.op, 'put');
      assert.ok(pa?.op === 'put' && pb?.op === 'put');
      assert.equal(pa.revision, res.revision);
      assert.equal(pb.revision, res.revision, 'one txn is one revision');
      assert.deepEqual(dc, { op: 'delete', deleted: 1 });
      assert.ok(ga?.op === 'get');
      assert.equal(text(ga.kv!.value), 'a2', 'a read in a txn sees its earlier writes');
      assert.ok(rg?.op === 'range');
      assert.deepEqual(keysOf(rg.kvs), [a, b]);

      const kva = await store.get(a);
      assert.equal(kva!.modRevision, res.revision);
      assert.equal(kva!.version, 2);
      assert.equal((await store.get(b))!.modRevision, res.revision);
      assert.equal(await store.get(c), undefined);
      assert.equal(await store.get(`${p}t/failure-ran`), undefined);
    });

    kvCase('txn: one failing compare applies nothing and runs onFailure', async (p) => {
      const a = `${p}t/a`;
      const ra = (await store.put(a, 'a1')).revision;
      const res = await store.txn(
        [
          { key: a, target: 'modRevision', op: '==', value: ra },
          { key: a, target: 'value', op: '==', value: 'not-a1' },
        ],
        [
          { op: 'put', key: a, value: 'changed' },
          { op: 'put', key: `${p}t/b`, value: 'b' },
        ],
        [
          { op: 'get', key: a },
          { op: 'put', key: `${p}t/failed`, value: 'yes' },
        ],
      );
      assert.equal(res.succeeded, false);
      assert.equal(res.results.length, 2);
      assert.ok(res.results[0]?.op === 'get');
      assert.equal(text(res.results[0].kv!.value), 'a1');
      assert.ok(res.results[1]?.op === 'put');
      const kva = await store.get(a);
      assert.equal(text(kva!.value), 'a1');
      assert.equal(kva!.modRevision, ra);
      assert.equal(await store.get(`${p}t/b`), undefined);
      assert.equal(text((await store.get(`${p}t/failed`))!.value), 'yes');

      // A value compare on an absent key is false; so is version > 0.
      const absent = await store.txn(
        [{ key: `${p}t/missing`, target: 'value', op: '!=', value: 'x' }],
        [{ op: 'put', key: `${p}t/wrong`, value: 'x' }],
      );
      assert.equal(absent.succeeded, false);
      assert.deepEqual(absent.results, []);
      const newer = await store.txn([{ key: a, target: 'version', op: '>', value: 1 }], [{ op: 'delete', key: a }]);
      assert.equal(newer.succeeded, false);
      assert.equal(await store.get(`${p}t/wrong`), undefined);
      assert.ok(await store.get(a));
    });

    kvCase('txn: an op that fails applies nothing; a delete range deletes many', async (p) => {
      const a = `${p}t/a`;
      await store.put(a, 'a1');
      const grant = await store.grant(60);
      await store.revoke(grant.id);
      const code = await errorOf(store.txn([], [
        { op: 'put', key: a, value: 'a2' },
        { op: 'put', key: `${p}t/b`, value: 'b', lease: grant.id },
      ]));
      assert.equal(code, 'ERR_STORE_LEASE_NOT_FOUND');
      assert.equal(text((await store.get(a))!.value), 'a1');
      assert.equal(await store.get(`${p}t/b`), undefined);

      await store.put(`${p}t/x/1`, '1');
      await store.put(`${p}t/x/2`, '2');
      const res = await store.txn([], [{ op: 'delete', range: { prefix: `${p}t/x/` } }, { op: 'range', range: { prefix: `${p}t/` } }]);
      assert.deepEqual(res.results[0], { op: 'delete', deleted: 2 });
      assert.ok(res.results[1]?.op === 'range');
      assert.deepEqual(keysOf(res.results[1].kvs), [a]);

      const tooMany = Array.from({ length: LIMITS.maxTxnOps + 1 }, (_, i) => ({ op: 'put' as const, key: `${p}t/n${i}`, value: 'v' }));
      await rejectsWith(store.txn([], tooMany), 'ERR_STORE_TXN_TOO_LARGE');
      assert.equal(await store.get(`${p}t/n0`), undefined);
    });

    kvCase('delete of a range and of a prefix', async (p) => {
      for (const s of ['a', 'b', 'c', 'd']) await store.put(`${p}d/${s}`, s);
      await store.put(`${p}keep`, 'k');
      const d1 = await store.delete({ start: `${p}d/b`, end: `${p}d/d` });
      assert.equal(d1.deleted, 2);
      assert.deepEqual(keysOf((await store.range({ prefix: `${p}d/` })).kvs), [`${p}d/a`, `${p}d/d`]);
      const d2 = await store.delete({ prefix: `${p}d/` });
      assert.equal(d2.deleted, 2);
      assert.ok(d2.revision > d1.revision);
      assert.equal((await store.range({ prefix: `${p}d/` })).count, 0);
      assert.ok(await store.get(`${p}keep`));
      const d3 = await store.delete({ prefix: `${p}d/` });
      assert.equal(d3.deleted, 0);
    });

    // ---- leases

    kvCase('lease: keys expire with the lease, keepAlive extends it, expiry emits deletes', async (p, h) => {
      const ttl = h.minLeaseTtlSeconds;
      const l1 = await store.grant(ttl);
      const l2 = await store.grant(ttl);
      assert.notEqual(l1.id, l2.id);
      assert.equal(l1.ttlSeconds, ttl);
      const r1 = (await store.put(`${p}l/one`, 'x', { lease: l1.id })).revision;
      await store.put(`${p}l/two`, 'y', { lease: l2.id });
      assert.equal((await store.get(`${p}l/one`))!.lease, l1.id);
      const seen = collector();
      const w = await store.watch({ prefix: `${p}l/` }, seen.handler);
      try {
        await h.advance(ttl * 500);
        assert.ok(await store.get(`${p}l/one`), 'alive at half its ttl');
        const kept = await store.keepAlive(l2.id);
        assert.equal(kept.id, l2.id);
        assert.equal(kept.ttlSeconds, ttl);
        // Now past l1's ttl; l2 was renewed half a ttl ago.
        await h.advance(ttl * 500 + h.expiryGraceMs);
        assert.ok(await store.get(`${p}l/two`), 'keepAlive extended the lease');
        await eventually('the first lease to expire', async () => (await store.get(`${p}l/one`)) === undefined);
        await rejectsWith(store.keepAlive(l1.id), 'ERR_STORE_LEASE_NOT_FOUND');
        const events = await seen.waitFor(1);
        assert.equal(events[0]!.type, 'delete');
        assert.equal(text(events[0]!.kv.key), `${p}l/one`);
        assert.ok(events[0]!.kv.modRevision > r1);

        await h.advance(ttl * 500 + h.expiryGraceMs);
        await eventually('the kept-alive lease to expire', async () => (await store.get(`${p}l/two`)) === undefined);
        await seen.waitFor(2);
        assert.deepEqual(describeEvents(seen.events).map((e) => e.replace(/@\d+$/, '')), [`delete ${p}l/one`, `delete ${p}l/two`]);
        await rejectsWith(store.keepAlive(l2.id), 'ERR_STORE_LEASE_NOT_FOUND');
      } finally {
        await w.close();
      }
    });

    kvCase('lease: revoke deletes its keys at one revision', async (p) => {
      const lease = await store.grant(60);
      await store.put(`${p}v/a`, 'a', { lease: lease.id });
      await store.put(`${p}v/b`, 'b', { lease: lease.id });
      await store.put(`${p}v/c`, 'c');
      const seen = collector();
      const w = await store.watch({ prefix: `${p}v/` }, seen.handler);
      try {
        await store.revoke(lease.id);
        assert.deepEqual(keysOf((await store.range({ prefix: `${p}v/` })).kvs), [`${p}v/c`]);
        const events = await seen.waitFor(2);
        assert.deepEqual(events.map((e) => `${e.type} ${text(e.kv.key)}`), [`delete ${p}v/a`, `delete ${p}v/b`]);
        assert.equal(events[0]!.kv.modRevision, events[1]!.kv.modRevision, 'one revision for the whole revoke');
        await rejectsWith(store.revoke(lease.id), 'ERR_STORE_LEASE_NOT_FOUND');
        await rejectsWith(store.keepAlive(lease.id), 'ERR_STORE_LEASE_NOT_FOUND');
        await rejectsWith(store.put(`${p}v/d`, 'd', { lease: lease.id }), 'ERR_STORE_LEASE_NOT_FOUND');
        assert.equal(await store.get(`${p}v/d`), undefined);
      } finally {
        await w.close();
      }
    });

    kvCase('lease: a key rebound or unbound no longer dies with its old lease', async (p) => {
      const lease = await store.grant(60);
      await store.put(`${p}b/a`, 'a', { lease: lease.id });
      await store.put(`${p}b/a`, 'a2');
      assert.equal((await store.get(`${p}b/a`))!.lease, undefined);
      await store.revoke(lease.id);
      assert.equal(text((await store.get(`${p}b/a`))!.value), 'a2');
    });

    // ---- watch

    kvCase('watch: events arrive in revision order with full metadata', async (p) => {
      const seen = collector();
      const w = await store.watch({ prefix: `${p}w/` }, seen.handler);
      try {
        const r1 = (await store.put(`${p}w/a`, '1')).revision;
        const r2 = (await store.put(`${p}w/b`, '2')).revision;
        const r3 = (await store.delete(`${p}w/a`)).revision;
        const t = await store.txn([], [{ op: 'put', key: `${p}w/c`, value: '3' }, { op: 'put', key: `${p}w/d`, value: '4' }]);
        const r5 = (await store.put(`${p}w/b`, '5')).revision;
        const events = await seen.waitFor(6);
        assert.deepEqual(
          events.map((e) => `${e.type} ${text(e.kv.key).slice(p.length)} ${text(e.kv.value)} @${e.kv.modRevision}`),
          [`put w/a 1 @${r1}`, `put w/b 2 @${r2}`, `delete w/a  @${r3}`, `put w/c 3 @${t.revision}`, `put w/d 4 @${t.revision}`, `put w/b 5 @${r5}`],
        );
        assert.equal(events[5]!.kv.version, 2);
        assert.equal(events[5]!.kv.createRevision, r2);
        assert.ok(w.startRevision <= r1);
      } finally {
        await w.close();
      }
      await store.put(`${p}w/after-close`, 'x');
      await quiesce();
      assert.equal(seen.events.length, 6, 'no events after close');
    });

    kvCase('watch: fromRevision replays history then goes live, nothing missed or doubled', async (p) => {
      const k = (i: number): string => `${p}s/${String(i).padStart(3, '0')}`;
      const first = (await store.put(k(0), 'v0')).revision;
      await store.delete(k(0));
      // Writes keep flowing while the watch starts: the switch-over must be seamless.
      const writes: Array<Promise<unknown>> = [];
      for (let i = 1; i <= 40; i++) writes.push(store.put(k(i), `v${i}`));
      const seen = collector();
      const w = await store.watch({ prefix: `${p}s/` }, seen.handler, { fromRevision: first });
      assert.equal(w.startRevision, first);
      try {
        for (let i = 41; i <= 80; i++) writes.push(store.put(k(i), `v${i}`));
        await Promise.all(writes);
        const events = await seen.waitFor(82);
        await quiesce();
        assert.equal(seen.events.length, 82, 'no duplicates');
        assert.equal(events[0]!.type, 'put');
        assert.equal(text(events[0]!.kv.key), k(0));
        assert.equal(events[1]!.type, 'delete');
        const revs = events.map((e) => e.kv.modRevision);
        for (let i = 1; i < revs.length; i++) assert.ok(revs[i]! > revs[i - 1]!, `revision order at ${i}`);
        const puts = new Set(events.slice(2).map((e) => text(e.kv.key)));
        assert.equal(puts.size, 80);
      } finally {
        await w.close();
      }
    });

    kvCase('watch: a prefix watch sees only its prefix', async (p) => {
      const seen = collector();
      const w = await store.watch({ prefix: `${p}in/` }, seen.handler);
      try {
        await store.put(`${p}in/x`, '1');
        await store.put(`${p}out/y`, '2');
        await store.put(`${p}in`, '3');
        await store.put(`${p}in0`, '4');
        await store.delete({ prefix: `${p}out/` });
        await store.put(`${p}in/z`, '5');
        await seen.waitFor(2);
        await quiesce();
        assert.deepEqual(seen.events.map((e) => text(e.kv.key)), [`${p}in/x`, `${p}in/z`]);
      } finally {
        await w.close();
      }
    });

    kvCase('watch: a key watch sees only that key', async (p) => {
      const seen = collector();
      const w = await store.watch({ key: `${p}k` }, seen.handler);
      try {
        await store.put(`${p}k`, '1');
        await store.put(`${p}k2`, '2');
        await store.put(`${p}j`, '3');
        await store.delete(`${p}k`);
        await store.delete(`${p}k2`);
        await seen.waitFor(2);
        await quiesce();
        assert.deepEqual(seen.events.map((e) => `${e.type} ${text(e.kv.key)}`), [`put ${p}k`, `delete ${p}k`]);
        assert.equal(seen.events[1]!.kv.value.length, 0);
      } finally {
        await w.close();
      }
    });

    kvCase('watch: a [start, end) watch sees only its interval', async (p) => {
      const seen = collector();
      const w = await store.watch({ start: `${p}b`, end: `${p}d` }, seen.handler);
      try {
        for (const s of ['a', 'b', 'c', 'd', 'e', 'bz']) await store.put(`${p}${s}`, s);
        await seen.waitFor(3);
        await quiesce();
        assert.deepEqual(seen.events.map((e) => text(e.kv.key)), [`${p}b`, `${p}c`, `${p}bz`]);
      } finally {
        await w.close();
      }
    });

    // ---- metadata

    kvCase('revision metadata after put, put, delete, put (and leases)', async (p) => {
      const k = `${p}m`;
      const r1 = (await store.put(k, '1')).revision;
      let kv = (await store.get(k))!;
      assert.deepEqual([kv.createRevision, kv.modRevision, kv.version, kv.lease], [r1, r1, 1, undefined]);
      const r2 = (await store.put(k, '2')).revision;
      kv = (await store.get(k))!;
      assert.deepEqual([kv.createRevision, kv.modRevision, kv.version], [r1, r2, 2]);
      const r3 = (await store.delete(k)).revision;
      assert.ok(r3 > r2);
      assert.equal(await store.get(k), undefined);
      const r4 = (await store.put(k, '4')).revision;
      kv = (await store.get(k))!;
      assert.deepEqual([kv.createRevision, kv.modRevision, kv.version], [r4, r4, 1], 'version restarts after a delete');
      const old = (await store.get(k, { revision: r2 }))!;
      assert.deepEqual([old.createRevision, old.modRevision, old.version, text(old.value)], [r1, r2, 2, '2']);

      const lease = await store.grant(60);
      await store.put(k, '5', { lease: lease.id });
      kv = (await store.get(k))!;
      assert.equal(kv.lease, lease.id);
      assert.equal(kv.version, 2);
      const ranged = await store.range({ prefix: k });
      assert.equal(ranged.kvs[0]!.lease, lease.id);
      await store.revoke(lease.id);
    });

    // ---- concurrency

    kvCase('4 clients x 250 compare-and-swap increments end at exactly 1000', async (p, h) => {
      const k = `${p}counter`;
      await store.put(k, '0');
      const clients = await Promise.all([h.open(), h.open(), h.open(), h.open()]);
      let conflicts = 0;
      await Promise.all(
        clients.map(async (c) => {
          for (let done = 0; done < 250; ) {
            const kv = (await c.get(k))!;
            try {
              await c.put(k, String(Number(text(kv.value)) + 1), { ifModRevision: kv.modRevision });
              done++;
            } catch (err) {
              if (!isGatehouseError(err, 'ERR_STORE_CONFLICT')) throw err;
              conflicts++;
            }
          }
        }),
      );
      const kv = (await store.get(k))!;
      assert.equal(text(kv.value), '1000');
      assert.equal(kv.version, 1001);
      assert.ok(conflicts >= 0);
    });

    // ---- sizes and bytes

    kvCase('1 MiB values round-trip', async (p) => {
      const big = randomBytes(1024 * 1024);
      const r = await store.put(`${p}big`, big);
      const kv = await store.get(`${p}big`);
      assert.equal(kv!.value.length, big.length);
      assert.equal(Buffer.compare(Buffer.from(kv!.value), big), 0);
      const old = await store.get(`${p}big`, { revision: r.revision });
      assert.equal(Buffer.compare(Buffer.from(old!.value), big), 0);
      const ranged = await store.range({ prefix: `${p}big` });
      assert.equal(Buffer.compare(Buffer.from(ranged.kvs[0]!.value), big), 0);
    });

    kvCase('binary keys (0x00, 0xff, prefixes of each other) sort and range correctly', async (p) => {
      const P = bytes(p);
      const suffixes = [[0x00], [0x00, 0x00], [0x00, 0xff], [0x01], [0xff], [0xff, 0x00], [0xff, 0xff], [0x61], [0x61, 0x62], [0x61, 0x00, 0x62]];
      const keys = suffixes.map((s) => bytes(P, s));
      // A maximal key that is mostly NULs.
      const longKey = bytes(P, new Uint8Array(LIMITS.maxKeyBytes - P.length));
      keys.push(longKey);
      const order = shuffled(keys, new Rng(7)); // any order must do; a fixed one keeps runs alike
      const revs = new Map<string, number>();
      for (const k of order) revs.set(hex(k), (await store.put(k, hex(k))).revision);

      const sorted = [...keys].sort((a, b) => Buffer.compare(a, b)).map(hex);
      const all = await store.range({ prefix: P });
      assert.deepEqual(all.kvs.map((kv) => hex(kv.key)), sorted);
      for (const kv of all.kvs) assert.equal(text(kv.value), hex(kv.key));

      const under00 = await store.range({ start: bytes(P, [0x00]), end: bytes(P, [0x01]) });
      assert.deepEqual(under00.kvs.map((kv) => hex(kv.key)), [bytes(P, [0x00]), bytes(P, [0x00, 0x00]), longKey, bytes(P, [0x00, 0xff])].map(hex));
      const underFF = await store.range({ prefix: bytes(P, [0xff]) });
      assert.deepEqual(underFF.kvs.map((kv) => hex(kv.key)), [bytes(P, [0xff]), bytes(P, [0xff, 0x00]), bytes(P, [0xff, 0xff])].map(hex));
      const underA = await store.range({ prefix: bytes(P, [0x61]) }, { reverse: true });
      assert.deepEqual(underA.kvs.map((kv) => hex(kv.key)), [bytes(P, [0x61, 0x62]), bytes(P, [0x61, 0x00, 0x62]), bytes(P, [0x61])].map(hex));
      assert.equal(hex(prefixEnd(bytes([0x61, 0xff]))), '62');

      for (const k of keys) assert.equal(text((await store.get(k))!.value), hex(k));
      const lastRev = Math.max(...revs.values());
      const d = await store.delete(bytes(P, [0x00]));
      assert.equal(d.deleted, 1);
      assert.ok(await store.get(bytes(P, [0x00, 0x00])));
      assert.equal(await store.get(bytes(P, [0x00])), undefined);
      // History over binary keys.
      assert.equal(text((await store.get(bytes(P, [0x00]), { revision: lastRev }))!.value), hex(bytes(P, [0x00])));
      const past = await store.range({ prefix: P }, { revision: lastRev });
      assert.deepEqual(past.kvs.map((kv) => hex(kv.key)), sorted);
      const earlier = await store.range({ prefix: P }, { revision: revs.get(hex(longKey))! });
      assert.ok(earlier.kvs.some((kv) => hex(kv.key) === hex(longKey)));
      assert.ok(earlier.kvs.every((kv) => revs.get(hex(kv.key))! <= revs.get(hex(longKey))!));
      assert.equal(earlier.count, [...revs.values()].filter((r) => r <= revs.get(hex(longKey))!).length);
    });

    kvCase('size limits and empty keys fail with their codes', async (p) => {
      const fits = p + 'k'.repeat(LIMITS.maxKeyBytes - bytes(p).length);
      await store.put(fits, 'ok');
      assert.equal(text((await store.get(fits))!.value), 'ok');
      const tooLong = fits + 'k';
      await rejectsWith(store.put(tooLong, 'x'), 'ERR_STORE_KEY_TOO_LARGE');
      await rejectsWith(store.get(tooLong), 'ERR_STORE_KEY_TOO_LARGE');
      await rejectsWith(store.put(`${p}v`, new Uint8Array(LIMITS.maxValueBytes + 1)), 'ERR_STORE_VALUE_TOO_LARGE');
      assert.equal(await store.get(`${p}v`), undefined);
      await rejectsWith(store.put('', 'x'), 'ERR_STORE_KEY_EMPTY');
      await rejectsWith(store.put(new Uint8Array(0), 'x'), 'ERR_STORE_KEY_EMPTY');
      await rejectsWith(store.get(''), 'ERR_STORE_KEY_EMPTY');
      await rejectsWith(store.delete(''), 'ERR_STORE_KEY_EMPTY');
      await rejectsWith(store.range({ start: '' }), 'ERR_STORE_KEY_EMPTY');
      await rejectsWith(store.txn([], [{ op: 'put', key: '', value: 'x' }]), 'ERR_STORE_KEY_EMPTY');
      await rejectsWith(store.txn([{ key: '', target: 'version', op: '==', value: 0 }], []), 'ERR_STORE_KEY_EMPTY');
    });

    kvCase('bad arguments fail with ERR_STORE_BAD_ARGUMENT', async (p) => {
      await store.put(`${p}a`, 'a');
      await rejectsWith(store.get(`${p}a`, { revision: -1 }), 'ERR_STORE_BAD_ARGUMENT');
      await rejectsWith(store.get(`${p}a`, { revision: Number.NaN }), 'ERR_STORE_BAD_ARGUMENT');
      await rejectsWith(store.range({ prefix: p }, { limit: -1 }), 'ERR_STORE_BAD_ARGUMENT');
      await rejectsWith(store.range({ prefix: p }, { limit: Number.NaN }), 'ERR_STORE_BAD_ARGUMENT');
      await rejectsWith(store.range({ prefix: p }, { revision: 1.5 }), 'ERR_STORE_BAD_ARGUMENT');
      await rejectsWith(store.grant(-1), 'ERR_STORE_BAD_ARGUMENT');
      await rejectsWith(store.grant(Number.NaN), 'ERR_STORE_BAD_ARGUMENT');
      await rejectsWith(store.put(`${p}a`, 'b', { ifModRevision: -3 }), 'ERR_STORE_BAD_ARGUMENT');
      await rejectsWith(store.watch({ prefix: p }, () => undefined, { fromRevision: -1 }), 'ERR_STORE_BAD_ARGUMENT');
      await rejectsWith(store.compact(-1), 'ERR_STORE_BAD_ARGUMENT');
      assert.equal(text((await store.get(`${p}a`))!.value), 'a');
    });
  });
}
