// Revocation across two replicas on one real etcd and one real nats-server: every kind revoked
// through replica A is refused by replica B, over the bus and (NATS stopped) through the store
// watch alone; open connections are closed; a replica cut off from the bus catches up from
// JetStream; the admin API wants gatehouse:security-admin and a fresh MFA session.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { disposeFixture, call, type Fixture } from '../proxy/fixture.js';
import { isSkip, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { startNats, type NatsServer } from '../helpers/nats.js';
import { waitFor } from '../helpers/programs.js';
import { issueCertificate, type IssuedCertificate } from '../../src/pki/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { certThumbprint } from '../../src/tokens/index.js';
import { publishRevocation, revoke, REVOCATIONS_API_PATH, REVOKE_API_PATH, type RevocationKind, type RevocationRecord } from '../../src/revocation/index.js';
import { runCli } from '../../src/cli/index.js';
import { makeRevocationFixture, startReplica, createSession, humanCall, codeOf, CONSOLE_HOST, CONSOLE_ORIGIN, type Replica } from './fixture.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

const etcdStarted = await startEtcdCluster({ members: 1 });
const natsStarted = await startNats();
const skip = isSkip(etcdStarted) ? etcdStarted.skip : 'skip' in natsStarted ? natsStarted.skip : false;

describe('revocation across replicas (etcd + NATS)', { skip }, () => {
  let cluster: EtcdCluster;
  let nats: NatsServer;
  let proxy: TcpProxy;
  let f: Fixture;
  let a: Replica;
  let b: Replica;
  const certs: IssuedCertificate[] = [];
  let nextCert = 0;
  const freshCert = (): IssuedCertificate => certs[nextCert++]!;

  before(async () => {
    cluster = etcdStarted as EtcdCluster;
    nats = natsStarted as NatsServer;
    f = await makeRevocationFixture();
    // B reaches NATS through a relay the test can cut
    proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(nats.url).port) });
    a = await startReplica(f, { id: 'rev-a', endpoints: cluster.endpoints, nats: nats.url });
    b = await startReplica(f, { id: 'rev-b', endpoints: cluster.endpoints, nats: proxy.url });
    // one dedicated SPIFFE ID (and certificate) per revocation
    certs.push(...(await Promise.all(Array.from({ length: 12 }, (_, i) => issueCertificate(f.ca, { namespace: 'frontend', service: `svc-${i}` })))));
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await proxy?.close();
    if (f) await disposeFixture(f);
    await nats?.stop();
    await cluster?.stop();
  });

  const serviceStatus = async (r: Replica, cert: IssuedCertificate, headers?: Record<string, string>): Promise<number | string> => {
    try {
      const res = await call(r.servicePort, f.ca, { cert, path: '/v1/charges/1', ...(headers ? { headers } : {}) });
      return res.status === 200 ? 200 : (codeOf(res.body) ?? res.status);
    } catch {
      return 'handshake-refused';
    }
  };
  const humanStatus = async (r: Replica, cookie: string): Promise<number | string> => {
    const res = await humanCall(r.humanPort, f.ca.certPem, { cookie });
    return res.status === 200 ? 200 : (codeOf(res.body) ?? res.status);
  };
  const refusedBy = (what: string, probe: () => Promise<number | string>, timeoutMs = 10_000): Promise<number | string> =>
    waitFor(what, async () => {
      const s = await probe();
      return s !== 200 ? s : undefined;
    }, timeoutMs, 5);

  /** Revokes through A; B must refuse. Returns B's refusal and which path told B first. */
  async function revokeAndExpectRefusal(kind: RevocationKind, id: string, probeB: () => Promise<number | string>, extra: { notAfter?: string } = {}) {
    assert.equal(await probeB(), 200, `${kind} is served by B before the revocation`);
    const stats0 = b.app.revocationSet!.stats();
    const t0 = performance.now();
    const r = await revoke(a.store, a.bus, { kind, id, reason: 'test', by: 'test', ...extra }, systemClock);
    const refusal = await refusedBy(`replica B refuses the revoked ${kind}`, probeB);
    const ms = performance.now() - t0;
    const stats1 = b.app.revocationSet!.stats();
    const via = stats1.firstViaBus > stats0.firstViaBus ? 'bus' : stats1.firstViaStore > stats0.firstViaStore ? 'store' : 'unknown';
    console.log(JSON.stringify({ test: 'revoke-through-a-refused-by-b', kind, refusal, ms: +ms.toFixed(1), via, published: r.published }));
    return { refusal, via, result: r };
  }

  it('every kind revoked through A is refused by B (bus up)', async () => {
    // service: a SPIFFE ID, whatever certificate carries it
    const svc = freshCert();
    const s1 = await revokeAndExpectRefusal('service', svc.spiffeId, () => serviceStatus(b, svc));
    assert.ok(s1.result.published !== null, 'published on the bus');
    // a new connection of that identity is refused at the handshake on both replicas
    assert.equal(await serviceStatus(a, svc), 'handshake-refused');

    // cert: a serial
    const c = freshCert();
    const c1 = await revokeAndExpectRefusal('cert', c.serial, () => serviceStatus(b, c), { notAfter: c.notAfter.toISOString() });
    assert.ok(c1.refusal === 'handshake-refused' || c1.refusal === 'ERR_CERT_REVOKED');

    // user and session: people on the human listener
    const alice = await createSession(a.store, { userId: 'alice', roles: { payments: ['ops-admin'] } });
    await waitFor('B knows alice', async () => ((await humanStatus(b, alice.cookie)) === 200 ? true : undefined), 5_000, 20);
    const u = await revokeAndExpectRefusal('user', 'alice', () => humanStatus(b, alice.cookie));
    assert.ok(u.refusal === 'ERR_USER_REVOKED' || u.refusal === 'ERR_SESSION_EXPIRED', String(u.refusal));
    assert.equal(u.result.sessionsEnded, 1, "alice's session ended in the store");

    const bob = await createSession(a.store, { userId: 'bob', roles: { payments: ['ops-admin'] } });
    const bobOther = await createSession(a.store, { userId: 'bob', roles: { payments: ['ops-admin'] } });
    await waitFor('B knows bob', async () => ((await humanStatus(b, bob.cookie)) === 200 ? true : undefined), 5_000, 20);
    const s = await revokeAndExpectRefusal('session', bob.sid, () => humanStatus(b, bob.cookie));
    assert.ok(s.refusal === 'ERR_SESSION_REVOKED' || s.refusal === 'ERR_SESSION_EXPIRED', String(s.refusal));
    assert.equal(s.result.record.subject, 'bob');
    assert.equal(await humanStatus(b, bobOther.cookie), 200, "bob's other session is untouched");
  });

  it('a revoked token (jti) is refused even though B has it cached', async () => {
    const web = f.certs.web;
    const minted = await a.app.tokens!.mint({ subject: web.spiffeId, audience: 'spiffe://example.org/ns/payments/sa/api', namespace: 'payments', roles: [], certThumbprint: certThumbprint(web.certPem) });
    const bearer = { authorization: `Bearer ${minted.token}` };
    assert.equal(await serviceStatus(b, web, bearer), 200);
    assert.equal(await serviceStatus(b, web, bearer), 200);
    assert.ok(b.app.tokens!.stats().verify.cacheHits >= 1, 'the verification is cached on B');
    const t = await revokeAndExpectRefusal('token', minted.jti, () => serviceStatus(b, web, bearer));
    assert.equal(t.refusal, 'ERR_TOKEN_REVOKED');
    assert.equal(await serviceStatus(a, web, bearer), 'ERR_TOKEN_REVOKED');
    assert.equal(await serviceStatus(b, web), 200, 'the service itself is not revoked');
  });

  it("closes open connections of a revoked certificate and of a revoked session", async () => {
    const c = freshCert();
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const humanAgent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.equal((await call(b.servicePort, f.ca, { cert: c, path: '/v1/charges/1', agent })).status, 200);
      const socket = Object.values(agent.freeSockets).flat()[0];
      assert.ok(socket, 'keep-alive connection to B');
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await revoke(a.store, a.bus, { kind: 'cert', id: c.serial, notAfter: c.notAfter.toISOString(), by: 'test' }, systemClock);
      await closed;

      const carol = await createSession(a.store, { userId: 'carol', roles: { payments: ['ops-admin'] } });
      await waitFor('B knows carol', async () => ((await humanCall(b.humanPort, f.ca.certPem, { cookie: carol.cookie, agent: humanAgent })).status === 200 ? true : undefined), 5_000, 20);
      const hs = Object.values(humanAgent.freeSockets).flat()[0];
      assert.ok(hs, 'keep-alive human connection to B');
      const hClosed = new Promise<void>((resolve) => hs.once('close', () => resolve()));
      await revoke(a.store, a.bus, { kind: 'session', id: carol.sid, by: 'test' }, systemClock);
      await hClosed;
    } finally {
      agent.destroy();
      humanAgent.destroy();
    }
  });

  it('B cut off from NATS catches up from JetStream when it returns (a bus-only message)', async () => {
    const svc = freshCert();
    assert.equal(await serviceStatus(b, svc), 200);
    await proxy.cut();
    // published on the bus only (never written to the store): only a JetStream replay can tell B
    const record: RevocationRecord = { format: 1, kind: 'service', id: svc.spiffeId, reason: 'test', revokedAt: new Date().toISOString(), by: 'test', expiresAt: new Date(Date.now() + 600_000).toISOString() };
    assert.ok((await publishRevocation(a.bus, record)) !== null);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await serviceStatus(b, svc), 200, 'B has not heard yet');
    await proxy.restore();
    const t0 = performance.now();
    // the NATS bus notices a silently dropped connection within ~4-6 s (pings every 2 s, 2 missed) and a lost pull by its 5 s expiry; allow 30 s
    const refusal = await refusedBy('B catches up from JetStream', () => serviceStatus(b, svc), 30_000);
    console.log(JSON.stringify({ test: 'jetstream-catch-up', refusal, msAfterReconnect: +(performance.now() - t0).toFixed(1) }));
  });

  it('the bus alone (no store record) makes B refuse a session and a user by their own checks', async () => {
    const ivan = await createSession(a.store, { userId: 'ivan', roles: { payments: ['ops-admin'] } });
    const judy = await createSession(a.store, { userId: 'judy', roles: { payments: ['ops-admin'] } });
    for (const s of [ivan, judy]) await waitFor('B knows the session', async () => ((await humanStatus(b, s.cookie)) === 200 ? true : undefined), 5_000, 20);
    const rec = (kind: RevocationKind, id: string): RevocationRecord => ({ format: 1, kind, id, reason: 'test', revokedAt: new Date().toISOString(), by: 'test', expiresAt: new Date(Date.now() + 600_000).toISOString() });
    assert.ok((await publishRevocation(a.bus, rec('session', ivan.sid))) !== null);
    assert.ok((await publishRevocation(a.bus, rec('user', 'judy'))) !== null);
    assert.equal(await refusedBy('B refuses the session', () => humanStatus(b, ivan.cookie)), 'ERR_SESSION_REVOKED');
    assert.equal(await refusedBy('B refuses the user', () => humanStatus(b, judy.cookie)), 'ERR_USER_REVOKED');
  });

  it('with NATS stopped, a revocation through A still reaches B through the store watch', async () => {
    await nats.kill('SIGKILL');
    try {
      const svc = freshCert();
      const stats0 = b.app.revocationSet!.stats();
      const r = await revokeAndExpectRefusal('service', svc.spiffeId, () => serviceStatus(b, svc));
      assert.equal(r.result.published, null, 'the bus was down');
      assert.equal(b.app.revocationSet!.stats().firstViaStore, stats0.firstViaStore + 1, 'B learned it from the store');
      const carol = await createSession(a.store, { userId: 'dave', roles: { payments: ['ops-admin'] } });
      await waitFor('B knows dave', async () => ((await humanStatus(b, carol.cookie)) === 200 ? true : undefined), 5_000, 20);
      await revokeAndExpectRefusal('session', carol.sid, () => humanStatus(b, carol.cookie));
    } finally {
      await nats.restart();
    }
    // after NATS returns, the bus path works again
    const svc = freshCert();
    const r = await revokeAndExpectRefusal('service', svc.spiffeId, () => serviceStatus(b, svc));
    assert.ok(r.result.published !== null);
  });

  it('gatehouse revoke (CLI) writes to the store and publishes on NATS', async () => {
    const svc = freshCert();
    assert.equal(await serviceStatus(b, svc), 200);
    const out: string[] = [];
    const err: string[] = [];
    const env = { GATEHOUSE_STORE_KIND: 'etcd', GATEHOUSE_STORE_ENDPOINTS: cluster.endpoints.join(','), GATEHOUSE_BUS_KIND: 'nats', GATEHOUSE_BUS_SERVERS: nats.url };
    const code = await runCli(['revoke', 'service', svc.spiffeId, '--reason', 'compromised', '--config', f.configFile], { out: (l) => out.push(l), err: (l) => err.push(l), env, stopSignal: new Promise(() => undefined) });
    assert.equal(code, 0, err.join('\n'));
    const res = JSON.parse(out[0]!) as { kind: string; id: string; via: string; published: number | null; expiresAt: string | null; reason: string };
    assert.deepEqual([res.kind, res.id, res.via, res.reason, res.expiresAt], ['service', svc.spiffeId, 'store', 'compromised', null]);
    assert.ok(res.published !== null, 'published on NATS');
    await refusedBy('B refuses the service revoked by the CLI', () => serviceStatus(b, svc));
    assert.equal(await runCli(['revoke', 'session', 'not a sid', '--config', f.configFile], { out: () => undefined, err: () => undefined, env, stopSignal: new Promise(() => undefined) }), 2);
  });

  it('the admin API wants security-admin, a fresh MFA session and the right Origin', async () => {
    const target = await createSession(a.store, { userId: 'erin', roles: { payments: ['ops-admin'] } });
    const plain = await createSession(a.store, { userId: 'frank', roles: { payments: ['ops-admin'] }, host: CONSOLE_HOST });
    const stale = await createSession(a.store, { userId: 'grace', roles: { gatehouse: ['security-admin'] }, lastWebAuthnAt: Date.now() - 6 * 60_000, host: CONSOLE_HOST });
    const admin = await createSession(a.store, { userId: 'heidi', roles: { gatehouse: ['security-admin'] }, host: CONSOLE_HOST });
    const post = (cookie: string | undefined, origin: string | undefined) =>
      humanCall(a.humanPort, f.ca.certPem, { host: CONSOLE_HOST, path: REVOKE_API_PATH, ...(cookie !== undefined ? { cookie } : {}), ...(origin !== undefined ? { origin } : {}), body: { kind: 'session', id: target.sid, reason: 'stolen laptop' } });
    await waitFor('B knows erin', async () => ((await humanStatus(b, target.cookie)) === 200 ? true : undefined), 5_000, 20);
    await waitFor('A knows the admin', async () => ((await humanCall(a.humanPort, f.ca.certPem, { host: CONSOLE_HOST, path: REVOCATIONS_API_PATH, cookie: admin.cookie })).status === 200 ? true : undefined), 5_000, 20);

    const noSession = await post(undefined, CONSOLE_ORIGIN);
    assert.equal(codeOf(noSession.body), 'ERR_SESSION_REQUIRED');
    const notAdmin = await post(plain.cookie, CONSOLE_ORIGIN);
    assert.deepEqual([notAdmin.status, codeOf(notAdmin.body)], [403, 'ERR_REVOCATION_FORBIDDEN']);
    const staleMfa = await post(stale.cookie, CONSOLE_ORIGIN);
    assert.deepEqual([staleMfa.status, codeOf(staleMfa.body)], [401, 'ERR_STEP_UP_REQUIRED']);
    const noOrigin = await post(admin.cookie, undefined);
    assert.deepEqual([noOrigin.status, codeOf(noOrigin.body)], [403, 'ERR_ORIGIN_REFUSED']);
    const foreign = await post(admin.cookie, 'https://evil.example.net');
    assert.deepEqual([foreign.status, codeOf(foreign.body)], [403, 'ERR_ORIGIN_REFUSED']);
    assert.equal(await humanStatus(b, target.cookie), 200, 'nothing was revoked by the refused calls');

    const ok = await post(admin.cookie, CONSOLE_ORIGIN);
    assert.equal(ok.status, 200, ok.body);
    const body = JSON.parse(ok.body) as { kind: string; id: string; by: string; created: boolean };
    assert.deepEqual([body.kind, body.id, body.by, body.created], ['session', target.sid, 'user:heidi', true]);
    await refusedBy('B refuses the session revoked through the admin API', () => humanStatus(b, target.cookie));

    await a.app.audit.flush();
    const events = await a.store.range({ prefix: '/gatehouse/audit/rev-a/' });
    const text = events.kvs.map((kv) => Buffer.from(kv.value).toString('utf8')).join('\n');
    // one operator action, the same as the CLI's, its actor the session's user
    assert.match(text, /"event.action":"admin.revoke","event.outcome":"success","gatehouse.actor":"heidi","gatehouse.actor_kind":"session"/);
    assert.match(text, /ERR_REVOCATION_FORBIDDEN/);
  });

  it('a lift through A (gatehouse revoke lift, etcd + NATS) reaches B: the service and the user are served again, and a replay of the old revocation does not bring them back', async () => {
    const env = { GATEHOUSE_STORE_KIND: 'etcd', GATEHOUSE_STORE_ENDPOINTS: cluster.endpoints.join(','), GATEHOUSE_BUS_KIND: 'nats', GATEHOUSE_BUS_SERVERS: nats.url };
    const cli = async (...args: string[]): Promise<Record<string, unknown>> => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli([...args, '--config', f.configFile], { out: (l) => out.push(l), err: (l) => err.push(l), env, stopSignal: new Promise(() => undefined) });
      assert.equal(code, 0, err.join('\n'));
      return JSON.parse(out[0]!) as Record<string, unknown>;
    };
    const svc = freshCert();
    const revoked = await cli('revoke', 'service', svc.spiffeId, '--reason', 'suspected');
    await refusedBy('B refuses the revoked service', () => serviceStatus(b, svc));
    const lifted = await cli('revoke', 'lift', 'service', svc.spiffeId, '--reason', 'false alarm');
    assert.deepEqual([lifted.lifted, lifted.id, lifted.revokedAt], [true, svc.spiffeId, revoked.revokedAt]);
    const t0 = performance.now();
    await waitFor('B serves the service again', async () => ((await serviceStatus(b, svc)) === 200 ? true : undefined), 10_000, 5);
    console.log(JSON.stringify({ test: 'lift-through-a-served-by-b', ms: +(performance.now() - t0).toFixed(1) }));
    assert.equal(b.app.revocationSet!.has('service', svc.spiffeId), false);

    // a person: revoked (their sessions end), a new session refused while revoked, served once lifted
    await createSession(a.store, { userId: 'lena', roles: { payments: ['ops-admin'] } });
    await cli('revoke', 'user', 'lena');
    await waitFor('B holds the user revocation', async () => (b.app.revocationSet!.has('user', 'lena') ? true : undefined), 10_000, 5);
    const later = await createSession(a.store, { userId: 'lena', roles: { payments: ['ops-admin'] } });
    await waitFor('B refuses lena', async () => ((await humanStatus(b, later.cookie)) === 'ERR_USER_REVOKED' ? true : undefined), 10_000, 20);
    await cli('revoke', 'lift', 'user', 'lena');
    await waitFor('B serves lena again', async () => ((await humanStatus(b, later.cookie)) === 200 ? true : undefined), 10_000, 20);

    // the revocation message arrives again (a JetStream replay, a late publisher): B keeps serving
    const { created: _c, key: _k, published: _p, sessionsEnded: _s, via: _v, ...record } = revoked;
    assert.ok((await publishRevocation(a.bus, record as unknown as RevocationRecord)) !== null);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await serviceStatus(b, svc), 200, 'an older bus message does not bring a lifted revocation back');
  });
});
