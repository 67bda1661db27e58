// The service path over real TLS sockets: mTLS identity, policy, header hygiene, streaming,
// WebSockets, hostile paths, revocation, hot reload, and the audit event for each decision.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import WebSocket from 'ws';
import { makeFixture, disposeFixture, startGateway, call, rawCall, PAYMENTS_POLICY, TD, type Fixture, type RunningGateway } from './fixture.js';
import { HOSTILE_PATHS } from './hostile-paths.js';
import { text } from '../../src/store/index.js';
import { revokeCertificate } from '../../src/pki/index.js';
import { applyPolicySources } from '../../src/authorize/index.js';
import { systemClock } from '../../src/lib/clock.js';
import type { AuditEvent } from '../../src/contracts/audit.js';
import { bearerToken, createVerifier } from '../../src/sdk/index.js';
import path from 'node:path';

interface ErrorReply {
  error: { code: string; message: string };
  requestId: string;
}

describe('service listener (mTLS proxy)', () => {
  let f: Fixture;
  let gw: RunningGateway;

  before(async () => {
    f = await makeFixture();
    gw = await startGateway(f);
  });
  after(async () => {
    await gw?.close();
    await disposeFixture(f);
  });

  async function auditEvents(): Promise<AuditEvent[]> {
    await gw.app.audit.flush();
    const r = await gw.store.range({ prefix: '/gatehouse/audit/test-a/' });
    return r.kvs.map((kv) => (JSON.parse(text(kv.value)) as { event: AuditEvent }).event);
  }
  const req = (o: Parameters<typeof call>[2]) => call(gw.port, f.ca, o);

  it('allows a call policy allows, with Gatehouse identity headers and nothing the client claimed', async () => {
    const res = await req({
      cert: f.certs.web,
      method: 'POST',
      path: '/v1/charges?amount=5',
      body: '{"amount":5}',
      headers: {
        'content-type': 'application/json',
        'x-gatehouse-subject': 'spiffe://example.org/ns/payments/sa/admin',
        'x-forwarded-for': '10.0.0.1',
        forwarded: 'for=10.0.0.1',
        authorization: 'Basic Y2xpZW50OnNlY3JldA==',
        connection: 'x-secret',
        'x-secret': 'hop',
      },
    });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers['x-upstream'], 'yes');
    assert.notEqual(res.headers['keep-alive'], 'timeout=5', "the upstream's hop-by-hop header was forwarded");
    const echo = JSON.parse(res.body) as { method: string; url: string; bytes: number; headers: Record<string, string>; peer: string };
    assert.equal(echo.method, 'POST');
    assert.equal(echo.url, '/v1/charges?amount=5');
    assert.equal(echo.bytes, 12);
    assert.equal(echo.headers['x-gatehouse-subject'], `spiffe://${TD}/ns/frontend/sa/web`);
    assert.equal(echo.headers['x-gatehouse-namespace'], 'payments');
    assert.match(echo.headers['x-gatehouse-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers.forwarded, undefined);
    // the client's Authorization is dropped; the upstream gets a token minted for it
    assert.match(echo.headers.authorization ?? '', /^Bearer eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(echo.headers['x-secret'], undefined);
    // the gateway presents its own certificate upstream: one URI SAN, the gateway's SPIFFE ID
    assert.deepEqual(echo.peer.split(', ').filter((s) => s.startsWith('URI:')), [`URI:spiffe://${TD}/ns/gatehouse/sa/gateway`]);
    const ev = (await auditEvents()).find((e) => e['gatehouse.request_id'] === echo.headers['x-gatehouse-request-id']);
    assert.ok(ev, 'allow must be audited');
    assert.equal(ev['event.outcome'], 'success');
    assert.equal(ev['gatehouse.rule'], 'web-creates-charges');
    assert.equal(ev['url.path'], '/v1/charges');
    assert.equal(ev['gatehouse.subject'], `spiffe://${TD}/ns/frontend/sa/web`);
    assert.deepEqual(ev['gatehouse.reasons'], ['allowed-by-rule']);
  });

  it('mints a short-lived token for exactly this upstream, bound to the caller certificate, verifiable with the SDK', async () => {
    const res = await req({ cert: f.certs.web, method: 'POST', path: '/v1/charges', body: '{}' });
    const echo = JSON.parse(res.body) as { headers: Record<string, string> };
    const token = bearerToken(echo.headers.authorization ?? '');
    const verifier = createVerifier({
      jwksUrl: `https://127.0.0.1:${gw.port}/.well-known/jwks.json`,
      issuer: `https://gatehouse.${TD}`,
      audience: `spiffe://${TD}/ns/payments/sa/api`,
      namespace: 'payments',
      requireBinding: true,
      tls: { ca: f.ca.certPem, cert: f.certs.api.certPem, key: f.certs.api.keyPem, servername: 'localhost' },
    });
    const claims = await verifier.verify(token, { clientCertificate: f.certs.web.certPem });
    assert.equal(claims.sub, `spiffe://${TD}/ns/frontend/sa/web`);
    assert.equal(claims.aud, `spiffe://${TD}/ns/payments/sa/api`);
    assert.equal(claims.ns, 'payments');
    assert.deepEqual(claims.roles, []);
    assert.ok(claims.exp - claims.iat <= 300 && claims.exp - claims.iat > 0);
    // bound to web's certificate: useless with any other
    await assert.rejects(verifier.verify(token, { clientCertificate: f.certs.cms.certPem }), { code: 'ERR_TOKEN_BINDING' });
    // the same subject and audience reuse the token (one signature per token life third)
    const again = JSON.parse((await req({ cert: f.certs.web, method: 'POST', path: '/v1/charges', body: '{}' })).body) as { headers: Record<string, string> };
    assert.equal(again.headers.authorization, echo.headers.authorization);
    const jwks = await fetch(`http://127.0.0.1:${gw.adminPort}/.well-known/jwks.json`);
    assert.match(jwks.headers.get('cache-control') ?? '', /max-age=\d+/);
    assert.equal(((await jwks.json()) as { keys: { alg: string }[] }).keys[0]?.alg, 'EdDSA');
  });

  it('token exchange: a bound token for an audience policy lets the caller reach, invalid_target otherwise', async () => {
    const exchange = (cert: typeof f.certs.web, body: string) =>
      req({ cert, method: 'POST', path: '/.gatehouse/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    const form = (aud: string) => `grant_type=${encodeURIComponent('urn:ietf:params:oauth:grant-type:token-exchange')}&audience=${encodeURIComponent(aud)}`;
    const ok = await exchange(f.certs.web, form(`spiffe://${TD}/ns/payments/sa/api`));
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.headers['cache-control'], 'no-store');
    const issued = JSON.parse(ok.body) as { access_token: string; token_type: string; expires_in: number };
    assert.equal(issued.token_type, 'Bearer');
    const denied = await exchange(f.certs.batch, form(`spiffe://${TD}/ns/payments/sa/api`));
    assert.equal(denied.status, 400);
    assert.equal((JSON.parse(denied.body) as { error: string }).error, 'invalid_target');
    const badGrant = await exchange(f.certs.web, 'grant_type=client_credentials');
    assert.equal((JSON.parse(badGrant.body) as { error: string }).error, 'unsupported_grant_type');

    // presented on the service listener, the token is accepted only on a connection with its certificate
    const withToken = (cert: typeof f.certs.web) => req({ cert, path: '/v1/charges/9', headers: { authorization: `Bearer ${issued.access_token}` } });
    assert.equal((await withToken(f.certs.web)).status, 200);
    const stolen = await withToken(f.certs.cms);
    assert.equal(stolen.status, 401);
    assert.equal((JSON.parse(stolen.body) as ErrorReply).error.code, 'ERR_TOKEN_BINDING');
    const ev = (await auditEvents()).find((e) => e['gatehouse.request_id'] === (JSON.parse(stolen.body) as ErrorReply).requestId);
    assert.equal(ev?.['gatehouse.error_code'], 'ERR_TOKEN_BINDING');
    assert.equal(ev?.['event.outcome'], 'failure');
  });

  it('hostile bearer tokens get 401 with a code, never a crash', async () => {
    for (const [name, token] of [
      ['alg none', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'],
      ['garbage', 'not-a-jwt'],
      ['empty bearer', ''],
      ['over the 8 KiB token cap', `eyJ${'a'.repeat(10_000)}.eyJ.sig`],
    ] as const) {
      const res = await req({ cert: f.certs.web, path: '/v1/charges/1', headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401, `${name}: ${res.body.slice(0, 200)}`);
      assert.match((JSON.parse(res.body) as ErrorReply).error.code, /^ERR_TOKEN_/, name);
    }
    // a 1 MB token does not fit in the 16 KiB header limit: refused before parsing, in our shape
    const huge = await req({ cert: f.certs.web, path: '/v1/charges/1', headers: { authorization: `Bearer ${'a'.repeat(1024 * 1024)}` } });
    assert.equal(huge.status, 431);
    assert.equal((JSON.parse(huge.body) as ErrorReply).error.code, 'ERR_HEADERS_TOO_LARGE');
  });

  it('denies a call from another namespace with 403 and a code, and audits it', async () => {
    const res = await req({ cert: f.certs.batch, method: 'GET', path: '/v1/charges/7' });
    assert.equal(res.status, 403);
    const body = JSON.parse(res.body) as ErrorReply;
    assert.equal(body.error.code, 'ERR_POLICY_DENIED');
    assert.match(body.requestId, /^[0-9a-f-]{36}$/);
    assert.doesNotMatch(res.body, /\.ts:\d+|at [A-Za-z]+ \(/);
    const ev = (await auditEvents()).find((e) => e['gatehouse.request_id'] === body.requestId);
    assert.ok(ev);
    assert.equal(ev['event.outcome'], 'failure');
    assert.deepEqual(ev['gatehouse.reasons'], ['no-matching-rule']);
    assert.equal(ev['gatehouse.subject'], `spiffe://${TD}/ns/jobs/sa/batch`);
  });

  it('deny beats allow, and namespace-wide rules cover every service there', async () => {
    const admin = await req({ cert: f.certs.web, path: '/admin/users' });
    assert.equal(admin.status, 403);
    const body = JSON.parse(admin.body) as ErrorReply;
    const ev = (await auditEvents()).find((e) => e['gatehouse.request_id'] === body.requestId);
    assert.equal(ev?.['gatehouse.rule'], 'no-admin-from-frontend');
    assert.deepEqual(ev?.['gatehouse.reasons'], ['denied-by-rule']);
    assert.equal((await req({ cert: f.certs.cms, path: '/v1/charges/1' })).status, 200);
    assert.equal((await req({ cert: f.certs.cms, method: 'POST', path: '/v1/charges', body: 'x' })).status, 403);
  });

  it('answers an unknown host with 404 ERR_ROUTE_NOT_FOUND', async () => {
    const res = await req({ cert: f.certs.web, host: 'nope.internal', servername: 'localhost' });
    assert.equal(res.status, 404);
    assert.equal((JSON.parse(res.body) as ErrorReply).error.code, 'ERR_ROUTE_NOT_FOUND');
  });

  it('refuses the handshake without a certificate, with a foreign CA, or an expired one, and audits each', async () => {
    const before = (await auditEvents()).filter((e) => e['event.action'] === 'tls.handshake').length;
    for (const cert of [undefined, f.certs.foreign, f.certs.expired]) {
      await assert.rejects(req({ cert, path: '/v1/charges/1' }), (err: NodeJS.ErrnoException) => {
        assert.match(String(err.code ?? err.message), /ECONNRESET|ERR_SSL|EPIPE|socket hang up|alert/i);
        return true;
      });
    }
    const events = (await auditEvents()).filter((e) => e['event.action'] === 'tls.handshake');
    assert.equal(events.length - before, 3, 'each refused handshake is audited');
    assert.ok(events.every((e) => e['event.outcome'] === 'failure'));
  });

  it('a dry-run namespace lets a would-deny pass and audits the would-deny', async () => {
    const res = await req({ cert: f.certs.web, host: 'api.reports', path: '/reports/2026/q3' });
    assert.equal(res.status, 200);
    const id = (JSON.parse(res.body) as { headers: Record<string, string> }).headers['x-gatehouse-request-id'];
    const ev = (await auditEvents()).find((e) => e['gatehouse.request_id'] === id);
    assert.equal(ev?.['event.outcome'], 'failure');
    assert.deepEqual(ev?.['gatehouse.reasons'], ['no-matching-rule', 'dry-run']);
    assert.equal(ev?.['gatehouse.mode'], 'dry-run');
  });

  it('forwards to plain http upstreams', async () => {
    const res = await req({ cert: f.certs.web, host: 'plain.payments', path: '/v1/charges/3' });
    assert.equal(res.status, 200);
  });

  it('answers 502 with a code when the upstream is down, or its certificate names another service', async () => {
    const dead = await req({ cert: f.certs.web, host: 'dead.payments', path: '/v1/charges/1' });
    assert.equal(dead.status, 502);
    assert.equal((JSON.parse(dead.body) as ErrorReply).error.code, 'ERR_UPSTREAM_UNAVAILABLE');
    const wrong = await req({ cert: f.certs.web, host: 'wrongid.reports', path: '/reports/x' });
    assert.equal(wrong.status, 502);
    assert.equal((JSON.parse(wrong.body) as ErrorReply).error.code, 'ERR_UPSTREAM_UNAVAILABLE');
  });

  it('refuses every path in the hostile corpus with 400 and never forwards it', async () => {
    const seen = f.payments.received.size;
    for (const [target] of HOSTILE_PATHS) {
      if (target === '' || /[\r\n ]/.test(target)) continue; // not expressible as one request line
      const r = await rawCall(gw.port, f.ca, f.certs.web, `GET ${target} HTTP/1.1\r\nHost: api.payments\r\nConnection: close\r\n\r\n`);
      assert.equal(r.status, 400, `${JSON.stringify(target)} got ${r.status}: ${r.text.slice(0, 200)}`);
    }
    assert.equal(f.payments.received.size, seen, 'a hostile path reached the upstream');
    // the ones our own check refused (not the HTTP parser) say why
    const r = await rawCall(gw.port, f.ca, f.certs.web, 'GET /v1/%2E%2E/admin HTTP/1.1\r\nHost: api.payments\r\nConnection: close\r\n\r\n');
    assert.match(r.text, /"code":"ERR_PATH_REJECTED"/);
    const ev = (await auditEvents()).filter((e) => e['gatehouse.error_code'] === 'ERR_PATH_REJECTED');
    assert.ok(ev.length > 0 && ev.every((e) => e['gatehouse.reasons']?.[0] === 'bad-path'));
  });

  it('proxies an allowed WebSocket and refuses a denied one', async () => {
    const open = (cert: typeof f.certs.web) =>
      new WebSocket(`wss://127.0.0.1:${gw.port}/ws`, { ca: f.ca.certPem, cert: cert.certPem, key: cert.keyPem, headers: { host: 'api.payments' } });
    const ws = open(f.certs.web);
    const messages: string[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (m: Buffer) => {
        messages.push(m.toString());
        if (messages.length === 1) ws.send('ping');
        if (messages.length === 2) resolve();
      });
      ws.on('error', reject);
    });
    ws.close();
    assert.deepEqual(JSON.parse(messages[0]!), { hello: `spiffe://${TD}/ns/frontend/sa/web` });
    assert.equal(messages[1], 'echo:ping');

    const denied = open(f.certs.batch);
    const status = await new Promise<number>((resolve, reject) => {
      denied.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      denied.on('open', () => reject(new Error('denied WebSocket opened')));
      denied.on('error', () => undefined);
    });
    denied.terminate();
    assert.equal(status, 403);
  });

  it('hot reload: a policy applied to the store changes the verdict of the next request', async () => {
    assert.equal((await req({ cert: f.certs.web, method: 'POST', path: '/v1/charges', body: '{}' })).status, 200);
    const version = gw.app.policy.version;
    const swapped = new Promise<void>((resolve) => {
      const off = gw.app.policy.onSwap(() => {
        off();
        resolve();
      });
    });
    const without = PAYMENTS_POLICY.replace(/ {2}- name: web-creates-charges[\s\S]*?(?= {2}- name: frontend-reads)/, '');
    await applyPolicySources(gw.store, [{ file: path.join(f.dir, 'policies', 'payments.yaml'), text: without }]);
    await swapped;
    assert.ok(gw.app.policy.version > version);
    assert.equal((await req({ cert: f.certs.web, method: 'POST', path: '/v1/charges', body: '{}' })).status, 403);
    // a set that does not compile is refused and the last good one stays
    await assert.rejects(applyPolicySources(gw.store, [{ file: path.join(f.dir, 'policies', 'payments.yaml'), text: 'namespace: payments\nrules: [ { name: x, frm: [] } ]\n' }]), { code: 'ERR_POLICY_INVALID' });
    await applyPolicySources(gw.store, [
      { file: path.join(f.dir, 'policies', 'payments.yaml'), text: PAYMENTS_POLICY },
      { file: path.join(f.dir, 'policies', 'reports.yaml'), text: (await import('./fixture.js')).REPORTS_POLICY },
    ]);
    for (let i = 0; i < 100 && gw.app.policy.version === version; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await req({ cert: f.certs.web, method: 'POST', path: '/v1/charges', body: '{}' })).status, 200);
  });

  it('a revoked certificate is refused at once, and its open connections are closed', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: f.ca.certPem, cert: f.certs.revoked.certPem, key: f.certs.revoked.keyPem });
    try {
      const first = await req({ cert: f.certs.revoked, path: '/v1/charges/1', agent });
      assert.equal(first.status, 200);
      const socketsBefore = Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length;
      assert.equal(socketsBefore, 1, 'keep-alive connection open');
      const closed = new Promise<void>((resolve) => {
        const s = Object.values(agent.freeSockets).flat()[0];
        s?.once('close', () => resolve());
      });
      await revokeCertificate(gw.store, { serial: f.certs.revoked.serial, notAfter: f.certs.revoked.notAfter, clock: systemClock, reason: 'keyCompromise' });
      await closed;
      assert.ok(gw.app.revocations?.isRevoked(f.certs.revoked.serial));
      await assert.rejects(req({ cert: f.certs.revoked, path: '/v1/charges/1' }));
      const crl = await req({ cert: f.certs.web, path: '/.gatehouse/crl.pem' });
      assert.equal(crl.status, 200);
      assert.match(crl.body, /^-----BEGIN X509 CRL-----/);
      const ev = (await auditEvents()).filter((e) => e['event.reason'] === 'CERT_REVOKED');
      assert.ok(ev.length >= 1, 'refused revoked handshake audited');
    } finally {
      agent.destroy();
    }
  });

  it('serves request and decision metrics on the admin listener', async () => {
    const res = await fetch(`http://127.0.0.1:${gw.adminPort}/metrics`);
    const body = await res.text();
    assert.equal(res.status, 200);
    assert.match(body, /gatehouse_requests_total\{listener="service",route="payments\/api",decision="allow",status="200"\} \d+/);
    assert.match(body, /gatehouse_requests_total\{listener="service",route="payments\/api",decision="deny",status="403"\} \d+/);
    assert.match(body, /gatehouse_decision_seconds_bucket/);
    assert.match(body, /gatehouse_upstream_seconds_bucket/);
    assert.match(body, /gatehouse_tls_handshake_failures_total/);
  });

  it('the gateway listener certificate comes from the CA and names the listener', async () => {
    const pem = await new Promise<string>((resolve, reject) => {
      const s = https.request({ host: '127.0.0.1', port: gw.port, ca: f.ca.certPem, cert: f.certs.web.certPem, key: f.certs.web.keyPem, path: '/.gatehouse/crl.pem', agent: false }, (res) => {
        const peer = (res.socket as TLSSocket).getPeerX509Certificate();
        res.resume();
        resolve(peer?.toString() ?? '');
      });
      s.on('error', reject);
      s.end();
    });
    const cert = new X509Certificate(pem);
    assert.ok(cert.checkIssued(f.ca.certificate));
    assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.match(cert.subjectAltName ?? '', /DNS:localhost/);
    assert.match(cert.subjectAltName ?? '', new RegExp(`URI:spiffe://${TD}/ns/gatehouse/sa/gateway`));
  });
});
