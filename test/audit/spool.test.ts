// The spool: while the store cannot be reached, events wait in a local file and reach the
// chain in order, exactly once, when it answers again — also across a writer restart.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSecretKey, randomBytes } from 'node:crypto';
import { GatehouseError } from '../../src/errors.js';
import { systemClock } from '../../src/lib/clock.js';
import { openStore, type Store } from '../../src/store/index.js';
import { AUDIT_PREFIX, AuditWriter, decodeRecord, verifyAudit } from '../../src/audit/index.js';
import { startEtcdCluster, isSkip, type EtcdCluster } from '../helpers/etcd.js';
import { event, harness } from './helpers.js';
import { until } from '../tokens/helpers.js';

async function requestIds(store: Store, chain: string): Promise<string[]> {
  const out: string[] = [];
  let start = `${AUDIT_PREFIX}${chain}/`;
  for (;;) {
    const page = await store.range({ start, end: `${AUDIT_PREFIX}${chain}0` }, { limit: 1000 });
    for (const kv of page.kvs) out.push(String(decodeRecord(kv)!.event['gatehouse.request_id']));
    const last = page.kvs.at(-1);
    if (!page.more || last === undefined) return out;
    start = `${Buffer.from(last.key).toString('utf8')}\0`;
  }
}

/** A store whose writes fail while `down` is set; `landThenFail` commits a txn and still reports failure (a timeout after commit). */
function flaky(store: Store): Store & { down: boolean; landThenFail: boolean } {
  const s = Object.create(store) as Store & { down: boolean; landThenFail: boolean };
  s.down = false;
  s.landThenFail = false;
  const unavailable = (): GatehouseError => new GatehouseError('ERR_STORE_UNAVAILABLE', 'test: store down');
  s.txn = async (...args) => {
    if (s.landThenFail) {
      s.landThenFail = false;
      s.down = true;
      await store.txn(...args);
      throw unavailable();
    }
    if (s.down) throw unavailable();
    return store.txn(...args);
  };
  s.range = async (...args) => {
    if (s.down) throw unavailable();
    return store.range(...args);
  };
  s.get = async (...args) => {
    if (s.down) throw unavailable();
    return store.get(...args);
  };
  s.put = async (...args) => {
    if (s.down) throw unavailable();
    return store.put(...args);
  };
  s.revision = async () => {
    if (s.down) throw unavailable();
    return store.revision();
  };
  return s;
}

describe('audit spool (embedded store, failures injected)', () => {
  it('spools in order while writes fail (even one that landed), replays exactly once, across a restart', async () => {
    const h = await harness();
    const spoolDir = path.join(h.dir, 'spool');
    const store = flaky(h.store);
    const w1 = await AuditWriter.open({ store, clock: h.clock, kek: h.kek, replica: 'r1', spoolDir, onError: () => undefined, checkpointEvery: 10 });
    for (let i = 0; i < 20; i++) w1.append(event(i, h.clock));
    await w1.flush();
    store.landThenFail = true; // the next batch commits, but the writer hears a failure
    for (let i = 20; i < 60; i++) w1.append(event(i, h.clock));
    await w1.flush();
    assert.equal(store.down, true);
    for (let i = 60; i < 100; i++) w1.append(event(i, h.clock));
    await w1.close(); // a gateway restart while spooled
    const file = path.join(spoolDir, 'r1.spool.jsonl');
    assert.ok(existsSync(file));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(spoolDir).mode & 0o777, 0o700);

    // the store is still down at start: the writer opens anyway and spools after what is there
    const w2 = await AuditWriter.open({ store, clock: h.clock, kek: h.kek, replica: 'r1', spoolDir, onError: () => undefined });
    for (let i = 100; i < 120; i++) w2.append(event(i, h.clock));
    await w2.flush();
    store.down = false;
    h.clock.advance(5_000); // the retry timer
    await until(() => w2.stats.queued === 0 && !existsSync(file), 100_000);
    await w2.flush();
    await w2.close();
    const ids = await requestIds(h.store, 'r1');
    assert.deepEqual(ids, Array.from({ length: 120 }, (_, i) => `req-${i}`), 'every event once, in order');
    assert.equal((await verifyAudit(h.store)).ok, true);
    await h.close();
  });
});

describe('audit writer close while the store is down (the EBADF hang)', () => {
  it('a retry timer that fires during close() starts no pump after it: the closed spool is never read', async () => {
    const h = await harness();
    const store = flaky(h.store);
    const errors: unknown[] = [];
    const w = await AuditWriter.open({ store, clock: h.clock, kek: h.kek, replica: 'r1', spoolDir: path.join(h.dir, 'spool'), onError: (e) => errors.push(e) });
    store.down = true;
    for (let i = 0; i < 50; i++) w.append(event(i, h.clock));
    await w.flush(); // fails: spool mode, a retry timer armed
    for (let i = 50; i < 60; i++) w.append(event(i, h.clock));
    const closing = w.close();
    // every timer the writer armed fires while close() is in flight, then again after it
    for (let i = 0; i < 20; i++) {
      h.clock.advance(5_000);
      await new Promise((r) => setImmediate(r));
    }
    await closing;
    h.clock.advance(60_000);
    await w.flush(); // after close: a no-op, not a read of the closed file
    await new Promise((r) => setTimeout(r, 50));
    const badf = errors.filter((e) => (e as NodeJS.ErrnoException).code === 'EBADF');
    assert.deepEqual(badf, [], 'nothing touched the closed spool');
    assert.equal(w.stats.spooled, 60, 'every event reached the spool before close');
    await h.close();
  });
});

describe('audit spool (real etcd stopped under load)', () => {
  let cluster: EtcdCluster | undefined;
  let skip: string | undefined;
  let dir: string;
  before(async () => {
    const c = await startEtcdCluster({ members: 1 });
    if (isSkip(c)) skip = c.skip;
    else cluster = c;
    dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-audit-spool-'));
  });
  after(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('kill etcd, keep appending, restart the gateway writer and etcd: every event in the chain exactly once, verify passes', { timeout: 120_000 }, async (t) => {
    if (skip !== undefined || cluster === undefined) return t.skip(skip);
    const member = cluster.members[0]!;
    const spoolDir = path.join(dir, 'spool');
    const kek = createSecretKey(randomBytes(32));
    const open = async (): Promise<{ store: Store; writer: AuditWriter }> => {
      const store = await openStore({ kind: 'etcd', endpoints: cluster!.endpoints, timeoutMs: 500 });
      const writer = await AuditWriter.open({ store, clock: systemClock, kek, replica: 'gw-1', spoolDir, flushIntervalMs: 10, checkpointEvery: 200, onError: () => undefined });
      return { store, writer };
    };
    let { store, writer } = await open();
    let n = 0;
    // load: a steady stream of events from the "request path", never awaiting the writer;
    // bounded, so even a failed assertion cannot leave it filling the spool forever
    const startLoad = (): (() => Promise<void>) => {
      let running = true;
      const until = Date.now() + 20_000;
      const load = (async () => {
        while (running && Date.now() < until) {
          for (let i = 0; i < 20; i++) writer.append({ '@timestamp': new Date().toISOString(), 'event.action': 'http.request', 'event.outcome': 'success', 'gatehouse.request_id': `req-${n++}` });
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      return async () => {
        running = false;
        await load;
      };
    };
    let stopLoad = startLoad();
    // a failing assertion still stops the load and both clients
    t.after(async () => {
      await stopLoad();
      await writer.close();
      await store.close();
    });
    await new Promise((r) => setTimeout(r, 500));
    await cluster.kill(member);
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(writer.stats.spooled > 0, 'events went to the spool while etcd was down');
    // a gateway restart while spooled (etcd still down)
    await stopLoad();
    await writer.close();
    await store.close();
    ({ store, writer } = await open());
    stopLoad = startLoad();
    await new Promise((r) => setTimeout(r, 500));
    await cluster.restart(member);
    await new Promise((r) => setTimeout(r, 1500));
    await stopLoad();
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && (writer.stats.queued > 0 || readdirSync(spoolDir).length > 0)) {
      await writer.flush();
      await new Promise((r) => setTimeout(r, 100));
    }
    await writer.close();
    const ids = await requestIds(store, 'gw-1');
    assert.equal(ids.length, n, `all ${n} events in the chain (got ${ids.length})`);
    assert.deepEqual(ids, Array.from({ length: n }, (_, i) => `req-${i}`), 'exactly once, in order');
    assert.deepEqual(readdirSync(spoolDir), [], 'the spool is gone once replayed');
    const report = await verifyAudit(store);
    assert.equal(report.ok, true, JSON.stringify(report.chains.map((c) => c.break)));
    await store.close();
  });
});
