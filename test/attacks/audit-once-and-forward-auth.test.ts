// Exactly one audit event per decision: requests the pipeline never sees (methods the router does
// not know, CONNECT), a request audited as let through that never reached its upstream
// (Expect: 100-continue), upgrades, forward-auth; /metrics; and who may ask forward-auth.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { API, APP, call, codeOf, head, metrics, parseResponses, rawConnect, rawExchange, requestIdOf, sleep, startBench, type Bench, type TestSession } from './fixture.js';
import type { AuditEvent } from '../../src/contracts/audit.js';

let b: Bench;
let alice: TestSession;
let viewer: TestSession;
before(async () => {
  b = await startBench();
  alice = await b.session({ userId: 'alice' });
  viewer = await b.session({ userId: 'vic', roles: { payments: ['viewer'] } });
});
after(async () => b?.close());
beforeEach(() => b.upstream.reset());

async function newEvents(since: number): Promise<AuditEvent[]> {
  await sleep(50);
  return (await b.events()).slice(since);
}

/** requests_total samples for one listener, as "route decision status value" lines. */
async function requestSamples(listener: string): Promise<string[]> {
  return (await metrics(b))
    .split('\n')
    .filter((l) => l.startsWith('gatehouse_requests_total{') && l.includes(`listener="${listener}"`))
    .map((l) => l.replace(/^gatehouse_requests_total/, ''));
}

describe('attack: a decision with zero or two audit events', () => {
  it(
    'a method the router does not know (PURGE, LINK, UNLINK, NOTIFY) on a route host is refused with exactly one audit event',
    { todo: 'found by attack: fastify routes only its own method list; PURGE/LINK/... get its 404 ERR_NOT_FOUND with no audit event and no metric (the pipeline never runs)' },
    async () => {
      const failures: string[] = [];
      for (const method of ['PURGE', 'LINK', 'UNLINK', 'NOTIFY']) {
        const since = (await b.events()).length;
        const raw = await rawExchange(b, head(method, '/admin/users', [['Host', APP], ['Cookie', `__Host-gatehouse=${viewer.cookie}`], ['Connection', 'close']]), { listener: 'human' });
        const r = parseResponses(raw)[0];
        const id = requestIdOf(r?.body ?? '');
        const mine = (await newEvents(since)).filter((e) => e['gatehouse.request_id'] === id);
        if (mine.length !== 1) failures.push(`${method}: ${String(r?.status)} ${codeOf(r?.body ?? '') ?? ''}, ${mine.length} events`);
      }
      assert.deepEqual(b.upstream.seen, [], 'the upstream saw nothing');
      assert.deepEqual(failures, [], 'each refusal has exactly one audit event');
    },
  );

  it(
    'CONNECT on a listener is answered with a coded refusal and audited once',
    { todo: "found by attack: CONNECT has no 'connect' listener: Node destroys the socket without an answer, an audit event or a metric" },
    async () => {
      const since = (await b.events()).length;
      const raw = await rawExchange(b, `CONNECT ${API}:443 HTTP/1.1\r\nHost: ${API}\r\n\r\n`, { listener: 'service' });
      const r = parseResponses(raw)[0];
      const added = await newEvents(since);
      assert.ok(r !== undefined && r.status >= 400 && r.status < 500, `a coded 4xx, got ${JSON.stringify(raw.slice(0, 120))}`);
      assert.equal(added.length, 1, `one event, got ${JSON.stringify(added.map((e) => e['event.action']))}`);
    },
  );

  it(
    "Expect: 100-continue: a request audited as let through reaches its upstream (not a 502 the upstream never saw)",
    { todo: 'found by attack: Node answers 100 Continue, the expect header is forwarded and undici refuses it (NotSupportedError): 502 ERR_UPSTREAM_UNAVAILABLE, audited as success; every curl upload over 1 MiB fails' },
    async () => {
      const since = (await b.events()).length;
      const raw = await rawExchange(b, `POST /v1/charges HTTP/1.1\r\nHost: ${API}\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`, { listener: 'service' });
      const finals = parseResponses(raw).filter((r) => r.status >= 200);
      const added = (await newEvents(since)).filter((e) => e['event.action'] === 'proxy.request');
      assert.equal(added.length, 1, 'one decision event');
      assert.equal(added[0]!['event.outcome'], 'success', 'let through');
      assert.equal(finals[0]?.status, 200, `the upstream's answer, got ${JSON.stringify(finals.map((r) => `${r.status} ${r.body}`))}`);
      assert.equal(b.upstream.seen.length, 1, 'the upstream got the request');
    },
  );

  it('a WebSocket: one event when let through (its request id is the one the upstream got), one when refused', async () => {
    b.upstream.onUpgrade = (req, socket) => {
      socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      void req;
    };
    const since = (await b.events()).length;
    const ok = await rawConnect(b, { listener: 'human' });
    ok.socket.write(head('GET', '/ws', [['Host', APP], ['Cookie', `__Host-gatehouse=${alice.cookie}`], ['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==']]));
    assert.ok(await ok.waitFor('101'), `101, got ${ok.received().slice(0, 100)}`);
    ok.socket.destroy();
    const refused = await rawExchange(b, head('GET', '/admin/ws', [['Host', APP], ['Cookie', `__Host-gatehouse=${viewer.cookie}`], ['Connection', 'Upgrade'], ['Upgrade', 'websocket'], ['Sec-WebSocket-Version', '13'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==']]), { listener: 'human' });
    const refusedId = requestIdOf(parseResponses(refused)[0]?.body ?? '');
    const added = await newEvents(since);
    const upId = String(b.upstream.seen[0]?.headers['x-gatehouse-request-id']);
    assert.equal(added.filter((e) => e['gatehouse.request_id'] === upId).length, 1, `one event for the WebSocket let through: ${JSON.stringify(added)}`);
    assert.equal(added.filter((e) => e['gatehouse.request_id'] === refusedId).length, 1, 'one event for the refused one');
    assert.equal(added.filter((e) => e['event.action'] === 'proxy.upgrade').length, 2, 'no other upgrade events');
  });
});

describe('attack: forward-auth (/.gatehouse/auth/verify) header trust', () => {
  const verify = (cookie: string, fwd: Record<string, string>): ReturnType<typeof call> => call(b, { listener: 'human', path: '/.gatehouse/auth/verify', cookie, headers: fwd });

  it('allowed and denied forward-auth decisions: exactly one audit event each, with the forwarded host and path', async () => {
    const since = (await b.events()).length;
    const allowed = await verify(viewer.cookie, { 'x-forwarded-host': APP, 'x-forwarded-uri': '/v1/things', 'x-forwarded-method': 'GET' });
    const denied = await verify(viewer.cookie, { 'x-forwarded-host': APP, 'x-forwarded-uri': '/admin/users', 'x-forwarded-method': 'GET' });
    assert.equal(allowed.status, 200, allowed.body);
    assert.equal(denied.status, 403, denied.body);
    const added = await newEvents(since);
    const a = added.filter((e) => e['gatehouse.request_id'] === allowed.headers['x-gatehouse-request-id']);
    const d = added.filter((e) => e['gatehouse.request_id'] === requestIdOf(denied.body));
    assert.equal(a.length, 1, `allowed: ${JSON.stringify(added)}`);
    assert.equal(d.length, 1, `denied: ${JSON.stringify(added)}`);
    assert.equal(a[0]!['url.path'], '/v1/things');
    assert.equal(d[0]!['url.path'], '/admin/users');
    assert.equal(a[0]!['gatehouse.forward_auth'], true);
  });

  it('forward-auth applies path safety and the host binding of the session to what the front proxy forwards', async () => {
    const bad = await verify(viewer.cookie, { 'x-forwarded-host': APP, 'x-forwarded-uri': '/v1/../admin/users' });
    assert.equal(bad.status, 403, bad.body);
    assert.equal(codeOf(bad.body), 'ERR_PATH_REJECTED');
    const otherHost = await verify(viewer.cookie, { 'x-forwarded-host': 'other.example.org', 'x-forwarded-uri': '/v1/things' });
    assert.equal(otherHost.status, 401, otherHost.body);
    assert.equal(codeOf(otherHost.body), 'ERR_SESSION_EXPIRED');
  });

  it(
    'without login.forwardAuth.trustedProxies, a browser calling verify directly is refused instead of handed the token minted for the upstream',
    { todo: 'found by attack: trustedProxies unset means anyone may call /.gatehouse/auth/verify: any signed-in client gets a bearer token minted for the upstream (usable on any path there) plus x-gatehouse-* headers' },
    async () => {
      const r = await verify(viewer.cookie, { 'x-forwarded-host': APP, 'x-forwarded-uri': '/v1/things' });
      assert.equal(r.headers.authorization, undefined, `a minted upstream token reached a direct client: ${String(r.headers.authorization).slice(0, 30)}...`);
      assert.equal(r.status, 403, r.body);
      assert.equal(codeOf(r.body), 'ERR_FORWARD_AUTH_REFUSED');
    },
  );

  it(
    '/metrics counts forward-auth decisions let through as it counts their denials',
    { todo: 'found by attack: Pipeline.decide() logs allowed() (no metric) and never answered(): forward-auth allows are missing from gatehouse_requests_total while denials are counted' },
    async () => {
      const before = await requestSamples('human');
      const r = await verify(alice.cookie, { 'x-forwarded-host': APP, 'x-forwarded-uri': '/v1/things' });
      assert.equal(r.status, 200, r.body);
      const after = await requestSamples('human');
      const allowLines = after.filter((l) => l.includes('decision="allow"'));
      assert.notDeepEqual(allowLines, before.filter((l) => l.includes('decision="allow"')), `no allow counted: ${JSON.stringify(after)}`);
    },
  );
});
