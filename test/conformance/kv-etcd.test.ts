// The shared KV conformance suite against a real 3-member etcd cluster (one for the whole file).
// Each harness opens fresh clients on that cluster; time passes for real (etcd's lease clock
// is the leader's wall clock), so advance() sleeps.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { isGatehouseError } from '../../src/errors.js';
import { openEtcdStore } from '../../src/store/etcd/index.js';
import type { Store } from '../../src/store/types.js';
import { isSkip, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { freePort } from '../helpers/programs.js';
import { runKvConformance, type KvHarness } from './kv.js';

const started = await startEtcdCluster({ members: 3 });
const cluster: EtcdCluster | undefined = isSkip(started) ? undefined : started;
after(async () => {
  await cluster?.stop();
});

/**
 * etcd accepts 1 s leases here (its floor is 1.5 election timeouts = 0.75 s), but the suite's
 * keepAlive case needs TTL/2 + grace to stay inside a renewed TTL, and etcd's leader checks
 * for expired leases only every 500 ms: 2 s leaves room for that.
 */
const MIN_LEASE_TTL_SECONDS = 2;
/** etcd's expiry checker runs every 500 ms, then the revoke goes through raft. */
const EXPIRY_GRACE_MS = 500;

runKvConformance('etcd (3 members)', async (): Promise<KvHarness | { skip: string }> => {
  if (cluster === undefined) return { skip: isSkip(started) ? started.skip : 'no etcd cluster' };
  const stores: Store[] = [];
  return {
    async open() {
      const store = await openEtcdStore({ kind: 'etcd', endpoints: cluster.endpoints });
      stores.push(store);
      return store;
    },
    async advance(ms: number) {
      await new Promise((r) => setTimeout(r, ms));
    },
    minLeaseTtlSeconds: MIN_LEASE_TTL_SECONDS,
    expiryGraceMs: EXPIRY_GRACE_MS,
    async close() {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    },
  };
});

// What the shared suite leaves to each implementation: closing, and an unreachable cluster.
describe('etcd store specifics', { skip: cluster === undefined ? 'no etcd cluster' : false }, () => {
  it('close() ends watches with ERR_STORE_CLOSED and later calls reject with it', async () => {
    const store = await openEtcdStore({ kind: 'etcd', endpoints: cluster!.endpoints });
    const errors: Error[] = [];
    await store.watch({ prefix: '/specifics/' }, () => undefined, { onError: (e) => errors.push(e) });
    await store.close();
    assert.equal(errors.length, 1);
    assert.ok(isGatehouseError(errors[0], 'ERR_STORE_CLOSED'));
    for (const call of [() => store.get('/k'), () => store.put('/k', 'v'), () => store.revision(), () => store.ping(), () => store.grant(5)]) {
      await assert.rejects(call(), (err: unknown) => isGatehouseError(err, 'ERR_STORE_CLOSED'));
    }
    await store.close();
  });

  it('an unreachable cluster: ping() is false and calls fail retryable within timeoutMs', async () => {
    const store = await openEtcdStore({ kind: 'etcd', endpoints: [`http://127.0.0.1:${await freePort()}`], timeoutMs: 500 });
    try {
      const t0 = performance.now();
      assert.equal(await store.ping(), false);
      await assert.rejects(store.get('/k'), (err: unknown) => isGatehouseError(err, 'ERR_STORE_UNAVAILABLE') && err.retryable);
      await assert.rejects(store.watch({ key: '/k' }, () => undefined), (err: unknown) => isGatehouseError(err, 'ERR_STORE_UNAVAILABLE'));
      assert.ok(performance.now() - t0 < 3 * 500 + 1000);
    } finally {
      await store.close();
    }
  });

  it('lease ids beyond 2^53 survive as strings; bad ids are refused locally', async () => {
    const store = await openEtcdStore({ kind: 'etcd', endpoints: cluster!.endpoints });
    try {
      const lease = await store.grant(30);
      assert.match(lease.id, /^[1-9][0-9]*$/);
      await store.put('/specifics/leased', 'x', { lease: lease.id });
      assert.equal((await store.get('/specifics/leased'))!.lease, lease.id);
      assert.equal((await store.keepAlive(lease.id)).id, lease.id);
      await store.revoke(lease.id);
      for (const bad of ['', '-1', '1.5', 'abc', '99999999999999999999']) {
        await assert.rejects(store.keepAlive(bad), (err: unknown) => isGatehouseError(err, 'ERR_STORE_BAD_ARGUMENT'));
      }
    } finally {
      await store.close();
    }
  });
});
