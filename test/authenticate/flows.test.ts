// Redirects (no open redirect), step-up, several route hosts with one sign-in (a one-time code
// handed to the app host's /.gatehouse/callback, bound to the browser by a state cookie),
// forward-auth for nginx/Traefik/Caddy, and the per-address rate limit.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SESSION_COOKIE, STATE_COOKIE } from '../../src/authenticate/index.js';
import { errorCode as code, makeEnv, startGateway, enroll, attestedKey, login, jar, advance, LOGIN, type Env, type Gateway, type Enrolled } from './harness.js';

describe('redirects, step-up, forward-auth', () => {
  let env: Env;
  let gw: Gateway;
  let u: Enrolled;

  before(async () => {
    env = await makeEnv();
    gw = await startGateway(env, { login: 'login: { rateLimit: { max: 10000, window: 1m }, forwardAuth: { trustedProxies: ["127.0.0.1"] } }' });
    u = await enroll(env, gw, 'alice', ['payments:ops-admin'], attestedKey(env));
  });
  after(async () => {
    await gw?.close();
    await env?.close();
  });

  it('refuses open redirects: other hosts, scheme-relative, backslashes, javascript:, gateway paths', async () => {
    for (const rd of ['https://evil.example.net/', '//evil.example.net/x', '/\\evil.example.net', 'javascript:alert(1)', 'http://app.example.org/', '/.gatehouse/logout', ' /x', 'https://app.example.org/x']) {
      const page = await gw.request({ url: `/.gatehouse/login?rd=${encodeURIComponent(rd)}`, accept: 'text/html' });
      assert.equal(page.status, 400, `page accepted ${rd}`);
      assert.match(page.body, /ERR_REDIRECT_REFUSED/);
      const api = await gw.request({ url: '/.gatehouse/login/start', cookies: jar(), body: { username: 'alice', rd } });
      assert.equal(code(api), 'ERR_REDIRECT_REFUSED', `start accepted ${rd}`);
    }
    const ok = await gw.request({ url: `/.gatehouse/login?rd=${encodeURIComponent('/dash?x=1')}`, accept: 'text/html' });
    assert.equal(ok.status, 200);
    assert.match(ok.body, /data-rd="\/dash\?x=1"/);
    const start = await gw.request({ url: '/.gatehouse/start?rd=https%3A%2F%2Fevil.example.net%2F', host: 'app.example.org', accept: 'text/html' });
    assert.equal(start.status, 400);
  });

  it('step-up: a route with stepUp 5m demands a fresh WebAuthn assertion, then lets through', async () => {
    const { cookies } = await login(env, gw, u, { host: 'admin.example.org' });
    assert.equal((await gw.request({ url: '/ops', host: 'admin.example.org', cookies, accept: 'application/json' })).status, 200);
    await advance(env, 5 * 60_000 + 1_000);
    const api = await gw.request({ url: '/ops', host: 'admin.example.org', cookies, accept: 'application/json' });
    assert.equal(api.status, 401);
    assert.equal(code(api), 'ERR_STEP_UP_REQUIRED');
    const browser = await gw.request({ url: '/ops?a=1', host: 'admin.example.org', cookies, accept: 'text/html' });
    assert.equal(browser.status, 303);
    assert.equal(browser.headers.location, `/.gatehouse/step-up?rd=${encodeURIComponent('/ops?a=1')}`);
    const page = await gw.request({ url: String(browser.headers.location), host: 'admin.example.org', cookies, accept: 'text/html' });
    assert.equal(page.status, 200);
    assert.match(page.body, /id="stepup-webauthn"/);
    const s = await gw.request({ url: '/.gatehouse/step-up/start', host: 'admin.example.org', cookies, body: { rd: '/ops?a=1' } });
    assert.equal(s.status, 200, s.body);
    const w = await gw.request({ url: '/.gatehouse/step-up/webauthn', host: 'admin.example.org', cookies, body: { response: u.key.authenticate(s.json<{ options: { challenge: string } }>().options, 'https://admin.example.org') } });
    assert.equal(w.status, 200, w.body);
    assert.deepEqual(w.json(), { redirect: '/ops?a=1' });
    assert.equal((await gw.request({ url: '/ops', host: 'admin.example.org', cookies, accept: 'application/json' })).status, 200);
    // the plain route does not ask
    await advance(env, 6 * 60_000);
    assert.equal((await gw.request({ url: '/ops', host: 'admin.example.org', cookies, accept: 'application/json' })).status, 401);
  });

  it('forward-auth: 200 with identity headers, 401 without a session, 403 by policy or from an untrusted front', async () => {
    await advance(env, 60_000);
    const { cookies } = await login(env, gw, u, { host: 'app.example.org', totpAt: env.clock.now() });
    const fwd = { 'x-forwarded-host': 'app.example.org', 'x-forwarded-uri': '/v1/x?y=1', 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https' };
    const ok = await gw.request({ url: '/.gatehouse/auth/verify', host: 'gatehouse.internal', cookies, origin: null, headers: fwd });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.headers['x-gatehouse-user'], 'alice');
    assert.equal(ok.headers['x-gatehouse-roles'], 'ops-admin');
    assert.equal(ok.headers['x-gatehouse-acr'], 'aal3');
    assert.match(String(ok.headers.authorization), /^Bearer eyJ/);
    const none = await gw.request({ url: '/.gatehouse/auth/verify', host: 'gatehouse.internal', origin: null, headers: fwd });
    assert.equal(none.status, 401);
    assert.equal(code(none), 'ERR_SESSION_REQUIRED');
    const bob = await enroll(env, gw, 'bob', ['ops:viewer']);
    await advance(env, 30_000);
    const b = await login(env, gw, bob, { host: 'app.example.org', totpAt: env.clock.now() });
    const denied = await gw.request({ url: '/.gatehouse/auth/verify', host: 'gatehouse.internal', cookies: b.cookies, origin: null, headers: fwd });
    assert.equal(denied.status, 403);
    assert.equal(code(denied), 'ERR_POLICY_DENIED');
    const noHost = await gw.request({ url: '/.gatehouse/auth/verify', host: 'gatehouse.internal', cookies, origin: null, headers: { 'x-forwarded-uri': '/' } });
    assert.equal(code(noHost), 'ERR_FORWARD_AUTH_REFUSED');
    // a revoked (logged out) session is refused at once
    await gw.request({ url: '/.gatehouse/logout', host: 'app.example.org', cookies: b.cookies, body: {} });
    const revoked = jar();
    revoked.jar.set(SESSION_COOKIE, 'A'.repeat(43));
    assert.equal((await gw.request({ url: '/.gatehouse/auth/verify', host: 'gatehouse.internal', cookies: revoked, origin: null, headers: fwd })).status, 401);
    // Traefik/Caddy mode: a browser is sent to sign in
    const redirect = await gw.request({ url: '/.gatehouse/auth/verify?redirect=1', host: 'gatehouse.internal', origin: null, headers: fwd, accept: 'text/html' });
    assert.equal(redirect.status, 303);
    assert.equal(redirect.headers.location, `/.gatehouse/login?rd=${encodeURIComponent('/v1/x?y=1')}`);
  });

  it('forward-auth answers only the configured front proxies', async () => {
    const strict = await startGateway(env, { replicaId: 'h-strict', login: 'login: { forwardAuth: { trustedProxies: ["10.9.9.9"] } }' });
    try {
      const r = await strict.request({ url: '/.gatehouse/auth/verify', host: 'gatehouse.internal', origin: null, headers: { 'x-forwarded-host': 'app.example.org', 'x-forwarded-uri': '/' } });
      assert.equal(r.status, 403);
      assert.equal(code(r), 'ERR_FORWARD_AUTH_REFUSED');
    } finally {
      await strict.close();
    }
  });

  it('rate-limits the login endpoints per address', async () => {
    const limited = await startGateway(env, { replicaId: 'h-rl', login: 'login: { rateLimit: { max: 3, window: 1m } }' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await limited.request({ url: '/.gatehouse/login/start', cookies: jar(), body: { username: `nobody${i}` } })).status);
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
      const r = await limited.request({ url: '/.gatehouse/login/start', cookies: jar(), body: { username: 'nobody' } });
      assert.equal(code(r), 'ERR_RATE_LIMITED');
    } finally {
      await limited.close();
    }
  });
});

describe('one sign-in for several route hosts (login.origin)', () => {
  let env: Env;
  let gw: Gateway;
  let u: Enrolled;

  before(async () => {
    env = await makeEnv();
    gw = await startGateway(env, { login: `login: { origin: "${LOGIN}", rateLimit: { max: 10000, window: 1m } }` });
    u = await enroll(env, gw, 'alice', ['payments:ops-admin']);
  });
  after(async () => {
    await gw?.close();
    await env?.close();
  });

  it('app host -> login host -> one-time code -> app host cookie, bound to the browser by the state cookie', async () => {
    await advance(env, 30_000);
    const browser = jar();
    const r1 = await gw.request({ url: '/dash?x=1', host: 'app.example.org', cookies: browser, accept: 'text/html' });
    assert.equal(r1.status, 303);
    const to = new URL(String(r1.headers.location));
    assert.equal(to.origin, LOGIN);
    assert.equal(to.pathname, '/.gatehouse/login');
    assert.equal(to.searchParams.get('rd'), 'https://app.example.org/dash?x=1');
    const state = to.searchParams.get('state')!;
    assert.match(state, /^[0-9a-f]{64}$/);
    const appState = browser.jar.get(STATE_COOKIE)!;
    assert.ok(appState, 'the app host set its state cookie');
    // the same browser, now on the login host (cookies are per host: keep the app host's apart)
    const loginJar = jar();
    const { redirect } = await login(env, gw, u, { host: 'login.example.org', cookies: loginJar, rd: to.searchParams.get('rd')!, state, totpAt: env.clock.now() });
    const cb = new URL(redirect);
    assert.equal(cb.origin, 'https://app.example.org');
    assert.equal(cb.pathname, '/.gatehouse/callback');
    // an attacker's browser (no state cookie) cannot use the code
    const thief = await gw.request({ url: cb.pathname + cb.search, host: 'app.example.org', cookies: jar(), accept: 'text/html' });
    assert.equal(thief.status, 401);
    assert.match(thief.body, /ERR_LOGIN_EXPIRED/);
    // and the code was single-use: sign in again for a fresh one
    await advance(env, 30_000);
    const loginJar2 = jar();
    const again = await login(env, gw, u, { host: 'login.example.org', cookies: loginJar2, rd: to.searchParams.get('rd')!, state, totpAt: env.clock.now() });
    const cb2 = new URL(again.redirect);
    const ok = await gw.request({ url: cb2.pathname + cb2.search, host: 'app.example.org', cookies: browser, accept: 'text/html' });
    assert.equal(ok.status, 303, ok.body);
    assert.equal(ok.headers.location, '/dash?x=1');
    assert.ok(browser.jar.get(SESSION_COOKIE), 'the app host has its own cookie');
    assert.equal(browser.jar.has(STATE_COOKIE), false);
    const reuse = await gw.request({ url: cb2.pathname + cb2.search, host: 'app.example.org', cookies: browser, accept: 'text/html' });
    assert.equal(reuse.status, 401, 'a code works once');
    const through = await gw.request({ url: '/dash?x=1', host: 'app.example.org', cookies: browser, accept: 'application/json' });
    assert.equal(through.status, 200, through.body);
    // logging out on the app host ends the sign-in on the login host too (one session)
    await gw.request({ url: '/.gatehouse/logout', host: 'app.example.org', cookies: browser, body: {} });
    await advance(env, 0);
    const me = await gw.request({ url: '/.gatehouse/session', host: 'login.example.org', cookies: loginJar2 });
    assert.equal(me.status, 401);
  });

  it('refuses a return address on another host without the state of a redirect from it', async () => {
    const r = await gw.request({ url: '/.gatehouse/login/start', cookies: jar(), body: { username: 'alice', rd: 'https://app.example.org/x' } });
    assert.equal(code(r), 'ERR_REDIRECT_REFUSED');
  });
});
