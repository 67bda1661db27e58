// Embedded-only behaviour: what the conformance suite cannot assert on a shared etcd
// (exact revisions), and what only a local store has (reopen, the lock file, compaction
// reclaiming space, batching).
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { open as openLmdb } from 'lmdb';
import { isGatehouseError, type ErrorCode } from '../../src/errors.js';
import { ManualClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { LOCK_FILE } from '../../src/store/embedded/lock.js';
import { text, type WatchEvent } from '../../src/store/index.js';

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isGatehouseError(err), `expected a GatehouseError ${code}, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Entries per table, read with lmdb directly (the store must be closed). */
async function countEntries(dir: string): Promise<{ versions: number; log: number; latest: number }> {
  const root = openLmdb({ path: dir, maxDbs: 8 });
  try {
    const count = (name: string): number => root.openDB({ name, encoding: 'binary', keyEncoding: 'binary' }).getCount();
    return { versions: count('versions'), log: count('log'), latest: count('latest') };
  } finally {
    await root.close();
  }
}

/** Starts a process that does nothing for a while; returns it and its PID. */
function idleProcess(): { pid: number; stop: () => void } {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  return { pid, stop: () => process.kill(pid, 'SIGKILL') };
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  await new Promise((r) => child.once('exit', r));
  return pid;
}

describe('embedded store', () => {
  let dir: string;
  let clock: ManualClock;
  const opened: EmbeddedStore[] = [];

  async function openStore(): Promise<EmbeddedStore> {
    const s = await openEmbeddedStore({ kind: 'embedded', path: dir, clock });
    opened.push(s);
    return s;
  }

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-embedded-'));
    clock = new ManualClock();
  });

  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts revisions exactly: one per write, none for no-ops, failures and reads', async () => {
    const s = await openStore();
    assert.equal(await s.revision(), 0);
    assert.equal((await s.put('a', '1')).revision, 1);
    assert.equal((await s.put('b', '1')).revision, 2);
    assert.deepEqual(await s.delete('missing'), { revision: 2, deleted: 0 });
    assert.deepEqual(await s.delete({ prefix: 'zz' }), { revision: 2, deleted: 0 });
    await rejectsWith(s.put('a', 'x', { ifModRevision: 2 }), 'ERR_STORE_CONFLICT');
    const readOnly = await s.txn([], [{ op: 'get', key: 'a' }]);
    assert.equal(readOnly.revision, 2);
    const failed = await s.txn([{ key: 'a', target: 'version', op: '==', value: 9 }], [{ op: 'put', key: 'a', value: 'x' }]);
    assert.equal(failed.revision, 2);
    await s.grant(30);
    assert.equal(await s.revision(), 2);
    const t = await s.txn([], [{ op: 'put', key: 'c', value: '1' }, { op: 'delete', key: 'a' }, { op: 'put', key: 'd', value: '1' }]);
    assert.equal(t.revision, 3);
    assert.deepEqual(await s.delete({ prefix: '' }), { revision: 4, deleted: 3 });
    assert.equal((await s.range({ prefix: '' })).revision, 4);
  });

  it('the conflict error carries the current modRevision', async () => {
    const s = await openStore();
    await s.put('k', '1');
    await s.put('k', '2');
    const err = await s.put('k', '3', { ifModRevision: 1 }).catch((e: unknown) => e);
    assert.ok(isGatehouseError(err, 'ERR_STORE_CONFLICT'));
    assert.deepEqual(err.details, { modRevision: 2 });
    const absent = await s.delete('nope', { ifModRevision: 5 }).catch((e: unknown) => e);
    assert.ok(isGatehouseError(absent, 'ERR_STORE_CONFLICT'));
    assert.deepEqual(absent.details, { modRevision: 0 });
  });

  it('assigns revisions serially to many concurrent writes, and watchers see them in order', async () => {
    const s = await openStore();
    const seen: WatchEvent[] = [];
    await s.watch({ prefix: 'c/' }, (e) => seen.push(e));
    const n = 2_000;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => s.put(`c/${i}`, String(i))));
    const revs = results.map((r) => r.revision).sort((a, b) => a - b);
    assert.deepEqual(revs, Array.from({ length: n }, (_, i) => i + 1));
    // Queue order is revision order.
    assert.deepEqual(results.map((r) => r.revision), revs);
    assert.equal(seen.length, n);
    assert.deepEqual(seen.map((e) => e.kv.modRevision), revs);
  });

  it('a watch started while an unwatched batch commits misses none of its events', async () => {
    const s = await openStore();
    for (let round = 0; round < 12; round++) {
      const writes = Array.from({ length: 3_000 }, (_, i) => s.put(`r/${i}`, String(round)));
      // Let the batch start (built without events, nobody watches), then watch mid-commit;
      // the window moves with machine speed, so try several points in it.
      for (let i = 0; i < round; i++) await new Promise((r) => setImmediate(r));
      const seen: number[] = [];
      const w = await s.watch({ prefix: 'r/' }, (e) => seen.push(e.kv.modRevision));
      await Promise.all(writes);
      await w.close();
      const last = await s.revision();
      assert.deepEqual(seen, Array.from({ length: last - w.startRevision + 1 }, (_, i) => w.startRevision + i));
    }
  });

  it('fails one write in a batch without touching the others', async () => {
    const s = await openStore();
    await s.put('x', '0');
    const [a, b, c] = await Promise.allSettled([s.put('a', '1'), s.put('x', 'no', { ifModRevision: 99 }), s.put('c', '1')]);
    assert.equal(a.status, 'fulfilled');
    assert.equal(b.status, 'rejected');
    assert.equal(c.status, 'fulfilled');
    assert.ok(a.status === 'fulfilled' && c.status === 'fulfilled');
    assert.equal(c.value.revision, a.value.revision + 1);
    assert.equal(text((await s.get('x'))!.value), '0');
  });

  it('reopening keeps data, history and the revision', async () => {
    let s = await openStore();
    await s.put('a', '1');
    await s.put('a', '2');
    await s.put('b', '1');
    await s.delete('b');
    await s.close();
    assert.equal(existsSync(path.join(dir, LOCK_FILE)), false, 'close releases the lock');
    s = await openStore();
    assert.equal(await s.revision(), 4);
    const a = (await s.get('a'))!;
    assert.deepEqual([text(a.value), a.createRevision, a.modRevision, a.version], ['2', 1, 2, 2]);
    assert.equal(text((await s.get('a', { revision: 1 }))!.value), '1');
    assert.equal(await s.get('b'), undefined);
    assert.equal(text((await s.get('b', { revision: 3 }))!.value), '1');
    assert.equal((await s.put('c', '1')).revision, 5);
    const seen: WatchEvent[] = [];
    await s.watch({ prefix: '' }, (e) => seen.push(e), { fromRevision: 1 });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen.map((e) => `${e.type} ${text(e.kv.key)}@${e.kv.modRevision}`), ['put a@1', 'put a@2', 'put b@3', 'delete b@4', 'put c@5']);
  });

  it('refuses a second open of the same directory with ERR_STORE_LOCKED', async () => {
    const s = await openStore();
    await s.put('k', 'v');
    await rejectsWith(openEmbeddedStore({ kind: 'embedded', path: dir, clock }), 'ERR_STORE_LOCKED');
    assert.equal(readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim(), String(process.pid));
    // The refused open did not disturb the holder.
    assert.equal(text((await s.get('k'))!.value), 'v');
    await s.close();
    const again = await openStore();
    assert.equal(text((await again.get('k'))!.value), 'v');
  });

  it('refuses a lock held by another live process, and takes over one left by a dead process', async () => {
    const live = idleProcess();
    try {
      writeFileSync(path.join(dir, LOCK_FILE), `${live.pid}\n`);
      const err = await openEmbeddedStore({ kind: 'embedded', path: dir, clock }).catch((e: unknown) => e);
      assert.ok(isGatehouseError(err, 'ERR_STORE_LOCKED'));
      assert.equal(err.details?.pid, live.pid);
    } finally {
      live.stop();
    }
    writeFileSync(path.join(dir, LOCK_FILE), `${await deadPid()}\n`);
    const s = await openStore();
    assert.equal(readFileSync(path.join(dir, LOCK_FILE), 'utf8').trim(), String(process.pid));
    await s.put('k', 'v');
  });

  it('keeps leases across a reopen and expires them by the clock', async () => {
    let s = await openStore();
    const lease = await s.grant(10);
    await s.put('l/a', 'a', { lease: lease.id });
    clock.advance(4_000);
    await s.close();
    s = await openStore();
    assert.equal((await s.get('l/a'))!.lease, lease.id);
    clock.advance(5_000);
    await s.settle();
    assert.ok(await s.get('l/a'), 'not yet: 9 of 10 seconds');
    await s.keepAlive(lease.id);
    clock.advance(9_000);
    await s.settle();
    assert.ok(await s.get('l/a'), 'kept alive');
    const before = await s.revision();
    clock.advance(1_000);
    await s.settle();
    assert.equal(await s.get('l/a'), undefined);
    assert.equal(await s.revision(), before + 1);
    await rejectsWith(s.keepAlive(lease.id), 'ERR_STORE_LEASE_NOT_FOUND');
  });

  it('expires at open a lease whose deadline passed while the store was closed', async () => {
    let s = await openStore();
    const lease = await s.grant(5);
    await s.put('l/a', 'a', { lease: lease.id });
    await s.put('l/b', 'b', { lease: lease.id });
    await s.put('l/c', 'c');
    const rev = await s.revision();
    await s.close();
    clock.advance(6_000);
    s = await openStore();
    await s.settle();
    assert.deepEqual((await s.range({ prefix: 'l/' })).kvs.map((kv) => text(kv.key)), ['l/c']);
    assert.equal(await s.revision(), rev + 1, 'both keys go in one revision');
    await rejectsWith(s.revoke(lease.id), 'ERR_STORE_LEASE_NOT_FOUND');
    const seen: WatchEvent[] = [];
    await s.watch({ prefix: 'l/' }, (e) => seen.push(e), { fromRevision: rev + 1 });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen.map((e) => `${e.type} ${text(e.kv.key)}@${e.kv.modRevision}`), [`delete l/a@${rev + 1}`, `delete l/b@${rev + 1}`]);
  });

  it('runs every lease on one clock timer: expiries in deadline order, keepalives move them, revokes cancel them', async () => {
    let pending = 0;
    const counting = {
      now: () => clock.now(),
      setTimer(fn: () => void, ms: number) {
        pending++;
        const t = clock.setTimer(() => {
          pending--;
          fn();
        }, ms);
        return { cancel: () => { pending--; t.cancel(); } };
      },
    };
    const s = await openEmbeddedStore({ kind: 'embedded', path: dir, clock: counting });
    opened.push(s);
    const leases = [];
    for (let i = 0; i < 100; i++) {
      const lease = await s.grant(10 + i);
      await s.put(`l/${String(i).padStart(3, '0')}`, 'x', { lease: lease.id });
      leases.push(lease.id);
    }
    assert.equal(pending, 1, 'one timer for 100 leases');
    await s.revoke(leases[0]!);
    clock.advance(5_000);
    await s.keepAlive(leases[1]!); // 11 s from now: after leases 2..5
    const expired: string[] = [];
    await s.watch({ prefix: 'l/' }, (e) => expired.push(text(e.kv.key)));
    clock.advance(10_000); // t = 15 s: the leases of 12..15 s are due; lease 1 (11 s, kept alive to 16 s) is not
    await s.settle();
    assert.deepEqual(expired, ['l/002', 'l/003', 'l/004', 'l/005']);
    clock.advance(100_000);
    await s.settle();
    assert.equal(expired.length, 99, 'all but the revoked one');
    const others = expired.filter((k) => k !== 'l/001');
    assert.deepEqual(others, [...others].sort(), 'in deadline order');
    const at = (k: string): number => expired.indexOf(k);
    assert.ok(at('l/001') > at('l/005') && at('l/001') < at('l/007'), 'the kept-alive lease expires at its new deadline (16 s)');
    assert.equal((await s.range({ prefix: 'l/' })).count, 0);
    assert.equal(pending, 0);
  });

  it('answers a read at an older revision the same whether the range changed since or not', async () => {
    const s = await openStore();
    await s.put('p/a', '1');
    await s.put('p/b', '1');
    await s.put('p/c', '1');
    const rev = await s.revision();
    await s.put('q/x', '1'); // outside the range: the rows at rev are still the current ones
    const read = async (): Promise<unknown> => {
      const all = await s.range({ prefix: 'p/' }, { revision: rev });
      const page = await s.range({ prefix: 'p/' }, { revision: rev, limit: 2 });
      const back = await s.range({ prefix: 'p/' }, { revision: rev, limit: 1, reverse: true });
      const keys = await s.range({ start: 'p/b', end: 'p/z' }, { revision: rev, keysOnly: true });
      const strip = (r: { kvs: unknown[]; more: boolean; count: number }): unknown => ({ kvs: r.kvs, more: r.more, count: r.count });
      return [strip(all), strip(page), strip(back), strip(keys)];
    };
    const unchanged = await read();
    assert.deepEqual((unchanged as { kvs: { key: Uint8Array }[] }[])[0]!.kvs.map((kv) => text(kv.key)), ['p/a', 'p/b', 'p/c']);
    await s.put('p/a', '2');
    await s.delete('p/b');
    await s.put('p/d', '1');
    assert.deepEqual(await read(), unchanged, 'served from the versions now, from the current rows before');
  });

  it('handles a lease longer than a Node timer can wait', async () => {
    const s = await openStore();
    const ttl = 3_000_000; // ~35 days; setTimeout tops out at ~24.8
    const lease = await s.grant(ttl);
    await s.put('long', 'x', { lease: lease.id });
    clock.advance(2 ** 31);
    await s.settle();
    assert.ok(await s.get('long'));
    clock.advance(ttl * 1000 - 2 ** 31);
    await s.settle();
    assert.equal(await s.get('long'), undefined);
  });

  it('compaction reclaims old versions and the log, keeps what reads at or above it need', async () => {
    let s = await openStore();
    for (let i = 0; i < 50; i++) await s.put('hot', String(i));
    await s.put('gone', 'x');
    await s.delete('gone');
    await s.put('cold', 'c');
    const target = await s.revision(); // 53
    await s.put('hot', 'after');
    await s.close();
    const beforeCounts = await countEntries(dir);
    assert.deepEqual(beforeCounts, { versions: 54, log: 54, latest: 2 });

    s = await openStore();
    await s.compact(target);
    assert.equal(text((await s.get('hot', { revision: target }))!.value), '49');
    assert.equal(await s.get('gone', { revision: target }), undefined);
    assert.equal(text((await s.get('cold', { revision: target }))!.value), 'c');
    await rejectsWith(s.get('hot', { revision: target - 1 }), 'ERR_STORE_COMPACTED');
    await rejectsWith(s.compact(target), 'ERR_STORE_COMPACTED');
    const seen: WatchEvent[] = [];
    await s.watch({ prefix: '' }, (e) => seen.push(e), { fromRevision: target });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen.map((e) => `${e.type} ${text(e.kv.key)}@${e.kv.modRevision}`), [`put cold@${target}`, `put hot@${target + 1}`]);
    await s.close();
    // hot: its version at 49 (newest <= target) and 'after'; gone: nothing; cold: 1. Log from target on.
    assert.deepEqual(await countEntries(dir), { versions: 3, log: 2, latest: 2 });
    s = await openStore();
    await rejectsWith(s.range({ prefix: '' }, { revision: 1 }), 'ERR_STORE_COMPACTED');
  });

  it('compacts a history larger than one compaction step', async () => {
    const s = await openStore();
    const n = 25_000;
    await Promise.all(Array.from({ length: n }, (_, i) => s.put(`k${i % 10}`, String(i))));
    await s.delete('k0');
    const target = await s.revision();
    await s.compact(target);
    assert.equal(await s.get('k0', { revision: target }), undefined);
    assert.equal(text((await s.get('k9', { revision: target }))!.value), String(n - 1));
    assert.equal((await s.range({ prefix: 'k' }, { revision: target })).count, 9);
    await s.close();
    assert.deepEqual(await countEntries(dir), { versions: 9, log: 1, latest: 9 });
  });

  it('close ends watches and rejects later calls with ERR_STORE_CLOSED', async () => {
    const s = await openStore();
    const ended: unknown[] = [];
    await s.watch({ prefix: '' }, () => undefined, { onError: (e) => ended.push(e) });
    const pending = s.put('k', 'v');
    await s.close();
    await pending; // accepted before close: it commits
    assert.equal(ended.length, 1);
    assert.ok(isGatehouseError(ended[0], 'ERR_STORE_CLOSED'));
    await rejectsWith(s.get('k'), 'ERR_STORE_CLOSED');
    await rejectsWith(s.put('k', 'v'), 'ERR_STORE_CLOSED');
    await rejectsWith(s.watch({ prefix: '' }, () => undefined), 'ERR_STORE_CLOSED');
    await rejectsWith(s.revision(), 'ERR_STORE_CLOSED');
    assert.equal(await s.ping(), false);
    await s.close();
  });

  it('a throwing watch handler ends its own watch only', async () => {
    const s = await openStore();
    const errors: Error[] = [];
    const good: WatchEvent[] = [];
    await s.watch({ prefix: '' }, () => {
      throw new Error('handler bug');
    }, { onError: (e) => errors.push(e) });
    await s.watch({ prefix: '' }, (e) => good.push(e));
    await s.put('a', '1');
    await s.put('b', '1');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.message, 'handler bug');
    assert.equal(good.length, 2);
  });

  it('rejects a txn that writes one key twice, and a zero ttl', async () => {
    const s = await openStore();
    await rejectsWith(s.txn([], [{ op: 'put', key: 'a', value: '1' }, { op: 'put', key: 'a', value: '2' }]), 'ERR_STORE_BAD_ARGUMENT');
    await rejectsWith(s.txn([], [{ op: 'delete', range: { prefix: 'a' } }, { op: 'put', key: 'ab', value: '2' }]), 'ERR_STORE_BAD_ARGUMENT');
    await rejectsWith(s.grant(0), 'ERR_STORE_BAD_ARGUMENT');
    await rejectsWith(s.grant(1.5), 'ERR_STORE_BAD_ARGUMENT');
    await rejectsWith(s.put('a', '1', { lease: 'not-a-number' }), 'ERR_STORE_BAD_ARGUMENT');
    assert.equal(await s.revision(), 0);
  });
});
