// The chain as stored: record shape, links, restart, forks, checkpoints and the audit key.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { text } from '../../src/store/index.js';
import { isGatehouseError } from '../../src/errors.js';
import {
  AUDIT_PREFIX,
  CHECKPOINT_PREFIX,
  GENESIS,
  auditKey,
  auditKeysJwks,
  canonicalJson,
  decodeRecord,
  verifyAudit,
  verifyCheckpoint,
  type ChainRecord,
} from '../../src/audit/index.js';
import { publicKeyMap } from '../../src/audit/checkpoint.js';
import { event, harness, type AuditHarness } from './helpers.js';

async function records(h: AuditHarness, chain: string): Promise<ChainRecord[]> {
  const r = await h.store.range({ prefix: `${AUDIT_PREFIX}${chain}/` });
  return r.kvs.map((kv) => decodeRecord(kv)!);
}

describe('canonical JSON', () => {
  it('sorts keys by code unit, drops undefined, prints numbers and strings as JSON.stringify does', () => {
    assert.equal(canonicalJson({ b: 1, a: [1, 'x', undefined, { d: true, c: null }], 'é': 1e21, Z: 0.1, u: undefined }), '{"Z":0.1,"a":[1,"x",null,{"c":null,"d":true}],"b":1,"é":1e+21}');
    assert.equal(canonicalJson({ s: 'line\n"q"' }), '{"s":"line\\n\\"q\\""}');
  });
  it('refuses non-finite numbers', () => {
    assert.throws(() => canonicalJson({ n: Number.NaN }), (e: unknown) => isGatehouseError(e, 'ERR_BAD_REQUEST'));
  });
});

describe('audit chain writer', () => {
  let h: AuditHarness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('stores {seq, prev, hash, event} with hash = SHA-256(prev || canonical event), from the genesis', async () => {
    const w = await h.open();
    for (let i = 0; i < 300; i++) w.append(event(i, h.clock));
    await w.flush();
    const recs = await records(h, 'r1');
    assert.equal(recs.length, 300);
    assert.equal(recs[0]!.prev, GENESIS);
    let prev = GENESIS;
    for (const [i, r] of recs.entries()) {
      assert.equal(r.seq, i + 1);
      assert.equal(r.prev, prev);
      assert.equal(r.hash, createHash('sha256').update(prev + canonicalJson(r.event)).digest('hex'));
      assert.equal(r.event['gatehouse.request_id'], `req-${i}`);
      prev = r.hash;
    }
  });

  it('continues the chain after a restart, chaining onto the stored head', async () => {
    const w1 = await h.open();
    for (let i = 0; i < 5; i++) w1.append(event(i, h.clock));
    await w1.close();
    const w2 = await h.open();
    w2.append(event(5, h.clock));
    await w2.flush();
    const recs = await records(h, 'r1');
    assert.deepEqual(recs.map((r) => r.seq), [1, 2, 3, 4, 5, 6]);
    assert.equal(recs[5]!.prev, recs[4]!.hash);
    assert.equal((await verifyAudit(h.store)).ok, true);
  });

  it('refuses to chain onto an edited head: fresh chain, alert first, ERR_AUDIT_CHAIN_FORKED', async () => {
    const w1 = await h.open();
    for (let i = 0; i < 3; i++) w1.append(event(i, h.clock));
    await w1.close();
    const kv = (await h.store.get(auditKey('r1', 3)))!;
    const rec = JSON.parse(text(kv.value)) as ChainRecord;
    rec.event['user.id'] = 'mallory';
    await h.store.put(auditKey('r1', 3), JSON.stringify(rec));
    const w2 = await h.open();
    assert.notEqual(w2.chain, 'r1');
    assert.match(w2.chain, /^r1\.fork-/);
    assert.ok(h.errors.some((e) => isGatehouseError(e, 'ERR_AUDIT_CHAIN_FORKED')));
    w2.append(event(9, h.clock));
    await w2.flush();
    const fresh = await records(h, w2.chain);
    assert.equal(fresh[0]!.event['event.action'], 'audit.chain.forked');
    assert.equal(fresh[0]!.event['gatehouse.audit.chain'], 'r1');
    assert.equal(fresh[1]!.event['gatehouse.request_id'], 'req-9');
    assert.equal((await records(h, 'r1')).length, 3, 'the old chain is never written over');
  });

  it('two processes with one replica id: the second cannot fork the chain silently', async () => {
    const a = await h.open();
    const b = await h.open();
    a.append(event(1, h.clock));
    await a.flush();
    b.append(event(2, h.clock));
    await b.flush();
    assert.equal(a.chain, 'r1');
    assert.match(b.chain, /^r1\.fork-/);
    assert.equal(b.stats.forks, 1);
    const r1 = await records(h, 'r1');
    assert.deepEqual(r1.map((r) => r.event['gatehouse.request_id']), ['req-1']);
    const forked = await records(h, b.chain);
    assert.deepEqual(forked.map((r) => r.event['event.action']), ['audit.chain.forked', 'http.request']);
    assert.equal(forked[0]!.event['event.kind'], 'alert');
    assert.equal((await verifyAudit(h.store)).ok, true, 'both chains are intact');
  });

  it('signs a checkpoint every N events and after the interval, verifiable with the published keys', async () => {
    const w = await h.open({ checkpointEvery: 100, checkpointIntervalMs: 10_000, batchSize: 50 });
    for (let i = 0; i < 250; i++) w.append(event(i, h.clock));
    await w.flush();
    const cps = await h.store.range({ prefix: `${CHECKPOINT_PREFIX}r1/` });
    assert.deepEqual(cps.kvs.map((kv) => Number(text(kv.key).split('/').pop())), [100, 200]);
    // 50 more unsigned events: the interval signs them without another 100
    h.clock.advance(10_000);
    await w.flush();
    const after = await h.store.range({ prefix: `${CHECKPOINT_PREFIX}r1/` });
    assert.equal(after.kvs.length, 3);
    const keys = publicKeyMap(await auditKeysJwks(h.store));
    const last = await verifyCheckpoint(text(after.kvs[2]!.value), keys);
    assert.ok(last.ok);
    const head = (await records(h, 'r1')).at(-1)!;
    assert.deepEqual({ replica: last.payload.replica, seq: last.payload.seq, hash: last.payload.hash, time: last.payload.time }, { replica: 'r1', seq: 250, hash: head.hash, time: new Date(h.clock.now()).toISOString() });
    assert.ok(last.payload.storeRevision >= 1);
  });

  it('creates one audit key shared by every replica, sealed apart from token keys', async () => {
    const a = await h.open({ replica: 'a' });
    const b = await h.open({ replica: 'b' });
    a.append(event(1, h.clock));
    b.append(event(2, h.clock));
    await a.close();
    await b.close();
    const jwks = await auditKeysJwks(h.store);
    assert.equal(jwks.keys.length, 1);
    assert.deepEqual(Object.keys(jwks.keys[0]!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    const report = await verifyAudit(h.store);
    assert.equal(report.ok, true);
    assert.deepEqual(report.chains.map((c) => [c.replica, c.checkpoints, c.uncheckpointed]), [['a', 1, 0], ['b', 1, 0]]);
  });

  it('never blocks the caller: append returns before anything is in the store', async () => {
    const w = await h.open();
    w.append(event(1, h.clock));
    assert.equal((await h.store.range({ prefix: AUDIT_PREFIX })).kvs.length, 0);
    await w.flush();
    assert.equal((await h.store.range({ prefix: AUDIT_PREFIX })).kvs.length, 1);
  });
});
