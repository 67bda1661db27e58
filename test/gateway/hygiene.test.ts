// Attacks through the seams between the gateway and its upstreams, on both listeners, over
// HTTP and WebSocket: an upstream that sets the gateway's session cookie (session fixation:
// the browser would be signed in as someone else), and identity headers spoofed with
// underscores (WSGI/CGI/Rack read X_Gatehouse_Roles as X-Gatehouse-Roles).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { APP_HOST, DROP_HOST, APP_COOKIE_LINE, call, echo, openWebSocket, startGatewayFixture, type GatewayFixture } from './fixture.js';

function cookieNames(setCookie: string | string[] | undefined): string[] {
  return (setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]).map((l) => l.split('=')[0]!.trim());
}

describe('response hygiene: an upstream cannot set the gateway cookies', () => {
  let f: GatewayFixture;
  let cookie: string;
  before(async () => {
    f = await startGatewayFixture();
    cookie = (await f.session()).cookie;
  });
  after(async () => f.close());

  it('upstream Set-Cookie __Host-gatehouse on a plain answer (human listener): dropped, the session unchanged', async () => {
    const r = await call(f, { listener: 'human', cookie });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(cookieNames(r.headers['set-cookie']), ['app'], 'only the application cookie reaches the browser');
    assert.equal(r.headers['x-gatehouse-user'], undefined, 'no x-gatehouse-* claims from the upstream');
    // the browser still holds its own session, which still works
    const again = await call(f, { listener: 'human', cookie });
    assert.equal(again.status, 200);
    // and the upstream never saw the session cookie, only the application's
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(seen.headers.cookie, 'theme=dark');
  });

  it('upstream Set-Cookie __Host-gatehouse on a 101 (human listener WebSocket): dropped', async () => {
    const s = await openWebSocket(f, { listener: 'human', cookie });
    try {
      assert.deepEqual(cookieNames(s.upgradeHeaders['set-cookie']), ['app']);
      assert.equal(await echo(s, 'hi'), 'echo:hi');
    } finally {
      s.ws.terminate();
    }
  });

  it('the service listener applies the same response hygiene, HTTP and WebSocket', async () => {
    const r = await call(f, { listener: 'service' });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(cookieNames(r.headers['set-cookie']), ['app']);
    const s = await openWebSocket(f, { listener: 'service' });
    try {
      assert.deepEqual(cookieNames(s.upgradeHeaders['set-cookie']), ['app']);
    } finally {
      s.ws.terminate();
    }
    assert.ok(APP_COOKIE_LINE.startsWith('app='));
  });
});

describe('request hygiene: identity headers spoofed with underscores', () => {
  let f: GatewayFixture;
  let viewer: string;
  let viewerOnDrop: string;
  before(async () => {
    f = await startGatewayFixture();
    viewer = (await f.session('vic', { payments: ['ops-admin'] })).cookie;
    viewerOnDrop = (await f.session('vic', { payments: ['ops-admin'] }, DROP_HOST)).cookie;
  });
  after(async () => f.close());

  const spoof = { x_gatehouse_roles: 'ops-admin,security-admin', X_Gatehouse_User: 'root' };

  for (const listener of ['human', 'service'] as const) {
    it(`${listener}: x_gatehouse_roles is refused with 400 ERR_HEADER_REJECTED, audited once, never forwarded`, async () => {
      delete f.upstream.last.http;
      const r = await call(f, { listener, cookie: viewer, headers: spoof });
      assert.equal(r.status, 400, r.body);
      const body = JSON.parse(r.body) as { error: { code: string }; requestId: string };
      assert.equal(body.error.code, 'ERR_HEADER_REJECTED');
      assert.equal(f.upstream.last.http, undefined, 'the upstream got nothing');
      const events = (await f.events()).filter((e) => e['gatehouse.request_id'] === body.requestId);
      assert.equal(events.length, 1, JSON.stringify(events));
      assert.equal(events[0]!['gatehouse.error_code'], 'ERR_HEADER_REJECTED');
      assert.equal(events[0]!['event.outcome'], 'failure');
    });

    it(`${listener}: the same spoof on a WebSocket upgrade is refused`, async () => {
      await assert.rejects(openWebSocket(f, { listener, cookie: viewer, headers: spoof }), (e: { status?: number; body?: string }) => e.status === 400 && (e.body ?? '').includes('ERR_HEADER_REJECTED'));
    });

    it(`${listener}: a route with headersWithUnderscores: drop forwards without them, and only the gateway's own identity headers arrive`, async () => {
      const host = listener === 'human' ? DROP_HOST : 'drop.payments';
      const cookie = listener === 'human' ? viewerOnDrop : viewer;
      const r = await call(f, { listener, host, cookie, headers: { ...spoof, 'x-gatehouse-subject': 'spoofed', 'X-Forwarded-For': '10.0.0.1' } });
      assert.equal(r.status, 200, r.body);
      const seen = f.upstream.last.http!;
      for (const name of Object.keys(seen)) assert.ok(!name.includes('_'), `upstream got ${name}`);
      assert.notEqual(seen['x-gatehouse-subject'], 'spoofed');
      assert.equal(seen['x-forwarded-for'], '127.0.0.1');
      if (listener === 'human') {
        assert.equal(seen['x-gatehouse-roles'], 'ops-admin');
        assert.equal(seen['x-gatehouse-user'], 'vic');
      } else {
        assert.equal(seen['x-gatehouse-roles'], undefined);
        assert.equal(seen['x-gatehouse-subject'], 'spiffe://example.org/ns/frontend/sa/web');
      }
      const s = await openWebSocket(f, { listener, host, cookie, headers: spoof });
      try {
        for (const name of Object.keys(f.upstream.last.ws!)) assert.ok(!name.includes('_'), `upstream WebSocket got ${name}`);
      } finally {
        s.ws.terminate();
      }
    });
  }

  it('human: a forged x-gatehouse-user / x-gatehouse-roles in the canonical spelling is replaced by the session', async () => {
    const r = await call(f, { listener: 'human', host: APP_HOST, cookie: viewer, headers: { 'x-gatehouse-user': 'root', 'x-gatehouse-roles': 'security-admin' } });
    assert.equal(r.status, 200);
    assert.equal(f.upstream.last.http!['x-gatehouse-user'], 'vic');
    assert.equal(f.upstream.last.http!['x-gatehouse-roles'], 'ops-admin');
  });
});
