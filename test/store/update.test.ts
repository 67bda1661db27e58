// The compare-and-swap read-modify-write helper, on the embedded store.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GatehouseError, isGatehouseError } from '../../src/errors.js';
import { ManualClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { jsonCodec } from '../../src/store/keys.js';
import { CAS_ATTEMPTS, CONFLICT, readCurrent, retryOnConflict, updateKey } from '../../src/store/update.js';

interface Counter {
  n: number;
}
const codec = jsonCodec<Counter>('counter', (v) => (typeof v.n === 'number' ? undefined : 'n is not a number'));

describe('store/update', () => {
  let dir: string;
  let store: EmbeddedStore;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gh-update-'));
    store = await openEmbeddedStore({ kind: 'embedded', path: dir, clock: new ManualClock() });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates an absent key, changes it guarded by its modRevision, and leaves it when told', async () => {
    const created = await updateKey(store, '/c', codec, (c) => ({ n: (c?.n ?? 0) + 1 }));
    assert.deepEqual(created.value, { n: 1 });
    assert.equal(created.written, true);
    const same = await updateKey(store, '/c', codec, () => undefined);
    assert.deepEqual(same, { value: { n: 1 }, written: false });
    const absent = await updateKey(store, '/none', codec, (c) => (c === undefined ? undefined : c));
    assert.deepEqual(absent, { value: undefined, written: false });
    assert.equal(await store.get('/none'), undefined);
  });

  it('applies every one of many concurrent changes exactly once', async () => {
    const writers = 6;
    await Promise.all(Array.from({ length: writers }, () => updateKey(store, '/c', codec, (c) => ({ n: (c?.n ?? 0) + 1 }))));
    assert.deepEqual((await readCurrent(store, '/c', codec))?.value, { n: writers });
  });

  it('starts again from a fresh read when another writer came between read and write', async () => {
    await store.put('/c', JSON.stringify({ n: 1 }));
    let calls = 0;
    const r = await updateKey(store, '/c', codec, (c) => {
      calls++;
      // a writer sneaks in during the first attempt only
      if (calls === 1) void store.put('/c', JSON.stringify({ n: 10 }));
      return { n: c!.n + 1 };
    });
    assert.equal(calls, 2);
    assert.deepEqual(r.value, { n: 11 });
  });

  it('keeps the lease of the key, or takes a fresh one per attempt and revokes the losers', async () => {
    const lease = await store.grant(60);
    await store.put('/c', JSON.stringify({ n: 1 }), { lease: lease.id });
    await updateKey(store, '/c', codec, (c) => ({ n: c!.n + 1 }));
    assert.equal((await store.get('/c'))?.lease, lease.id);
    const granted: string[] = [];
    let calls = 0;
    await updateKey(store, '/c', codec, (c) => {
      if (++calls === 1) void store.put('/c', JSON.stringify({ n: 5 }));
      return { n: c!.n + 1 };
    }, { lease: async () => { const l = await store.grant(30); granted.push(l.id); return l.id; } });
    assert.equal(granted.length, 2);
    assert.equal((await store.get('/c'))?.lease, granted[1]);
    await assert.rejects(store.keepAlive(granted[0]!), (e: unknown) => isGatehouseError(e, 'ERR_STORE_LEASE_NOT_FOUND'));
  });

  it('gives up after CAS_ATTEMPTS lost attempts with a retryable ERR_STORE_CONFLICT', async () => {
    let n = 0;
    await assert.rejects(retryOnConflict('busy key', async () => { n++; return CONFLICT; }), (e: unknown) => isGatehouseError(e, 'ERR_STORE_CONFLICT') && e.retryable && /busy key/.test(e.message));
    assert.equal(n, CAS_ATTEMPTS);
    await assert.rejects(retryOnConflict('x', async () => { throw new GatehouseError('ERR_STORE_CONFLICT'); }, { exhausted: () => new GatehouseError('ERR_TOTP_REPLAY') }), (e: unknown) => isGatehouseError(e, 'ERR_TOTP_REPLAY'));
    // other failures are not retried
    n = 0;
    await assert.rejects(retryOnConflict('x', async () => { n++; throw new GatehouseError('ERR_STORE_UNAVAILABLE'); }), (e: unknown) => isGatehouseError(e, 'ERR_STORE_UNAVAILABLE'));
    assert.equal(n, 1);
  });

  it('takes fewer attempts when told (an attempt costly to repeat)', async () => {
    let n = 0;
    await assert.rejects(retryOnConflict('costly', async () => { n++; return CONFLICT; }, { attempts: 5 }), (e: unknown) => isGatehouseError(e, 'ERR_STORE_CONFLICT'));
    assert.equal(n, 5);
    n = 0;
    assert.equal(await retryOnConflict('costly', async (i) => { n++; return i < 4 ? CONFLICT : 'done'; }, { attempts: 5 }), 'done');
    assert.equal(n, 5);
  });

  it('refuses to change a record that does not decode, unless told to overwrite it', async () => {
    await store.put('/c', 'not json');
    await assert.rejects(updateKey(store, '/c', codec, () => ({ n: 1 })), (e: unknown) => isGatehouseError(e, 'ERR_STORE_CORRUPT') && e.message.includes('/c'));
    await store.put('/c', JSON.stringify({ n: 'x' }));
    await assert.rejects(readCurrent(store, '/c', codec), (e: unknown) => isGatehouseError(e, 'ERR_STORE_CORRUPT') && e.message.includes('n is not a number'));
    const r = await updateKey(store, '/c', codec, (c) => ({ n: (c?.n ?? 0) + 1 }), { strict: false });
    assert.deepEqual(r.value, { n: 1 });
  });
});
