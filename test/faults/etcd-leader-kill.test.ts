// Fault test: SIGKILL the leader of a 3-member etcd cluster in the middle of a write stream.
// Asserts that no acknowledged write is lost, that a single write stalls for at most
// STALL_BOUND_MS, and that watches see every acknowledged write exactly once, in order —
// including a watch whose only endpoint is the killed leader (it resumes after the restart) —
// and that a compare-and-swap writer never sees a conflict caused by its own retry.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isGatehouseError } from '../../src/errors.js';
import { text } from '../../src/store/bytes.js';
import { openEtcdStore } from '../../src/store/etcd/index.js';
import type { Store, WatchEvent } from '../../src/store/types.js';
import { isSkip, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';

/**
 * Election timeout 500 ms: followers notice the dead leader after 0.5–1 s and elect a new one
 * within a few heartbeats; a write in flight meanwhile waits out one short attempt deadline
 * (timeoutMs/4 = 500 ms) before moving on. ~1.5 s is the expected worst case; 5 s leaves room
 * for a loaded 2-core CI machine without hiding a real regression (etcd3's own circuit
 * breaker would add 5 s).
 */
const STALL_BOUND_MS = 5000;

interface Ack {
  key: string;
  value: string;
  revision: number;
  latencyMs: number;
}

const started = await startEtcdCluster({ members: 3 });
const skip = isSkip(started) ? started.skip : false;

describe('etcd: SIGKILL of the leader under a write stream', { skip }, () => {
  let cluster: EtcdCluster;
  const stores: Store[] = [];

  before(() => {
    cluster = started as EtcdCluster;
  });

  after(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    await cluster?.stop();
  });

  it('loses no acknowledged write, stalls briefly, and watches see each write once in order', async () => {
    const prefix = `/faults/${randomBytes(4).toString('hex')}/`;
    const leader = await cluster.leader();
    const open = async (endpoints: string[]): Promise<Store> => {
      const s = await openEtcdStore({ kind: 'etcd', endpoints });
      stores.push(s);
      return s;
    };
    const writer = await open(cluster.endpoints);
    const watcher = await open(cluster.endpoints);
    // Connected only to the leader: its stream must break and later resume without gaps.
    const leaderOnly = await open([leader.clientUrl]);

    const seen: WatchEvent[] = [];
    const seenLeaderOnly: WatchEvent[] = [];
    const watchErrors: Error[] = [];
    const from = (await writer.revision()) + 1;
    await watcher.watch({ prefix }, (e) => seen.push(e), { fromRevision: from, onError: (e) => watchErrors.push(e) });
    await leaderOnly.watch({ prefix }, (e) => seenLeaderOnly.push(e), { fromRevision: from, onError: (e) => watchErrors.push(e) });

    const acks: Ack[] = [];
    const callFailures: string[] = [];
    let stop = false;
    const writeLoop = async (id: number): Promise<void> => {
      for (let n = 0; !stop; n++) {
        const key = `${prefix}w${id}/${String(n).padStart(6, '0')}`;
        const value = `${id}-${n}-${randomBytes(6).toString('hex')}`;
        const t0 = performance.now();
        // A caller retries a failed plain put (it is idempotent); the stall counts from the first try.
        for (;;) {
          try {
            const { revision } = await writer.put(key, value);
            acks.push({ key, value, revision, latencyMs: performance.now() - t0 });
            break;
          } catch (err) {
            callFailures.push(err instanceof Error ? `${(err as { code?: string }).code ?? ''} ${err.message}` : String(err));
            if (performance.now() - t0 > 20_000) throw err;
          }
        }
      }
    };

    // A compare-and-swap counter with a single writer: a conflict can only be self-inflicted
    // (a retried CAS whose first attempt applied), so there must be none. An ambiguous failure
    // surfaces as ERR_STORE_UNAVAILABLE {details.ambiguous} and may or may not have applied.
    const counter = `${prefix}counter`;
    await writer.put(counter, '0');
    const cas = { acked: 0, ambiguous: 0, unapplied: 0, conflicts: 0, maxStallMs: 0 };
    const casLoop = async (): Promise<void> => {
      while (!stop) {
        const kv = await writer.get(counter).catch(() => undefined);
        if (kv === undefined) continue;
        const t0 = performance.now();
        try {
          await writer.put(counter, String(Number(text(kv.value)) + 1), { ifModRevision: kv.modRevision });
          cas.acked++;
          cas.maxStallMs = Math.max(cas.maxStallMs, performance.now() - t0);
        } catch (err) {
          if (isGatehouseError(err, 'ERR_STORE_CONFLICT')) cas.conflicts++;
          else if (isGatehouseError(err, 'ERR_STORE_UNAVAILABLE') && err.details?.ambiguous === true) cas.ambiguous++;
          else if (isGatehouseError(err, 'ERR_STORE_UNAVAILABLE')) cas.unapplied++;
          else throw err;
        }
      }
    };

    const writers = [writeLoop(1), writeLoop(2), casLoop()];
    await sleep(800);
    const ackedBeforeKill = acks.length;
    const killedAt = performance.now();
    await cluster.kill(leader, 'SIGKILL');
    const newLeader = await cluster.leader();
    const electedAfterMs = performance.now() - killedAt;
    await sleep(2000);
    await cluster.restart(leader);
    await sleep(800);
    stop = true;
    await Promise.all(writers);

    const latencies = acks.map((a) => a.latencyMs).sort((a, b) => a - b);
    const maxStallMs = latencies[latencies.length - 1] ?? 0;
    const figures = {
      test: 'etcd-leader-kill',
      acked: acks.length,
      ackedBeforeKill,
      ackedAfterKill: acks.length - ackedBeforeKill,
      electedAfterMs: Math.round(electedAfterMs),
      newLeaderDiffers: newLeader.name !== leader.name,
      maxStallMs: Math.round(maxStallMs),
      p50Ms: round1(latencies[Math.floor(latencies.length * 0.5)] ?? 0),
      p99Ms: round1(latencies[Math.floor(latencies.length * 0.99)] ?? 0),
      failedCalls: callFailures.length,
      cas: { ...cas, maxStallMs: Math.round(cas.maxStallMs) },
    };
    console.log(JSON.stringify(figures));
    if (callFailures.length > 0) console.log(`# store calls that failed (the caller retried): ${JSON.stringify(callFailures.slice(0, 5))}`);

    assert.ok(acks.length > ackedBeforeKill, 'writes continued after the kill');
    assert.ok(maxStallMs < STALL_BOUND_MS, `longest write stall ${Math.round(maxStallMs)} ms >= ${STALL_BOUND_MS} ms`);

    // Every acknowledged write is readable with its value (a fresh client, surviving cluster).
    const reader = await open(cluster.endpoints);
    const { kvs } = await reader.range({ prefix });
    const stored = new Map(kvs.map((kv) => [text(kv.key), kv]));
    for (const a of acks) {
      const kv = stored.get(a.key);
      assert.ok(kv !== undefined, `acknowledged ${a.key} @${a.revision} is missing`);
      assert.equal(text(kv.value), a.value, `${a.key} holds another value`);
      // A put retried after an ambiguous failure may have applied twice (same value, later revision).
      assert.ok(kv.modRevision >= a.revision, `${a.key} went back in time`);
    }

    const final = Number(text((await reader.get(counter))!.value));
    assert.equal(cas.conflicts, 0, 'a lone CAS writer never conflicts with itself');
    assert.ok(final >= cas.acked && final <= cas.acked + cas.ambiguous, `counter ${final}, acked ${cas.acked}, ambiguous ${cas.ambiguous}`);

    const lastAck = Math.max(...acks.map((a) => a.revision));
    for (const [name, events] of [['watch', seen], ['leader-only watch', seenLeaderOnly]] as const) {
      await waitUntil(() => events.length > 0 && events[events.length - 1]!.kv.modRevision >= lastAck, 10_000, `${name} to catch up to ${lastAck}`);
      // In order, nothing twice.
      const pairs = new Set<string>();
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        if (i > 0) assert.ok(e.kv.modRevision >= events[i - 1]!.kv.modRevision, `${name}: revision went backwards at ${i}`);
        const id = `${e.kv.modRevision} ${text(e.kv.key)}`;
        assert.ok(!pairs.has(id), `${name}: delivered twice: ${id}`);
        pairs.add(id);
      }
      // Each acknowledged write, exactly once, with its value.
      const byPair = new Map(events.map((e) => [`${e.kv.modRevision} ${text(e.kv.key)}`, e]));
      for (const a of acks) {
        const e = byPair.get(`${a.revision} ${a.key}`);
        assert.ok(e !== undefined, `${name}: missed ${a.key} @${a.revision}`);
        assert.equal(text(e.kv.value), a.value);
      }
    }
    assert.deepEqual(watchErrors, []);
  });

  it('without quorum a write fails within its budget as retryable ERR_STORE_UNAVAILABLE, then recovers', async () => {
    const prefix = `/faults/${randomBytes(4).toString('hex')}/`;
    const timeoutMs = 1000;
    const store = await openEtcdStore({ kind: 'etcd', endpoints: cluster.endpoints, timeoutMs });
    stores.push(store);
    await store.put(`${prefix}before`, 'x');
    const seen: WatchEvent[] = [];
    await store.watch({ prefix }, (e) => seen.push(e));

    const victims = cluster.members.filter((m) => m.running).slice(0, 2);
    for (const m of victims) await cluster.kill(m, 'SIGKILL');
    const t0 = performance.now();
    await assert.rejects(store.put(`${prefix}lost`, 'x'), (err: unknown) => {
      assert.ok(isGatehouseError(err, 'ERR_STORE_UNAVAILABLE'), String(err));
      assert.equal(err.retryable, true);
      return true;
    });
    const failedAfterMs = performance.now() - t0;
    // The retry loop is bounded by the budget (plus at most one backoff pause and scheduling).
    assert.ok(failedAfterMs < timeoutMs + 500, `failed after ${Math.round(failedAfterMs)} ms`);
    assert.equal(await store.ping(), false);

    for (const m of victims) await cluster.restart(m);
    const t1 = performance.now();
    let rev = 0;
    while (rev === 0) {
      rev = await store.put(`${prefix}after`, 'y').then((r) => r.revision, () => 0);
      assert.ok(performance.now() - t1 < 15_000, 'the cluster came back');
    }
    console.log(JSON.stringify({ test: 'etcd-no-quorum', failedAfterMs: Math.round(failedAfterMs), recoveredAfterRestartMs: Math.round(performance.now() - t1) }));
    // The watch outlived the outage and resumed without a gap.
    await waitUntil(() => seen.some((e) => e.kv.modRevision === rev), 10_000, 'the watch to resume');
    assert.equal(text(seen[seen.length - 1]!.kv.key), `${prefix}after`);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
