// Exactly one audit event per decision, whatever stage decided: a handshake without a
// certificate (once — not also as a 400 request that never happened), a path refused, an
// unknown host, a policy denial, a bad bearer token, a request the rate limiter refused (today
// not audited at all); and /metrics counts denials by the route they were for.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import http from 'node:http';
import { APP_HOST, call, startGatewayFixture, type GatewayFixture } from './fixture.js';

/** A raw request on a TLS connection (for targets Node's client would not send). */
function rawRequest(f: GatewayFixture, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: f.servicePort, ca: f.ca.certPem, cert: f.web.certPem, key: f.web.keyPem, servername: 'api.payments' }, () => s.write(head));
    let text = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => (text += d));
    s.on('error', reject);
    s.on('close', () => resolve(text));
  });
}

function requestIdOf(body: string): string {
  return (JSON.parse(body) as { requestId: string }).requestId;
}

describe('exactly one audit event per decision', () => {
  let f: GatewayFixture;
  before(async () => {
    f = await startGatewayFixture({ login: 'login: { rateLimit: { max: 2, window: 1m } }' });
  });
  after(async () => f.close());

  it('a handshake without a client certificate: one tls.handshake event, and no request event', async () => {
    const before = (await f.events()).length;
    await new Promise<void>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: f.servicePort, ca: f.ca.certPem, servername: 'api.payments' }, () => {
        // TLS 1.3: the client learns of the refusal only after it sends
        s.write('GET / HTTP/1.1\r\nhost: api.payments\r\n\r\n');
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 100));
    const added = (await f.events()).slice(before);
    assert.equal(added.length, 1, JSON.stringify(added));
    assert.equal(added[0]!['event.action'], 'tls.handshake');
    assert.equal(added[0]!['event.outcome'], 'failure');
  });

  it('path refused, unknown route, policy denied, bad bearer: one event each, with the request id', async () => {
    const answers = [
      await call(f, { listener: 'service', host: 'nowhere.payments', servername: 'api.payments' }),
      await call(f, { listener: 'service', method: 'DELETE' }),
      await call(f, { listener: 'service', headers: { authorization: 'Bearer not.a.token' } }),
      await call(f, { listener: 'human', host: APP_HOST }),
    ];
    const raw = await rawRequest(f, 'GET /v1/../admin HTTP/1.1\r\nhost: api.payments\r\nconnection: close\r\n\r\n');
    const rawBody = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    const ids = [...answers.map((a) => requestIdOf(a.body)), requestIdOf(rawBody)];
    const codes = [...answers.map((a) => (JSON.parse(a.body) as { error: { code: string } }).error.code), (JSON.parse(rawBody) as { error: { code: string } }).error.code];
    assert.deepEqual(codes, ['ERR_ROUTE_NOT_FOUND', 'ERR_POLICY_DENIED', 'ERR_TOKEN_INVALID', 'ERR_SESSION_REQUIRED', 'ERR_PATH_REJECTED']);
    const events = await f.events();
    for (const [i, id] of ids.entries()) {
      const mine = events.filter((e) => e['gatehouse.request_id'] === id);
      assert.equal(mine.length, 1, `${codes[i]}: ${JSON.stringify(mine)}`);
      assert.equal(mine[0]!['gatehouse.error_code'], codes[i]);
    }
  });

  it('an allowed request: one success event', async () => {
    const r = await call(f, { listener: 'service' });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    const mine = (await f.events()).filter((e) => e['gatehouse.request_id'] === seen.headers['x-gatehouse-request-id']);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!['event.outcome'], 'success');
  });

  it('a request refused by the rate limiter is audited, once', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(f, { listener: 'human', method: 'GET', path: '/.gatehouse/login?rd=/', headers: { accept: 'text/html' } });
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, [200, 200, 429]);
    const limited = (await f.events()).filter((e) => e['event.action'] === 'http.rate_limited');
    assert.equal(limited.length, 1, JSON.stringify(limited));
    assert.equal(limited[0]!['gatehouse.error_code'], 'ERR_RATE_LIMITED');
  });

  it('a flood of rate-limited requests from one client is one event a minute, saying how many it stands for (not an audit flood)', async () => {
    for (let i = 0; i < 20; i++) await call(f, { listener: 'human', method: 'GET', path: '/.gatehouse/login?rd=/', headers: { accept: 'text/html' } });
    assert.equal((await f.events()).filter((e) => e['event.action'] === 'http.rate_limited').length, 1, 'folded into the first minute');
    f.clock.advance(61_000);
    await call(f, { listener: 'human', method: 'GET', path: '/.gatehouse/login?rd=/', headers: { accept: 'text/html' } });
    const limited = (await f.events()).filter((e) => e['event.action'] === 'http.rate_limited');
    // the rate limiter's own window may have reopened: the next event comes only with a refusal
    assert.ok(limited.length <= 2, JSON.stringify(limited));
    if (limited.length === 2) assert.equal(limited[1]!['gatehouse.refusals_folded'], 20);
  });

  it('/metrics counts a denial under its route, not route="none"', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: f.adminPort, path: '/metrics' }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => resolve(body));
      }).on('error', reject);
    });
    assert.match(text, /gatehouse_requests_total\{listener="service",route="payments\/api",decision="deny",status="403"\} 1/);
    assert.match(text, /gatehouse_requests_total\{listener="service",route="payments\/api",decision="allow",status="200"\} 1/);
  });
});
