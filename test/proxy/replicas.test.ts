// Two gateway replicas on one real etcd cluster: a policy applied through one and a
// certificate revoked through the other reach both at once, through their store watches.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import path from 'node:path';
import { makeFixture, disposeFixture, startGateway, call, PAYMENTS_POLICY, REPORTS_POLICY, type Fixture, type RunningGateway } from './fixture.js';
import { isSkip, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/programs.js';
import { applyPolicySources } from '../../src/authorize/index.js';
import { revokeCertificate } from '../../src/pki/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { text } from '../../src/store/index.js';

const started = await startEtcdCluster({ members: 1 });
const skip = isSkip(started) ? started.skip : false;

describe('two replicas on one etcd cluster', { skip }, () => {
  let cluster: EtcdCluster;
  let f: Fixture;
  let a: RunningGateway;
  let b: RunningGateway;

  before(async () => {
    cluster = started as EtcdCluster;
    f = await makeFixture();
    a = await startGateway(f, { endpoints: cluster.endpoints, replicaId: 'replica-a' });
    b = await startGateway(f, { endpoints: cluster.endpoints, replicaId: 'replica-b' });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    if (f) await disposeFixture(f);
    await cluster?.stop();
  });

  it('both replicas serve, each auditing under its own prefix', async () => {
    for (const gw of [a, b]) assert.equal((await call(gw.port, f.ca, { cert: f.certs.web, path: '/v1/charges/1' })).status, 200);
    await a.app.audit.flush();
    await b.app.audit.flush();
    for (const id of ['replica-a', 'replica-b']) {
      const r = await a.store.range({ prefix: `/gatehouse/audit/${id}/` });
      assert.ok(r.kvs.some((kv) => text(kv.value).includes('"event.action":"proxy.request"')), `no events under ${id}`);
    }
  });

  it('a policy applied through replica A changes the verdict on replica B', async () => {
    const post = () => call(b.port, f.ca, { cert: f.certs.web, method: 'POST', path: '/v1/charges', body: '{}' });
    assert.equal((await post()).status, 200);
    const file = (n: string) => path.join(f.dir, 'policies', n);
    await applyPolicySources(a.store, [
      { file: file('payments.yaml'), text: PAYMENTS_POLICY.replace('methods: [POST]', 'methods: [PUT]') },
      { file: file('reports.yaml'), text: REPORTS_POLICY },
    ]);
    await waitFor('replica B reloads', async () => ((await post()).status === 403 ? true : undefined), 5_000, 10);
    assert.equal(a.app.policy.version, b.app.policy.version, 'both replicas report the same policy version');
  });

  it('a certificate revoked through replica B is refused by replica A, and its open connection closed', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.equal((await call(a.port, f.ca, { cert: f.certs.revoked, path: '/v1/charges/1', agent })).status, 200);
      const socket = Object.values(agent.freeSockets).flat()[0];
      assert.ok(socket, 'keep-alive connection to replica A');
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const t0 = performance.now();
      await revokeCertificate(b.store, { serial: f.certs.revoked.serial, notAfter: f.certs.revoked.notAfter, clock: systemClock });
      await closed;
      console.log(JSON.stringify({ test: 'revoke-across-replicas-via-etcd-watch', connectionClosedAfterMs: +(performance.now() - t0).toFixed(1) }));
      await assert.rejects(call(a.port, f.ca, { cert: f.certs.revoked, path: '/v1/charges/1' }));
      await assert.rejects(call(b.port, f.ca, { cert: f.certs.revoked, path: '/v1/charges/1' }));
    } finally {
      agent.destroy();
    }
  });
});
