// audit verify against a chain tampered with in the store: every kind of break is found and named.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { text } from '../../src/store/index.js';
import { CHECKPOINT_PREFIX, auditKey, headKey, chainHash, canonicalJson, checkpointKey, signCheckpoint, verifyAudit, type ChainRecord, type BreakKind } from '../../src/audit/index.js';
import { event, harness, plantAuditKey, verifyCli, type AuditHarness } from './helpers.js';

async function get(h: AuditHarness, seq: number): Promise<ChainRecord> {
  return JSON.parse(text((await h.store.get(auditKey('r1', seq)))!.value)) as ChainRecord;
}
async function put(h: AuditHarness, seq: number, r: ChainRecord): Promise<void> {
  await h.store.put(auditKey('r1', seq), JSON.stringify(r));
}
function rehash(r: ChainRecord): ChainRecord {
  return { ...r, hash: chainHash(r.prev, canonicalJson(r.event)) };
}

describe('audit verify', () => {
  let h: AuditHarness;
  const LAST = 305;
  beforeEach(async () => {
    h = await harness();
    const w = await h.open({ checkpointEvery: 100, batchSize: 50 });
    for (let i = 1; i <= 300; i++) w.append(event(i, h.clock));
    await w.flush();
    // five more that no checkpoint covers yet
    for (let i = 301; i <= LAST; i++) w.append(event(i, h.clock));
    await w.flush();
  });
  afterEach(async () => {
    await h.close();
  });

  async function firstBreak(): Promise<{ seq: number; kind: BreakKind } | undefined> {
    const r = await verifyAudit(h.store, { pageSize: 64 });
    const b = r.chains.find((c) => c.replica === 'r1')?.break;
    return b === undefined ? undefined : { seq: b.seq, kind: b.kind };
  }

  it('an untouched chain verifies; events after the last checkpoint are reported as not yet checkpointed', async () => {
    const r = await verifyAudit(h.store, { pageSize: 64 });
    assert.equal(r.ok, true);
    assert.equal(r.events, LAST);
    assert.deepEqual(r.chains.map((c) => ({ replica: c.replica, lastSeq: c.lastSeq, checkpoints: c.checkpoints, lastCheckpointSeq: c.lastCheckpointSeq, uncheckpointed: c.uncheckpointed })), [
      { replica: 'r1', lastSeq: LAST, checkpoints: 3, lastCheckpointSeq: 300, uncheckpointed: 5 },
    ]);
  });

  it('an edited event (hash left as it was)', async () => {
    const r = await get(h, 150);
    r.event['user.id'] = 'mallory';
    await put(h, 150, r);
    assert.deepEqual(await firstBreak(), { seq: 150, kind: 'edited' });
  });

  it('an edited event whose hash was recomputed', async () => {
    const r = await get(h, 150);
    r.event['event.outcome'] = r.event['event.outcome'] === 'success' ? 'failure' : 'success';
    await put(h, 150, rehash(r));
    assert.deepEqual(await firstBreak(), { seq: 150, kind: 'edited' });
  });

  it('a deleted event', async () => {
    await h.store.delete(auditKey('r1', 150));
    assert.deepEqual(await firstBreak(), { seq: 150, kind: 'deleted' });
  });

  it('a deleted event with the rest renumbered', async () => {
    for (let s = 151; s <= LAST; s++) await put(h, s - 1, await get(h, s));
    await h.store.delete(auditKey('r1', LAST));
    assert.deepEqual(await firstBreak(), { seq: 150, kind: 'deleted' });
  });

  it('two events swapped', async () => {
    const a = await get(h, 150);
    const b = await get(h, 151);
    await put(h, 150, b);
    await put(h, 151, a);
    assert.deepEqual(await firstBreak(), { seq: 150, kind: 'reordered' });
  });

  it('two events swapped with their seq fields rewritten to match', async () => {
    const a = await get(h, 150);
    const b = await get(h, 151);
    await put(h, 150, { ...b, seq: 150 });
    await put(h, 151, { ...a, seq: 151 });
    assert.deepEqual(await firstBreak(), { seq: 150, kind: 'reordered' });
  });

  it('an event inserted (correctly linked, the rest shifted up)', async () => {
    for (let s = LAST; s >= 150; s--) await put(h, s + 1, await get(h, s));
    const before = await get(h, 149);
    await put(h, 150, rehash({ seq: 150, prev: before.hash, hash: '', event: event(9999, h.clock, { 'user.id': 'ghost' }) }));
    assert.deepEqual(await firstBreak(), { seq: 150, kind: 'inserted' });
  });

  it('the tail truncated behind the last checkpoint', async () => {
    for (let s = 251; s <= LAST; s++) await h.store.delete(auditKey('r1', s));
    assert.deepEqual(await firstBreak(), { seq: 251, kind: 'truncated-behind-checkpoint' });
  });

  it('a tail truncation after the last checkpoint cannot be proven (and verify says so)', async () => {
    for (let s = 303; s <= LAST; s++) await h.store.delete(auditKey('r1', s));
    const r = await verifyAudit(h.store);
    assert.equal(r.ok, true);
    assert.equal(r.chains[0]!.uncheckpointed, 2);
  });

  it('the whole chain rewritten with recomputed hashes does not match its checkpoint', async () => {
    let prev = (await get(h, 49)).hash;
    for (let s = 50; s <= LAST; s++) {
      const r = await get(h, s);
      if (s === 50) r.event['user.id'] = 'mallory';
      const next = rehash({ ...r, prev });
      await put(h, s, next);
      prev = next.hash;
    }
    assert.deepEqual(await firstBreak(), { seq: 100, kind: 'checkpoint-mismatch' });
  });

  it('a checkpoint whose signature was changed', async () => {
    const kv = (await h.store.get(checkpointKey('r1', 200)))!;
    const jws = text(kv.value);
    await h.store.put(checkpointKey('r1', 200), jws.slice(0, -4) + (jws.endsWith('AAAA') ? 'BBBB' : 'AAAA'));
    assert.deepEqual(await firstBreak(), { seq: 200, kind: 'bad-checkpoint-signature' });
  });

  it('a rewrite re-signed with a key planted in the store passes only without pinned keys', async () => {
    const pinned = await (await import('../../src/audit/index.js')).auditKeysJwks(h.store);
    const { kid, privateKey } = await plantAuditKey(h.store);
    const r = await get(h, 100);
    r.event['user.id'] = 'mallory';
    await put(h, 100, rehash(r));
    // re-link 101.. and re-sign every checkpoint
    let prev = rehash(r).hash;
    for (let s = 101; s <= LAST; s++) {
      const next = rehash({ ...(await get(h, s)), prev });
      await put(h, s, next);
      prev = next.hash;
    }
    for (const seq of [100, 200, 300]) {
      const rec = await get(h, seq);
      const jws = await signCheckpoint({ kid, privateKey }, { replica: 'r1', seq, hash: rec.hash, time: new Date(h.clock.now()).toISOString(), storeRevision: 1 });
      await h.store.put(checkpointKey('r1', seq), jws);
      // the head record too: it still holds the real checkpoint of seq 300
      if (seq === 300) await h.store.put(headKey('r1'), jws);
    }
    assert.equal((await verifyAudit(h.store)).ok, true, 'keys from the store itself: fooled');
    const pinnedReport = await verifyAudit(h.store, { keys: pinned });
    assert.deepEqual(pinnedReport.chains.map((c) => c.break && { seq: c.break.seq, kind: c.break.kind }), [{ seq: 100, kind: 'bad-checkpoint-signature' }]);
    assert.equal((await h.store.range({ prefix: CHECKPOINT_PREFIX })).kvs.length, 3);
  });
});

describe('gatehouse audit verify (CLI)', () => {
  it('exits 1 with ERR_AUDIT_CHAIN_BROKEN naming replica, seq and kind; 0 when intact', async () => {
    const cli = await verifyCli(30);
    const ok = await cli.run();
    assert.equal(ok.code, 0, ok.err.join('\n'));
    assert.match(ok.out.join('\n'), /^ok r1: 30 event\(s\), seq 1\.\.30, 3 checkpoint\(s\), last at seq 30$/m);
    assert.match(ok.err.join('\n'), /1 chain\(s\), 30 event\(s\) verified in [\d.]+ s: ok/);
    await cli.tamper((s) => s.delete(auditKey('r1', 17)).then(() => undefined));
    const bad = await cli.run();
    assert.equal(bad.code, 1);
    assert.match(bad.err.join('\n'), /gatehouse: ERR_AUDIT_CHAIN_BROKEN: r1 seq 17: deleted: seq 17 is missing/);
    await cli.remove();
  });
});
