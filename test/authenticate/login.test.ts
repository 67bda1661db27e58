// Sign-in over HTTP: WebAuthn with user verification then TOTP, a session cookie, the proxy to
// an upstream with a minted token (amr, acr, sid), and every refusal with its code.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { text } from '../../src/store/index.js';
import { SESSION_COOKIE, LOGIN_COOKIE } from '../../src/authenticate/index.js';
import { makeEnv, startGateway, enroll, attestedKey, login, jar, totp, advance, auditEvents, LOGIN, type Env, type Gateway, type Enrolled } from './harness.js';

describe('login (WebAuthn + TOTP) and the human listener', () => {
  let env: Env;
  let gw: Gateway;
  let alice: Enrolled;

  before(async () => {
    env = await makeEnv();
    gw = await startGateway(env);
    // a key whose attestation verifies, and a hardware OTP token: what aal3 needs
    alice = await enroll(env, gw, 'alice', ['payments:ops-admin'], attestedKey(env));
  });
  after(async () => {
    await gw?.close();
    await env?.close();
  });

  async function startLogin(user: Enrolled, cookies = jar(), host = 'login.example.org') {
    const r = await gw.request({ url: '/.gatehouse/login/start', host, cookies, body: { username: user.id, rd: '/' } });
    assert.equal(r.status, 200, r.body);
    return { cookies, options: r.json<{ next: string; options: { challenge: string; rpId: string; userVerification: string; allowCredentials: { id: string }[] } }>() };
  }

  it('signs in with both factors; the cookie is __Host-, Secure, HttpOnly, SameSite=Strict; the store holds only its hash', async () => {
    const cookies = jar();
    const start = await gw.request({ url: '/.gatehouse/login/start', cookies, body: { username: 'alice', rd: '/reports?x=1' } });
    assert.equal(start.status, 200, start.body);
    const s = start.json<{ next: string; options: { challenge: string; userVerification: string; rpId: string } }>();
    assert.equal(s.next, 'webauthn-uv');
    assert.equal(s.options.userVerification, 'required');
    assert.equal(s.options.rpId, 'example.org');
    const w = await gw.request({ url: '/.gatehouse/login/webauthn', cookies, body: { response: alice.key.authenticate(s.options, LOGIN) } });
    assert.equal(w.status, 200, w.body);
    assert.deepEqual(w.json(), { next: 'totp' });
    assert.equal(cookies.jar.has(SESSION_COOKIE), false, 'no session after one factor');
    const t = await gw.request({ url: '/.gatehouse/login/totp', cookies, body: { code: totp(alice.seed, env.clock.now() + 30_000) } });
    assert.equal(t.status, 200, t.body);
    assert.deepEqual(t.json(), { redirect: '/reports?x=1' });
    const setCookie = ([] as string[]).concat(t.headers['set-cookie'] as string[]).find((c) => c.startsWith(`${SESSION_COOKIE}=`))!;
    assert.match(setCookie, /^__Host-gatehouse=[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    const id = cookies.jar.get(SESSION_COOKIE)!;
    assert.equal(cookies.jar.has(LOGIN_COOKIE), false, 'the pending sign-in cookie is cleared');
    const me = await gw.request({ url: '/.gatehouse/session', cookies });
    assert.equal(me.status, 200, me.body);
    const view = me.json<{ user: string; amr: string[]; acr: string; roles: Record<string, string[]> }>();
    assert.equal(view.user, 'alice');
    assert.deepEqual(view.amr, ['hwk', 'user', 'otp', 'mfa']);
    assert.equal(view.acr, 'aal3');
    const dump = (await env.store.range({ prefix: '/gatehouse/' })).kvs.map((kv) => text(kv.key) + text(kv.value)).join('\n');
    assert.equal(dump.includes(id), false, 'the session id itself must never be stored');
    assert.ok(dump.includes(`/gatehouse/sessions/`), 'the session is stored by hash');
  });

  it('proxies to the upstream with a minted token carrying amr, acr and sid, and without the gateway cookies', async () => {
    await advance(env, 60_000);
    const { cookies } = await login(env, gw, alice, { host: 'app.example.org' });
    cookies.jar.set('app-pref', 'dark');
    const res = await gw.request({ url: '/v1/things?y=2', host: 'app.example.org', cookies, accept: 'application/json' });
    assert.equal(res.status, 200, res.body);
    const echo = res.json<{ url: string; headers: Record<string, string> }>();
    assert.equal(echo.url, '/v1/things?y=2');
    assert.equal(echo.headers['x-gatehouse-user'], 'alice');
    assert.equal(echo.headers['x-gatehouse-roles'], 'ops-admin');
    assert.equal(echo.headers['x-gatehouse-acr'], 'aal3');
    assert.equal(echo.headers.cookie, 'app-pref=dark', 'the session cookie must not reach the upstream');
    const claims = decodeJwt(echo.headers.authorization!.replace(/^Bearer /, ''));
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.aud, 'spiffe://example.org/ns/payments/sa/api');
    assert.deepEqual(claims.amr, ['hwk', 'mfa', 'otp', 'user']);
    assert.equal(claims.acr, 'aal3');
    assert.equal(claims.sid, echo.headers['x-gatehouse-sid']);
    assert.deepEqual(claims.roles, ['ops-admin']);
  });

  it('a browser without a session is redirected to sign in and back; an API client gets 401 JSON', async () => {
    const browser = await gw.request({ url: '/dash?tab=1', host: 'app.example.org', accept: 'text/html,application/xhtml+xml' });
    assert.equal(browser.status, 303);
    assert.equal(browser.headers.location, `/.gatehouse/login?rd=${encodeURIComponent('/dash?tab=1')}`);
    const api = await gw.request({ url: '/dash', host: 'app.example.org', accept: 'application/json' });
    assert.equal(api.status, 401);
    assert.equal(api.json<{ error: { code: string } }>().error.code, 'ERR_SESSION_REQUIRED');
    const forged = await gw.request({ url: '/dash', host: 'app.example.org', accept: 'application/json', headers: { cookie: `${SESSION_COOKIE}=${'A'.repeat(43)}` } });
    assert.equal(forged.json<{ error: { code: string } }>().error.code, 'ERR_SESSION_EXPIRED');
  });

  it('a session cookie is good only on the host that set it', async () => {
    await advance(env, 60_000);
    const { cookies } = await login(env, gw, alice, { host: 'app.example.org' });
    const elsewhere = await gw.request({ url: '/x', host: 'admin.example.org', cookies, accept: 'application/json' });
    assert.equal(elsewhere.status, 401);
    assert.equal(elsewhere.json<{ error: { code: string } }>().error.code, 'ERR_SESSION_EXPIRED');
  });

  it('refuses a user without the role (403 JSON, access-denied page for a browser)', async () => {
    await advance(env, 60_000);
    const bob = await enroll(env, gw, 'bob', ['ops:viewer']);
    await advance(env, 60_000);
    const { cookies } = await login(env, gw, bob, { host: 'app.example.org' });
    const api = await gw.request({ url: '/v1/things', host: 'app.example.org', cookies, accept: 'application/json' });
    assert.equal(api.status, 403);
    assert.equal(api.json<{ error: { code: string } }>().error.code, 'ERR_POLICY_DENIED');
    const page = await gw.request({ url: '/v1/things', host: 'app.example.org', cookies, accept: 'text/html' });
    assert.equal(page.status, 403);
    assert.match(page.body, /id="denied-code" data-testid="denied-code">ERR_POLICY_DENIED</);
    assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
  });

  it('a challenge is good once: replaying the same assertion fails with ERR_WEBAUTHN_CHALLENGE', async () => {
    const { cookies, options } = await startLogin(alice);
    const response = alice.key.authenticate(options.options, LOGIN);
    const first = await gw.request({ url: '/.gatehouse/login/webauthn', cookies, body: { response } });
    assert.equal(first.status, 200, first.body);
    const other = await startLogin(alice);
    const replay = await gw.request({ url: '/.gatehouse/login/webauthn', cookies: other.cookies, body: { response } });
    assert.equal(replay.status, 401);
    assert.equal(replay.json<{ error: { code: string } }>().error.code, 'ERR_WEBAUTHN_CHALLENGE');
  });

  it('refuses a wrong origin and a wrong RP ID', async () => {
    const a = await startLogin(alice);
    const wrongOrigin = await gw.request({ url: '/.gatehouse/login/webauthn', cookies: a.cookies, body: { response: alice.key.authenticate(a.options.options, 'https://evil.example.net') } });
    assert.equal(wrongOrigin.json<{ error: { code: string } }>().error.code, 'ERR_WEBAUTHN_ORIGIN');
    const b = await startLogin(alice);
    const wrongRp = await gw.request({ url: '/.gatehouse/login/webauthn', cookies: b.cookies, body: { response: alice.key.authenticate(b.options.options, LOGIN, { rpId: 'evil.example.net' }) } });
    assert.equal(wrongRp.json<{ error: { code: string } }>().error.code, 'ERR_WEBAUTHN_RP_ID');
    const c = await startLogin(alice);
    const wrongType = await gw.request({ url: '/.gatehouse/login/webauthn', cookies: c.cookies, body: { response: alice.key.authenticate(c.options.options, LOGIN, { clientType: 'webauthn.create' }) } });
    assert.equal(wrongType.json<{ error: { code: string } }>().error.code, 'ERR_WEBAUTHN_INVALID');
  });

  it('refuses an assertion without user verification (UV=0)', async () => {
    const { cookies, options } = await startLogin(alice);
    alice.key.uv = false;
    try {
      const r = await gw.request({ url: '/.gatehouse/login/webauthn', cookies, body: { response: alice.key.authenticate(options.options, LOGIN) } });
      assert.equal(r.status, 401);
      assert.equal(r.json<{ error: { code: string } }>().error.code, 'ERR_WEBAUTHN_USER_VERIFICATION');
    } finally {
      alice.key.uv = true;
    }
  });

  it('refuses TOTP before WebAuthn (the configured order) and state-changing calls without or with a foreign Origin', async () => {
    // the five refusals above locked alice (regulation); the lock lasts 15 minutes
    const locked = await gw.request({ url: '/.gatehouse/login/start', cookies: jar(), body: { username: 'alice' } });
    assert.equal(locked.json<{ error: { code: string } }>().error.code, 'ERR_USER_LOCKED');
    await advance(env, 15 * 60_000 + 1_000);
    const { cookies } = await startLogin(alice);
    const early = await gw.request({ url: '/.gatehouse/login/totp', cookies, body: { code: '123456' } });
    assert.equal(early.status, 409);
    assert.equal(early.json<{ error: { code: string } }>().error.code, 'ERR_LOGIN_FACTOR_ORDER');
    const none = await gw.request({ url: '/.gatehouse/login/start', origin: null, body: { username: 'alice' } });
    assert.equal(none.status, 403);
    assert.equal(none.json<{ error: { code: string } }>().error.code, 'ERR_ORIGIN_REFUSED');
    const foreign = await gw.request({ url: '/.gatehouse/login/start', origin: 'https://evil.example.net', body: { username: 'alice' } });
    assert.equal(foreign.json<{ error: { code: string } }>().error.code, 'ERR_ORIGIN_REFUSED');
    // an allowed origin, but of another gateway host: still refused
    const crossHost = await gw.request({ url: '/.gatehouse/login/start', origin: 'https://app.example.org', body: { username: 'alice' } });
    assert.equal(crossHost.json<{ error: { code: string } }>().error.code, 'ERR_ORIGIN_REFUSED');
    const logout = await gw.request({ url: '/.gatehouse/logout', origin: 'https://evil.example.net', body: {} });
    assert.equal(logout.json<{ error: { code: string } }>().error.code, 'ERR_ORIGIN_REFUSED');
  });

  it('an unknown user gets the same kind of options as a real one (no enumeration) and fails at the key', async () => {
    const ghost = await gw.request({ url: '/.gatehouse/login/start', cookies: jar(), body: { username: 'ghost' } });
    assert.equal(ghost.status, 200);
    const o = ghost.json<{ next: string; options: { allowCredentials: { id: string }[] } }>();
    assert.equal(o.next, 'webauthn-uv');
    assert.equal(o.options.allowCredentials.length, 1);
    const again = await gw.request({ url: '/.gatehouse/login/start', cookies: jar(), body: { username: 'ghost' } });
    assert.deepEqual(again.json<typeof o>().options.allowCredentials, o.options.allowCredentials, 'stand-in ids are stable');
  });

  it('pages send a strict CSP, nosniff, same-origin referrer, HSTS, and name the elements the browser test drives', async () => {
    const page = await gw.request({ url: '/.gatehouse/login?rd=%2Fdash', accept: 'text/html' });
    assert.equal(page.status, 200);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['referrer-policy'], 'same-origin');
    assert.match(String(page.headers['strict-transport-security']), /max-age=\d+/);
    for (const id of ['username', 'login-webauthn', 'totp-code', 'totp-submit', 'error']) assert.match(page.body, new RegExp(`id="${id}"`));
    assert.doesNotMatch(page.body, /<script>|style=/, 'no inline script or style');
    const enrollPage = await gw.request({ url: '/.gatehouse/enroll', accept: 'text/html' });
    for (const id of ['enroll-webauthn', 'enroll-totp-code-1', 'enroll-totp-code-2', 'enroll-totp-submit', 'error']) assert.match(enrollPage.body, new RegExp(`id="${id}"`));
    const bundle = await gw.request({ url: '/.gatehouse/assets/webauthn.js' });
    assert.equal(bundle.status, 200);
    assert.match(bundle.body, /SimpleWebAuthnBrowser/);
    const script = await gw.request({ url: '/.gatehouse/assets/gatehouse.js' });
    assert.match(String(script.headers['content-type']), /javascript/);
  });

  it('serves over TLS with the CA-issued certificate naming the route and login hosts; logout form posts end the session', async () => {
    const at = await gw.app.listen();
    const { readFile } = await import('node:fs/promises');
    const https = await import('node:https');
    const ca = await readFile(`${env.dir}/certs/ca.pem`, 'utf8');
    const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port: at.human!.port, path: '/.gatehouse/login', servername: 'login.example.org', ca, headers: { host: 'login.example.org', accept: 'text/html' } }, (res) => {
          let t = '';
          res.on('data', (c: Buffer) => (t += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
        })
        .on('error', reject);
    });
    assert.equal(body.status, 200);
    assert.match(body.text, /id="login-webauthn"/);
    await advance(env, 60_000);
    const { cookies } = await login(env, gw, alice, { host: 'app.example.org' });
    const confirm = await gw.request({ url: '/.gatehouse/logout', host: 'app.example.org', cookies, accept: 'text/html' });
    assert.match(confirm.body, /id="logout"/);
    assert.match(confirm.body, /Signed in as <strong>alice<\/strong>/);
    const form = await gw.request({ method: 'POST', url: '/.gatehouse/logout', host: 'app.example.org', cookies, accept: 'text/html', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.status, 303);
    assert.equal(form.headers.location, '/.gatehouse/logged-out');
    assert.equal((await gw.request({ url: '/x', host: 'app.example.org', cookies, accept: 'application/json' })).status, 401);
  });

  it('audits every factor outcome and the session', async () => {
    const events = await auditEvents(env, gw);
    const actions = new Set(events.map((e) => `${e['event.action']}:${e['event.outcome']}`));
    for (const a of ['authentication.webauthn:success', 'authentication.webauthn:failure', 'authentication.totp:success', 'authentication.session:success', 'enrollment.webauthn:success', 'enrollment.totp:success', 'enrollment.complete:success']) {
      assert.ok(actions.has(a), `missing ${a}`);
    }
    const raw = JSON.stringify(events);
    assert.equal(raw.includes(alice.seed), false, 'no seed in the audit log');
  });
});
