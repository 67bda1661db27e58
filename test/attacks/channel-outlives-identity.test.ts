// A channel that outlives its identity: a WebSocket, a kept-alive connection or a response in
// flight after the session's absolute lifetime, logout (also through a per-host alias), or a
// certificate revoked under another spelling of its serial.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { changeRoles } from '../../src/authenticate/index.js';
import { issueCertificate, type IssuedCertificate } from '../../src/pki/index.js';
import { revoke } from '../../src/revocation/index.js';
import { API, APP, OTHER, call, echo, openWebSocket, sleep, startBench, within, type Bench } from './fixture.js';

let b: Bench;
before(async () => {
  b = await startBench();
});
after(async () => b?.close());
beforeEach(() => b.upstream.reset());

describe('attack: a channel outlives its identity', () => {
  it(
    "a WebSocket is closed when its session reaches its absolute lifetime, not up to an idle timeout later",
    async () => {
      const s = await b.session({ userId: 'abe', absoluteMs: 5 * 60_000 });
      const ws = await openWebSocket(b, { listener: 'human', cookie: s.cookie });
      try {
        assert.equal(await echo(ws, 'before'), 'echo:before');
        // an ordinary request 4 minutes in keeps the session (and its lease) alive
        b.clock.advance(4 * 60_000);
        assert.equal((await call(b, { listener: 'human', cookie: s.cookie })).status, 200);
        // one minute past the absolute lifetime: the session is over
        b.clock.advance(2 * 60_000);
        await b.settle();
        const closed = await within(ws.closed, 2_000);
        const stillEchoes = closed ? 'closed' : await echo(ws, 'after').catch((e: Error) => e.message);
        assert.ok(closed, `the WebSocket still carries traffic 1 min after the session's absolute end: ${stillEchoes}`);
      } finally {
        ws.ws.terminate();
      }
    },
  );

  it('logout through the primary host closes a WebSocket on another host that rides the per-host alias', async () => {
    const s = await b.session({ userId: 'ali' });
    const aliasCookie = randomBytes(32).toString('base64url');
    const aliasHash = createHash('sha256').update(aliasCookie).digest('hex');
    await b.store.put(`/gatehouse/sessions/${aliasHash}`, JSON.stringify({ format: 1, kind: 'alias', primary: s.hash, host: OTHER, createdAt: b.clock.now() }), { lease: s.lease });
    await b.settle();
    const ws = await openWebSocket(b, { listener: 'human', host: OTHER, cookie: aliasCookie });
    try {
      assert.equal(await echo(ws, 'x'), 'echo:x');
      const out = await call(b, { listener: 'human', method: 'POST', path: '/.gatehouse/logout', cookie: s.cookie, headers: { origin: `https://${APP}`, 'content-length': '0' } });
      assert.equal(out.status, 200, out.body);
      await b.settle();
      assert.ok(await within(ws.closed, 3_000), 'the alias WebSocket on the other host was closed at logout');
      const again = await call(b, { listener: 'human', host: OTHER, cookie: aliasCookie });
      assert.equal(again.status, 401, 'the alias cookie is dead too');
    } finally {
      ws.ws.terminate();
    }
  });

  it('a certificate revoked by its serial in openssl spelling (upper case, colons) ends a streaming response in flight and a WebSocket', async () => {
    const cert = await issueCertificate(b.ca, { namespace: 'frontend', service: 'web' });
    let upstreamGone = false;
    b.upstream.onRequest = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('start\n');
      const t = setInterval(() => res.write('tick\n'), 25);
      res.on('close', () => {
        clearInterval(t);
        upstreamGone = true;
      });
    };
    const agent = new https.Agent({ keepAlive: false });
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: b.servicePort, path: '/v1/stream', ca: b.ca.certPem, cert: cert.certPem, key: cert.keyPem, servername: API, headers: { host: API }, agent }, resolve);
      req.on('error', reject);
      req.end();
    });
    const ended = new Promise<void>((r) => {
      res.on('close', () => r());
      res.on('error', () => r());
      res.resume();
    });
    const ws = await openWebSocket(b, { listener: 'service', cert });
    try {
      await sleep(100);
      const openssl = cert.serial.toUpperCase().match(/../g)!.join(':');
      await revoke(b.store, b.bus, { kind: 'cert', id: openssl, notAfter: cert.notAfter.toISOString(), by: 'attacks', reason: 'keyCompromise' }, b.clock);
      await b.settle();
      assert.ok(await within(ended, 3_000), 'the streaming response was cut');
      assert.ok(await within(ws.closed, 3_000), 'the WebSocket was closed');
      for (let i = 0; i < 40 && !upstreamGone; i++) await sleep(25);
      assert.ok(upstreamGone, 'the upstream side of the stream was torn down too');
    } finally {
      ws.ws.terminate();
      agent.destroy();
    }
  });

  it(
    'logout on a kept-alive connection that carried the session: the logout answer (and its Set-Cookie clearing the cookie) still reaches the browser',
    async () => {
      const s = await b.session({ userId: 'kal' });
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        assert.equal((await call(b, { listener: 'human', cookie: s.cookie, agent })).status, 200, 'a first request tags the connection');
        const out = await call(b, { listener: 'human', method: 'POST', path: '/.gatehouse/logout', cookie: s.cookie, agent, headers: { origin: `https://${APP}`, 'content-length': '0' } }).catch((e: Error) => e);
        assert.ok(!(out instanceof Error), `the logout got no answer: ${out instanceof Error ? out.message : ''}`);
        assert.equal(out.status, 200, out.body);
        const cleared = ([] as string[]).concat(out.headers['set-cookie'] ?? []);
        assert.ok(cleared.some((c) => c.startsWith('__Host-gatehouse=;') && /Max-Age=0/i.test(c)), `the cookie is cleared: ${JSON.stringify(cleared)}`);
      } finally {
        agent.destroy();
      }
    },
  );

  it('a role taken away ends the WebSocket opened with it (sessions carry the roles they were signed in with)', async () => {
    const s = await b.session({ userId: 'rho', roles: { payments: ['ops-admin'] } });
    const ws = await openWebSocket(b, { listener: 'human', cookie: s.cookie, path: '/admin/live' });
    try {
      assert.equal(await echo(ws, 'x'), 'echo:x');
      const r = await changeRoles(b.store, 'rho', () => ({ payments: ['viewer'] }));
      assert.equal(r.changed, true, 'roles changed');
      await b.settle();
      assert.ok(await within(ws.closed, 3_000), 'the WebSocket opened as ops-admin was closed when the role went');
      assert.equal((await call(b, { listener: 'human', cookie: s.cookie, path: '/admin/x' })).status, 401, 'the session is over');
    } finally {
      ws.ws.terminate();
    }
  });

  it(
    "forward-auth does not tie the front proxy's shared connection to the people it asks about (one logout must not cut every user's verify on it)",
    async () => {
      const alice = await b.session({ userId: 'fa1' });
      const bob = await b.session({ userId: 'fa2' });
      const proxy = new https.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const ask = (cookie: string): ReturnType<typeof call> => call(b, { listener: 'human', path: '/.gatehouse/auth/verify', cookie, agent: proxy, headers: { 'x-forwarded-host': APP, 'x-forwarded-uri': '/v1/things' } });
        assert.equal((await ask(alice.cookie)).status, 200);
        assert.equal((await ask(bob.cookie)).status, 200);
        const sockets = Object.values(proxy.freeSockets).flat();
        assert.equal(sockets.length, 1, "the proxy's one kept-alive connection");
        const shared = sockets[0]!;
        const cut = new Promise<void>((r) => shared.once('close', () => r()));
        const out = await call(b, { listener: 'human', method: 'POST', path: '/.gatehouse/logout', cookie: alice.cookie, headers: { origin: `https://${APP}`, 'content-length': '0' } });
        assert.equal(out.status, 200, out.body);
        await b.settle();
        assert.equal(await within(cut, 500), false, "alice's logout closed the connection the front proxy uses for bob too");
      } finally {
        proxy.destroy();
      }
    },
  );

  it('TLS session resumption does not carry a certificate past its revocation or its notAfter (the resumed handshake is refused and audited once)', async () => {
    const connect = (cert: IssuedCertificate, session?: Buffer): Promise<{ status: string; reused: boolean; session: Buffer | undefined }> =>
      new Promise((resolve) => {
        let ticket: Buffer | undefined;
        let reused = false;
        const sock = tls.connect({ host: '127.0.0.1', port: b.servicePort, ca: b.ca.certPem, cert: cert.certPem, key: cert.keyPem, servername: API, ...(session !== undefined ? { session } : {}) }, () => {
          reused = sock.isSessionReused();
          sock.write(`GET /v1/things HTTP/1.1\r\nHost: ${API}\r\nConnection: close\r\n\r\n`);
        });
        sock.on('session', (t: Buffer) => (ticket = t));
        let got = '';
        sock.setEncoding('latin1');
        sock.on('data', (d: string) => (got += d));
        sock.on('error', () => undefined);
        sock.on('close', () => resolve({ status: got.split('\r\n')[0] ?? '', reused, session: ticket }));
      });
    /** A session ticket that was just resumed successfully. */
    const ticketOf = async (cert: IssuedCertificate): Promise<Buffer> => {
      const first = await connect(cert);
      assert.equal(first.status, 'HTTP/1.1 200 OK');
      assert.ok(first.session !== undefined, 'a session ticket to resume with');
      const resumed = await connect(cert, first.session);
      assert.equal(resumed.status, 'HTTP/1.1 200 OK');
      assert.equal(resumed.reused, true, 'the second handshake resumed the session');
      return resumed.session ?? first.session;
    };
    const toRevoke = await issueCertificate(b.ca, { namespace: 'frontend', service: 'web' });
    const toExpire = await issueCertificate(b.ca, { namespace: 'frontend', service: 'web', ttlMs: 3_600_000 });
    const revokedTicket = await ticketOf(toRevoke);
    const expiringTicket = await ticketOf(toExpire);
    const since = (await b.events()).length;
    await revoke(b.store, b.bus, { kind: 'cert', id: toRevoke.serial, notAfter: toRevoke.notAfter.toISOString(), by: 'attacks', reason: 'keyCompromise' }, b.clock);
    await b.settle();
    assert.equal((await connect(toRevoke, revokedTicket)).status, '', 'no answer on a resumed session of a revoked certificate');
    // past notAfter on the gateway clock: resumption skips OpenSSL's chain check; the stage's own check must still run
    b.clock.advance(2 * 3_600_000);
    assert.equal((await connect(toExpire, expiringTicket)).status, '', 'no answer on a resumed session of an expired certificate');
    await sleep(50);
    const refusals = (await b.events()).slice(since).filter((e) => e['event.action'] === 'tls.handshake').map((e) => e['gatehouse.error_code']);
    assert.deepEqual(refusals, ['ERR_CERT_REVOKED', 'ERR_CERT_EXPIRED'], 'one refusal each');
  });
});
