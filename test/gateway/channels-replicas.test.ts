// An ended identity ends every channel on every replica: a WebSocket held on replica A is
// closed when the person logs out through replica B, when the user is disabled, and when a
// service's certificate is revoked through B (two replicas on one real etcd and one real NATS).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket, type ClientOptions } from 'ws';
import { disposeFixture, type Fixture } from '../proxy/fixture.js';
import { isSkip, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { startNats, type NatsServer } from '../helpers/nats.js';
import { issueCertificate, type IssuedCertificate } from '../../src/pki/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { disableUser } from '../../src/authenticate/index.js';
import { revoke } from '../../src/revocation/index.js';
import { makeRevocationFixture, startReplica, createSession, humanCall, HUMAN_HOST, HUMAN_ORIGIN, type Replica } from '../revocation/fixture.js';
import { within } from './fixture.js';

const etcdStarted = await startEtcdCluster({ members: 1 });
const natsStarted = await startNats();
const skip = isSkip(etcdStarted) ? etcdStarted.skip : 'skip' in natsStarted ? natsStarted.skip : false;

/** A WebSocket on a replica's listener; resolves once open, with a promise of its close. */
function open(r: Replica, f: Fixture, o: { cookie?: string; cert?: IssuedCertificate }): Promise<{ ws: WebSocket; closed: Promise<void> }> {
  const human = o.cookie !== undefined;
  return new Promise((resolve, reject) => {
    const options: ClientOptions & { servername: string } = {
      ca: f.ca.certPem,
      servername: human ? HUMAN_HOST : 'api.payments',
      ...(o.cert !== undefined ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}),
      headers: { host: human ? HUMAN_HOST : 'api.payments', ...(o.cookie !== undefined ? { cookie: `__Host-gatehouse=${o.cookie}` } : {}) },
    };
    const ws = new WebSocket(`wss://127.0.0.1:${human ? r.humanPort : r.servicePort}/ws`, options);
    const closed = new Promise<void>((r2) => ws.once('close', () => r2()));
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode ?? 0}`)));
    ws.once('error', reject);
  });
}

describe('an ended identity ends its channels on every replica (etcd + NATS)', { skip }, () => {
  let cluster: EtcdCluster;
  let nats: NatsServer;
  let f: Fixture;
  let a: Replica;
  let b: Replica;

  before(async () => {
    cluster = etcdStarted as EtcdCluster;
    nats = natsStarted as NatsServer;
    f = await makeRevocationFixture();
    a = await startReplica(f, { id: 'chan-a', endpoints: cluster.endpoints, nats: nats.url, stream: 'CHANTEST' });
    b = await startReplica(f, { id: 'chan-b', endpoints: cluster.endpoints, nats: nats.url, stream: 'CHANTEST' });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    if (f) await disposeFixture(f);
    await nats?.stop();
    await cluster?.stop();
  });

  it('logout through replica B closes the WebSocket held on replica A', async () => {
    const s = await createSession(a.store, { userId: 'lena', roles: { payments: ['ops-admin'] } });
    const held = await open(a, f, { cookie: s.cookie });
    const out = await humanCall(b.humanPort, f.ca.certPem, { cookie: s.cookie, path: '/.gatehouse/logout', origin: HUMAN_ORIGIN, body: {} });
    assert.equal(out.status, 200, out.body);
    assert.ok(await within(held.closed, 10_000), 'replica A closed the WebSocket');
  });

  it('`user disable` closes the WebSockets held on both replicas', async () => {
    const s = await createSession(a.store, { userId: 'dora', roles: { payments: ['ops-admin'] } });
    const onA = await open(a, f, { cookie: s.cookie });
    const onB = await open(b, f, { cookie: s.cookie });
    await disableUser(b.store, 'dora', systemClock);
    assert.ok(await within(onA.closed, 10_000), 'replica A');
    assert.ok(await within(onB.closed, 10_000), 'replica B');
  });

  it('a certificate revoked through replica B closes the service WebSocket held on replica A', async () => {
    const cert = await issueCertificate(f.ca, { namespace: 'frontend', service: 'web' });
    const held = await open(a, f, { cert });
    await revoke(b.store, b.bus, { kind: 'cert', id: cert.serial, notAfter: cert.notAfter.toISOString(), by: 'test', reason: 'keyCompromise' }, systemClock);
    assert.ok(await within(held.closed, 10_000));
  });
});
