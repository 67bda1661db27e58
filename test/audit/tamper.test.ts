// Tampering that leaves no edited record behind: a chain deleted whole, truncated with its
// checkpoints and head record rewound to match, replaced by a fresh chain from seq 1, a key
// planted in the store. Each must be found by verify (from the other chains' witnesses, the head
// records, or the earlier receipt kept off the box) and, where a writer restarts on what is left,
// announced by an alert naming the older head.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { text, type Store } from '../../src/store/index.js';
import { isGatehouseError } from '../../src/errors.js';
import {
  AUDIT_HEAD_PREFIX,
  AUDIT_PREFIX,
  CHECKPOINT_PREFIX,
  auditKey,
  auditKeysJwks,
  canonicalJson,
  chainHash,
  checkpointKey,
  decodeRecord,
  headKey,
  parseReceipt,
  formatReceipt,
  signCheckpoint,
  verifyAudit,
  verifyCheckpoint,
  type AuditReceipt,
  type BreakKind,
  type ChainRecord,
} from '../../src/audit/index.js';
import { encodeRecord } from '../../src/audit/chain.js';
import { publicKeyMap } from '../../src/audit/checkpoint.js';
import { event, harness, plantAuditKey, verifyCli, type AuditHarness } from './helpers.js';

async function deleteChain(store: Store, chain: string, o: { head?: boolean } = {}): Promise<void> {
  await store.delete({ prefix: `${AUDIT_PREFIX}${chain}/` });
  await store.delete({ prefix: `${CHECKPOINT_PREFIX}${chain}/` });
  if (o.head !== false) await store.delete(headKey(chain));
}

async function records(store: Store, chain: string): Promise<ChainRecord[]> {
  const r = await store.range({ prefix: `${AUDIT_PREFIX}${chain}/` });
  return r.kvs.map((kv) => decodeRecord(kv)!);
}

/** A well-linked chain written straight into the store, as someone with store access (and no key) can. */
async function forgeChain(h: AuditHarness, chain: string, n: number): Promise<void> {
  let prev = '0'.repeat(64);
  for (let seq = 1; seq <= n; seq++) {
    const canonical = canonicalJson(event(seq, h.clock, { 'user.id': 'nobody' }));
    const hash = chainHash(prev, canonical);
    await h.store.put(auditKey(chain, seq), encodeRecord(seq, prev, hash, canonical));
    prev = hash;
  }
}

async function breaks(h: AuditHarness, o: Parameters<typeof verifyAudit>[1] = {}): Promise<Record<string, { seq: number; kind: BreakKind } | undefined>> {
  const pinned = await auditKeysJwks(h.store);
  const r = await verifyAudit(h.store, { keys: pinned, ...o });
  return Object.fromEntries(r.chains.map((c) => [c.replica, c.break && { seq: c.break.seq, kind: c.break.kind }]));
}

describe('audit tampering across replicas (cross-witnessing)', () => {
  let h: AuditHarness;
  /** b's hash at seq 20, as a's checkpoints witnessed it. */
  let b20: string;
  beforeEach(async () => {
    h = await harness();
    const a = await h.open({ replica: 'a', checkpointEvery: 10, batchSize: 10 });
    const b = await h.open({ replica: 'b', checkpointEvery: 10, batchSize: 10 });
    for (let i = 1; i <= 20; i++) a.append(event(i, h.clock));
    await a.flush();
    for (let i = 1; i <= 25; i++) b.append(event(100 + i, h.clock));
    await b.flush(); // checkpoints at b 10 and 20, each witnessing a at 20
    for (let i = 21; i <= 40; i++) a.append(event(i, h.clock));
    await a.flush(); // checkpoints at a 30 and 40, each witnessing b at 20
    b20 = (await records(h.store, 'b'))[19]!.hash;
  });
  afterEach(async () => {
    await h.close();
  });

  it('every checkpoint witnesses the other chains (newest signed head of each), verifiable with the audit key', async () => {
    const keys = publicKeyMap(await auditKeysJwks(h.store));
    const cp = await verifyCheckpoint(text((await h.store.get(checkpointKey('a', 40)))!.value), keys);
    assert.ok(cp.ok);
    assert.deepEqual(cp.payload.witness, [{ chain: 'b', seq: 20, hash: b20 }]);
    const head = await verifyCheckpoint(text((await h.store.get(headKey('a')))!.value), keys);
    assert.ok(head.ok);
    assert.deepEqual([head.payload.replica, head.payload.seq, head.payload.hash], ['a', 40, cp.payload.hash], 'the head record signs the latest checkpoint\'s head');
    assert.deepEqual(await breaks(h), { a: undefined, b: undefined });
  });

  it('delete a chain: a replica\'s whole chain, checkpoints and head record gone -> chain-deleted', async () => {
    await deleteChain(h.store, 'b');
    assert.deepEqual(await breaks(h), { a: undefined, b: { seq: 1, kind: 'chain-deleted' } });
  });

  it('truncate one: the tail and its checkpoints removed, the head record rewound to match -> truncated-behind-witness', async () => {
    for (let s = 16; s <= 25; s++) await h.store.delete(auditKey('b', s));
    await h.store.delete(checkpointKey('b', 20));
    await h.store.put(headKey('b'), (await h.store.get(checkpointKey('b', 10)))!.value);
    assert.deepEqual(await breaks(h), { a: undefined, b: { seq: 16, kind: 'truncated-behind-witness' } });
  });

  it('restart one at seq 1: the chain replaced by a fresh, well-linked one -> witness-mismatch', async () => {
    await deleteChain(h.store, 'b');
    await forgeChain(h, 'b', 30);
    assert.deepEqual(await breaks(h), { a: undefined, b: { seq: 20, kind: 'witness-mismatch' } });
  });

  it('restart one at seq 1: a writer whose chain was deleted begins a fresh chain with an alert naming the older head', async () => {
    await deleteChain(h.store, 'b');
    const b = await h.open({ replica: 'b', checkpointEvery: 10, batchSize: 10 });
    assert.match(b.chain, /^b\.fork-/, 'never seq 1 of b again');
    assert.ok(h.errors.some((e) => isGatehouseError(e, 'ERR_AUDIT_CHAIN_RESTARTED')));
    b.append(event(999, h.clock));
    await b.flush();
    const fresh = await records(h.store, b.chain);
    assert.deepEqual(fresh.map((r) => r.event['event.action']), ['audit.chain.restarted', 'http.request']);
    const alert = fresh[0]!.event;
    assert.equal(alert['event.kind'], 'alert');
    assert.deepEqual([alert['gatehouse.audit.chain'], alert['gatehouse.audit.seq'], alert['gatehouse.audit.hash']], ['b', 20, b20]);
    assert.match(String(alert['gatehouse.audit.evidence']), /chain a's checkpoint at seq 40/);
    // the alert is signed at once, and the head record moves to the fresh chain
    const keys = publicKeyMap(await auditKeysJwks(h.store));
    const head = await verifyCheckpoint(text((await h.store.get(headKey('b')))!.value), keys);
    assert.ok(head.ok);
    assert.equal(head.payload.replica, b.chain);
    assert.equal(head.payload.witness, undefined, 'head records are signed without the witness list');
    const cp = await verifyCheckpoint(text((await h.store.get(checkpointKey(b.chain, head.payload.seq)))!.value), keys);
    assert.ok(cp.ok);
    assert.deepEqual(cp.payload.witness?.find((w) => w.chain === 'b'), { chain: 'b', seq: 20, hash: b20 }, 'the fresh chain goes on witnessing the old head');
    const r = await breaks(h);
    assert.deepEqual(r.b, { seq: 1, kind: 'chain-deleted' }, 'verify still reports the deletion');
    assert.equal(r[b.chain], undefined);
    // the next restart resumes the fresh chain (its head record), with no second alert
    await b.close();
    const again = await h.open({ replica: 'b', checkpointEvery: 10, batchSize: 10 });
    assert.equal(again.chain, b.chain);
    assert.equal(again.stats.forks, 0);
  });

  it('truncate one: a writer restarting on a truncated chain does not write on top of it', async () => {
    for (let s = 16; s <= 25; s++) await h.store.delete(auditKey('b', s));
    await h.store.delete(checkpointKey('b', 20));
    await h.store.delete(headKey('b'));
    const b = await h.open({ replica: 'b' });
    assert.match(b.chain, /^b\.fork-/);
    b.append(event(999, h.clock));
    await b.flush();
    const alert = (await records(h.store, b.chain))[0]!.event;
    assert.deepEqual([alert['event.action'], alert['gatehouse.audit.chain'], alert['gatehouse.audit.seq']], ['audit.chain.restarted', 'b', 20]);
    assert.equal((await records(h.store, 'b')).length, 15, 'what is left of b is never extended');
  });

  it('plant a key: checkpoints and a head record forged with a key added to the store are neither witnessed nor followed', async () => {
    const { kid, privateKey } = await plantAuditKey(h.store);
    const forged = (replica: string, seq: number): Promise<string> => signCheckpoint({ kid, privateKey }, { replica, seq, hash: 'f'.repeat(64), time: new Date(h.clock.now()).toISOString(), storeRevision: 1 });
    await h.store.put(headKey('b'), await forged('b', 999));
    await h.store.put(headKey('a'), await forged('a.fork-evil', 5));
    const a = await h.open({ replica: 'a', checkpointEvery: 10, batchSize: 10 });
    assert.equal(a.chain, 'a', 'a head record signed with a planted key is not followed');
    for (let i = 0; i < 10; i++) a.append(event(i, h.clock));
    await a.flush();
    const keys = publicKeyMap(await auditKeysJwks(h.store));
    const cp = await verifyCheckpoint(text((await h.store.get(checkpointKey('a', 50)))!.value), new Map([...keys].filter(([k]) => k !== kid)));
    assert.ok(cp.ok);
    assert.deepEqual(cp.payload.witness, [{ chain: 'b', seq: 20, hash: b20 }], 'b at 999 was not witnessed');
  });
});

describe('audit receipts (the off-box anchor)', () => {
  let h: AuditHarness;
  let receipt: AuditReceipt;
  beforeEach(async () => {
    h = await harness();
    const w = await h.open({ checkpointEvery: 100, batchSize: 50 });
    for (let i = 1; i <= 250; i++) w.append(event(i, h.clock));
    await w.flush(); // checkpoints at 100 and 200; 50 not yet checkpointed
    const r = await verifyAudit(h.store, { now: () => h.clock.now() });
    assert.equal(r.ok, true);
    receipt = parseReceipt(formatReceipt(r.receipt), 'receipt.json');
  });
  afterEach(async () => {
    await h.close();
  });

  it('records each chain\'s seq and hash, its newest checkpoint and the keys it was checked with', async () => {
    const head = (await records(h.store, 'r1'))[249]!;
    assert.equal(receipt.format, 'gatehouse-audit-receipt');
    assert.equal(receipt.version, 1);
    assert.equal(receipt.createdAt, new Date(h.clock.now()).toISOString());
    assert.deepEqual(receipt.keys.map((k) => k.kid), (await auditKeysJwks(h.store)).keys.map((k) => k.kid));
    assert.deepEqual(receipt.chains.map((c) => ({ chain: c.chain, seq: c.seq, hash: c.hash, verified: c.verified, cp: c.checkpoint?.seq })), [{ chain: 'r1', seq: 250, hash: head.hash, verified: true, cp: 200 }]);
    assert.throws(() => parseReceipt(JSON.stringify({ ...receipt, version: 2 }), 'r.json'), (e: unknown) => isGatehouseError(e, 'ERR_AUDIT_RECEIPT_INVALID'));
    assert.throws(() => parseReceipt('{"format":"x"}', 'r.json'), (e: unknown) => isGatehouseError(e, 'ERR_AUDIT_RECEIPT_INVALID'));
  });

  it('delete a chain: the only replica\'s chain, checkpoints and head record all gone -> chain-deleted (only the receipt can tell)', async () => {
    await deleteChain(h.store, 'r1');
    assert.deepEqual(await breaks(h), {}, 'nothing left in the store to contradict');
    const r = await verifyAudit(h.store, { receipt });
    assert.deepEqual(r.chains.map((c) => [c.replica, c.break?.seq, c.break?.kind]), [['r1', 1, 'chain-deleted']]);
    assert.deepEqual(r.receipt.chains.map((c) => [c.chain, c.seq, c.verified]), [['r1', 250, false]], 'the anchor is carried over, never dropped');
  });

  it('truncate one: records after the last checkpoint removed -> truncated-behind-receipt', async () => {
    for (let s = 231; s <= 250; s++) await h.store.delete(auditKey('r1', s));
    assert.equal((await verifyAudit(h.store)).ok, true, 'without the receipt this cannot be proven');
    assert.deepEqual(await breaks(h, { receipt }), { r1: { seq: 231, kind: 'truncated-behind-receipt' } });
  });

  it('restart one at seq 1: the chain replaced by a fresh one, no trace of the old -> receipt-mismatch', async () => {
    await deleteChain(h.store, 'r1');
    await forgeChain(h, 'r1', 300);
    assert.deepEqual(await breaks(h, { receipt }), { r1: { seq: 200, kind: 'receipt-mismatch' } });
  });

  it('checkpoints removed (records left): the receipt\'s checkpoint is gone -> checkpoint-removed', async () => {
    await h.store.delete({ prefix: `${CHECKPOINT_PREFIX}r1/` });
    await h.store.delete({ prefix: AUDIT_HEAD_PREFIX });
    assert.deepEqual(await breaks(h, { receipt }), { r1: { seq: 200, kind: 'checkpoint-removed' } });
  });

  it('plant a key: a chain rewritten and re-signed with a key added to the store fails against the receipt\'s keys', async () => {
    const { kid, privateKey } = await plantAuditKey(h.store);
    // everything from seq 1 on rewritten, every checkpoint and the head record re-signed
    await deleteChain(h.store, 'r1');
    await forgeChain(h, 'r1', 300);
    for (const seq of [100, 200, 300]) {
      const rec = decodeRecord((await h.store.get(auditKey('r1', seq)))!)!;
      const jws = await signCheckpoint({ kid, privateKey }, { replica: 'r1', seq, hash: rec.hash, time: new Date(h.clock.now()).toISOString(), storeRevision: 1 });
      await h.store.put(checkpointKey('r1', seq), jws);
      await h.store.put(headKey('r1'), jws);
    }
    assert.equal((await verifyAudit(h.store)).ok, true, 'keys from the store itself: fooled');
    const r = await verifyAudit(h.store, { receipt });
    assert.equal(r.keysFrom, 'receipt');
    assert.deepEqual(r.untrustedKeys, [kid]);
    assert.deepEqual(r.chains.map((c) => [c.replica, c.break?.seq, c.break?.kind]), [['r1', 100, 'bad-checkpoint-signature']]);
    assert.deepEqual(r.receipt.keys.map((k) => k.kid), receipt.keys.map((k) => k.kid), 'the planted key never enters the next receipt');
  });

  it('a chain that only grew verifies against the receipt, and the next receipt moves on', async () => {
    const w = await h.open({ checkpointEvery: 100, batchSize: 50 });
    for (let i = 251; i <= 320; i++) w.append(event(i, h.clock));
    await w.flush();
    const r = await verifyAudit(h.store, { receipt });
    assert.equal(r.ok, true);
    assert.deepEqual(r.receipt.chains.map((c) => [c.chain, c.seq, c.checkpoint?.seq]), [['r1', 320, 300]]);
  });
});

describe('audit writer: a chain starting while an older chain of the replica exists', () => {
  let h: AuditHarness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('restart one at seq 1: the only replica\'s records and checkpoints deleted, its head record left -> alert naming the older head', async () => {
    const w = await h.open();
    for (let i = 0; i < 30; i++) w.append(event(i, h.clock));
    await w.close();
    const last = (await records(h.store, 'r1'))[29]!;
    await deleteChain(h.store, 'r1', { head: false });
    const again = await h.open();
    again.append(event(99, h.clock));
    await again.flush();
    const alert = (await records(h.store, again.chain))[0]!.event;
    assert.deepEqual([alert['event.action'], alert['gatehouse.audit.chain'], alert['gatehouse.audit.seq'], alert['gatehouse.audit.hash']], ['audit.chain.restarted', 'r1', 30, last.hash]);
    assert.match(String(alert['gatehouse.audit.evidence']), /head record/);
  });

  it('restart one at seq 1: an empty chain while a fork of the replica exists -> alert naming the fork\'s head', async () => {
    await forgeChain(h, 'r1.fork-old', 3);
    const head = (await records(h.store, 'r1.fork-old'))[2]!;
    const w = await h.open();
    w.append(event(1, h.clock));
    await w.flush();
    const alert = (await records(h.store, w.chain))[0]!.event;
    assert.deepEqual([alert['event.action'], alert['gatehouse.audit.chain'], alert['gatehouse.audit.seq'], alert['gatehouse.audit.hash']], ['audit.chain.restarted', 'r1.fork-old', 3, head.hash]);
  });

  it('a new replica, and a replica restarting on its intact chain, start without an alert', async () => {
    const w = await h.open();
    w.append(event(1, h.clock));
    await w.close();
    const again = await h.open();
    again.append(event(2, h.clock));
    await again.flush();
    assert.equal(again.chain, 'r1');
    assert.deepEqual((await records(h.store, 'r1')).map((r) => r.event['event.action']), ['http.request', 'http.request']);
    assert.equal(h.errors.length, 0);
  });
});

describe('gatehouse audit verify --receipt / --write-receipt (CLI)', () => {
  it('writes a receipt; a later run given it fails with ERR_AUDIT_CHAIN_BROKEN once the chain is deleted; a bad receipt is ERR_AUDIT_RECEIPT_INVALID', async () => {
    const cli = await verifyCli(30);
    const first = path.join(cli.dir, 'receipt-1.json');
    const ok = await cli.run('--write-receipt', first);
    assert.equal(ok.code, 0, ok.err.join('\n'));
    const written = parseReceipt(await readFile(first, 'utf8'), first);
    assert.deepEqual(written.chains.map((c) => [c.chain, c.seq]), [['r1', 30]]);
    const again = await cli.run('--receipt', first, '--write-receipt', first);
    assert.equal(again.code, 0, again.err.join('\n'));
    assert.match(again.err.join('\n'), /checked against the audit keys recorded in/);

    await cli.tamper((s) => deleteChain(s, 'r1'));
    const plain = await cli.run();
    assert.equal(plain.code, 0, 'nothing in the store says r1 existed');
    const bad = await cli.run('--receipt', first);
    assert.equal(bad.code, 1);
    assert.match(bad.err.join('\n'), /gatehouse: ERR_AUDIT_CHAIN_BROKEN: r1 seq 1: chain-deleted: the chain has no record, but the earlier receipt/);

    const junk = path.join(cli.dir, 'junk.json');
    await writeFile(junk, '{"format":"gatehouse-audit-receipt","version":9}');
    const refused = await cli.run('--receipt', junk);
    assert.equal(refused.code, 1);
    assert.match(refused.err.join('\n'), /ERR_AUDIT_RECEIPT_INVALID: .*junk\.json: version 9 is not supported/);
    await cli.remove();
  });
});
