// The short version of `npm run bench:revocation`: a 3-member etcd cluster, nats-server with
// JetStream, two gateway processes with traffic through both; revocations through replica A's
// admin API are refused by replica B, with the bus, with NATS stopped and while NATS restarts;
// none is lost and nothing is allowed after the first refusal.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runRevocationBench } from '../../bench/lib/revocation.js';
import { findProgram } from '../helpers/programs.js';

const skip = findProgram('etcd') === undefined ? 'etcd is not installed' : findProgram('nats-server') === undefined ? 'nats-server is not installed' : false;

describe('revocation across two gateway processes', { skip, timeout: 180_000 }, () => {
  it('B refuses what is revoked through A: bus, store only, NATS restarting; nothing lost', async () => {
    const r = await runRevocationBench({ withBus: 15, withoutBus: 3, duringRestart: 6, afterMs: 30, trafficClients: 1 });
    if ('skip' in r) return;
    for (const p of r.phases) console.log(JSON.stringify({ test: 'revocation-processes', ...p }));
    assert.equal(r.lost, 0, 'every revoked identity is refused by both replicas at the end');
    for (const p of r.phases) {
      assert.equal(p.notRefused, 0, `${p.phase}: every revocation reached B`);
      assert.equal(p.allowedAfterRefusal, 0, `${p.phase}: nothing allowed after the first refusal`);
    }
    const storeOnly = r.phases.find((p) => p.phase === 'store-only')!;
    assert.ok(storeOnly.maxMs < 5_000, `store-only propagation ${storeOnly.maxMs} ms`);
    assert.ok(r.backgroundRequests.ok > 0 && r.backgroundRequests.failed <= r.backgroundRequests.ok / 100, 'background traffic flowed through both replicas');
  });
});
