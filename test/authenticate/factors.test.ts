// TOTP (window, replay, concurrency across replicas), regulation (lockout and release), the
// counter of a cloned authenticator, sessions (idle, absolute, logout and disable reaching a
// second replica).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SESSION_COOKIE, disableUser } from '../../src/authenticate/index.js';
import { text } from '../../src/store/index.js';
import { SoftAuthenticator } from './soft-authenticator.js';
import { errorCode as code, makeEnv, startGateway, enroll, login, jar, totp, advance, settle, auditEvents, LOGIN, type Env, type Gateway, type Enrolled } from './harness.js';

describe('factors, regulation and sessions', () => {
  let env: Env;
  let gw: Gateway;
  let gw2: Gateway;

  before(async () => {
    env = await makeEnv();
    gw = await startGateway(env, { replicaId: 'h-a' });
    gw2 = await startGateway(env, { replicaId: 'h-b' });
  });
  after(async () => {
    await gw2?.close();
    await gw?.close();
    await env?.close();
  });

  /** Passes WebAuthn; returns the cookies of the sign-in waiting for its TOTP code. */
  async function atTotp(u: Enrolled, g = gw) {
    const cookies = jar();
    const s = await g.request({ url: '/.gatehouse/login/start', cookies, body: { username: u.id } });
    assert.equal(s.status, 200, s.body);
    const w = await g.request({ url: '/.gatehouse/login/webauthn', cookies, body: { response: u.key.authenticate(s.json<{ options: { challenge: string } }>().options, LOGIN) } });
    assert.equal(w.status, 200, w.body);
    return cookies;
  }

  it('TOTP: accepts ±1 step, refuses 2 steps off and a wrong code', async () => {
    const u = await enroll(env, gw, 'tina', ['payments:ops-admin']);
    await advance(env, 90_000);
    const now = env.clock.now();
    const c1 = await atTotp(u);
    assert.equal(code(await gw.request({ url: '/.gatehouse/login/totp', cookies: c1, body: { code: totp(u.seed, now - 60_000) } })), 'ERR_TOTP_INVALID');
    assert.equal(code(await gw.request({ url: '/.gatehouse/login/totp', cookies: c1, body: { code: totp(u.seed, now + 60_000) } })), 'ERR_TOTP_INVALID');
    const wrong = String((Number(totp(u.seed, now)) + 1) % 1_000_000).padStart(6, '0');
    assert.equal(code(await gw.request({ url: '/.gatehouse/login/totp', cookies: c1, body: { code: wrong } })), 'ERR_TOTP_INVALID');
    const back = await gw.request({ url: '/.gatehouse/login/totp', cookies: c1, body: { code: totp(u.seed, now - 30_000) } });
    assert.equal(back.status, 200, back.body);
    const c2 = await atTotp(u);
    const fwd = await gw.request({ url: '/.gatehouse/login/totp', cookies: c2, body: { code: totp(u.seed, now + 30_000) } });
    assert.equal(fwd.status, 200, fwd.body);
  });

  it('TOTP: the same code twice is a replay, and an older step after a newer one too', async () => {
    const u = await enroll(env, gw, 'ugo', ['payments:ops-admin']);
    await advance(env, 30_000);
    const now = env.clock.now();
    const c1 = await atTotp(u);
    assert.equal((await gw.request({ url: '/.gatehouse/login/totp', cookies: c1, body: { code: totp(u.seed, now) } })).status, 200);
    const c2 = await atTotp(u);
    const replay = await gw.request({ url: '/.gatehouse/login/totp', cookies: c2, body: { code: totp(u.seed, now) } });
    assert.equal(replay.status, 401);
    assert.equal(code(replay), 'ERR_TOTP_REPLAY');
    const older = await gw.request({ url: '/.gatehouse/login/totp', cookies: c2, body: { code: totp(u.seed, now - 30_000) } });
    assert.equal(code(older), 'ERR_TOTP_REPLAY');
  });

  it('TOTP: the same code at the same instant on two replicas: exactly one wins', async () => {
    const u = await enroll(env, gw, 'vera', ['payments:ops-admin']);
    await advance(env, 30_000);
    const a = await atTotp(u, gw);
    const b = await atTotp(u, gw2);
    const c = totp(u.seed, env.clock.now());
    const results = await Promise.all([
      gw.request({ url: '/.gatehouse/login/totp', cookies: a, body: { code: c } }),
      gw2.request({ url: '/.gatehouse/login/totp', cookies: b, body: { code: c } }),
    ]);
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 401]);
    assert.equal(code(results.find((r) => r.status === 401)!), 'ERR_TOTP_REPLAY');
  });

  it('five failed factors in ten minutes lock the user (audited) on every replica; the lock lifts after 15 minutes', async () => {
    const u = await enroll(env, gw, 'walt', ['payments:ops-admin']);
    await advance(env, 30_000);
    const cookies = await atTotp(u);
    for (let i = 0; i < 5; i++) {
      const r = await gw.request({ url: '/.gatehouse/login/totp', cookies, body: { code: '000000' === totp(u.seed, env.clock.now()) ? '111111' : '000000' } });
      assert.equal(code(r), 'ERR_TOTP_INVALID');
    }
    const locked = await gw.request({ url: '/.gatehouse/login/totp', cookies, body: { code: totp(u.seed, env.clock.now()) } });
    assert.equal(locked.status, 429);
    assert.equal(code(locked), 'ERR_USER_LOCKED');
    const elsewhere = await gw2.request({ url: '/.gatehouse/login/start', cookies: jar(), body: { username: 'walt' } });
    assert.equal(code(elsewhere), 'ERR_USER_LOCKED', 'the other replica agrees');
    const events = await auditEvents(env, gw);
    assert.ok(events.some((e) => e['event.action'] === 'authentication.lockout' && e['user.id'] === 'walt'), 'lockout audited');
    await advance(env, 14 * 60_000);
    assert.equal(code(await gw.request({ url: '/.gatehouse/login/start', cookies: jar(), body: { username: 'walt' } })), 'ERR_USER_LOCKED');
    await advance(env, 61_000);
    const { redirect } = await login(env, gw, u, { totpAt: env.clock.now() });
    assert.equal(redirect, '/');
  });

  it('a counter that goes backwards locks the credential and raises a high-severity alert', async () => {
    const u = await enroll(env, gw, 'xena', ['payments:ops-admin']);
    await advance(env, 30_000);
    const clone = u.key.clone();
    await login(env, gw, u, { totpAt: env.clock.now() }); // the original moves the counter on
    const cookies = jar();
    const s = await gw.request({ url: '/.gatehouse/login/start', cookies, body: { username: 'xena' } });
    const r = await gw.request({ url: '/.gatehouse/login/webauthn', cookies, body: { response: clone.authenticate(s.json<{ options: { challenge: string } }>().options, LOGIN) } });
    assert.equal(r.status, 401);
    assert.equal(code(r), 'ERR_WEBAUTHN_COUNTER');
    const events = await auditEvents(env, gw);
    const alert = events.find((e) => e['event.kind'] === 'alert' && e['event.action'] === 'authentication.counter_regression' && e['user.id'] === 'xena');
    assert.ok(alert, 'alert event');
    assert.ok((alert['event.severity'] ?? 0) >= 7);
    // now even the genuine key is refused: the credential is locked
    const s2 = await gw.request({ url: '/.gatehouse/login/start', cookies, body: { username: 'xena' } });
    const r2 = await gw.request({ url: '/.gatehouse/login/webauthn', cookies, body: { response: u.key.authenticate(s2.json<{ options: { challenge: string } }>().options, LOGIN) } });
    assert.equal(code(r2), 'ERR_WEBAUTHN_CREDENTIAL_LOCKED');
  });

  it('an authenticator that always reports 0 is accepted (no counter)', async () => {
    const u = await enroll(env, gw, 'yuri', ['payments:ops-admin'], new SoftAuthenticator({ counter: 'zero' }));
    await advance(env, 30_000);
    await login(env, gw, u, { totpAt: env.clock.now() });
    await advance(env, 30_000);
    await login(env, gw, u, { totpAt: env.clock.now() });
  });

  describe('sessions', () => {
    let u: Enrolled;
    before(async () => {
      u = await enroll(env, gw, 'zoe', ['payments:ops-admin']);
    });
    const fresh = async (): Promise<ReturnType<typeof jar>> => {
      await advance(env, 30_000);
      return (await login(env, gw, u, { host: 'app.example.org', totpAt: env.clock.now() })).cookies;
    };
    const get = (g: Gateway, cookies: ReturnType<typeof jar>) => g.request({ url: '/x', host: 'app.example.org', cookies, accept: 'application/json' });

    it('ends after 15 minutes idle; activity keeps it alive (written back lazily, seen by the other replica)', async () => {
      const cookies = await fresh();
      for (let i = 0; i < 5; i++) {
        await advance(env, 10 * 60_000);
        assert.equal((await get(i % 2 === 0 ? gw : gw2, cookies)).status, 200, `request ${i} after 10 minutes`);
        await settle(env);
      }
      await advance(env, 15 * 60_000 + 1_000);
      const r = await get(gw, cookies);
      assert.equal(r.status, 401);
      assert.equal(code(r), 'ERR_SESSION_EXPIRED');
    });

    it('ends at the absolute lifetime (12 h) however active', async () => {
      const cookies = await fresh();
      for (let t = 0; t < 12 * 60; t += 10) {
        await advance(env, 10 * 60_000);
        const r = await get(gw, cookies);
        await settle(env); // the lazy write-back (lastSeen, lease keepalive) lands before time jumps again
        if (t + 10 < 12 * 60) assert.equal(r.status, 200, `at ${t + 10} min`);
        else assert.equal(code(r), 'ERR_SESSION_EXPIRED', 'at 12 h');
      }
    });

    it('logout on one replica ends the session on the other at once', async () => {
      const cookies = await fresh();
      assert.equal((await get(gw2, cookies)).status, 200);
      const out = await gw.request({ url: '/.gatehouse/logout', host: 'app.example.org', cookies, body: {}, accept: 'application/json' });
      assert.equal(out.status, 200, out.body);
      assert.deepEqual(out.json(), { ended: true });
      assert.equal(cookies.jar.get(SESSION_COOKIE), undefined, 'the cookie is cleared');
      const other = await fresh();
      // a session, used on replica b, then ended on replica a: its cookie replayed on b is refused
      const ended = await fresh();
      const endedId = ended.jar.get(SESSION_COOKIE)!;
      assert.equal((await get(gw2, ended)).status, 200);
      await gw.request({ url: '/.gatehouse/logout', host: 'app.example.org', cookies: ended, body: {} });
      await settle(env);
      const replay = jar();
      replay.jar.set(SESSION_COOKIE, endedId);
      const r = await get(gw2, replay);
      assert.equal(r.status, 401);
      assert.equal(code(r), 'ERR_SESSION_EXPIRED');
      assert.equal((await get(gw2, other)).status, 200, 'other sessions are untouched');
      const left = (await env.store.range({ prefix: '/gatehouse/sessions/' })).kvs.map((kv) => text(kv.value));
      assert.ok(left.every((v) => !v.includes(endedId)));
    });

    it('disabling a user ends their sessions on every replica and refuses them', async () => {
      const cookies = await fresh();
      assert.equal((await get(gw2, cookies)).status, 200);
      const r = await disableUser(env.store, 'zoe', env.clock);
      assert.ok(r.sessionsEnded >= 1);
      await settle(env);
      for (const g of [gw, gw2]) {
        const res = await get(g, cookies);
        assert.equal(res.status === 401 || res.status === 403, true, res.body);
        assert.match(code(res), /^ERR_(SESSION_EXPIRED|USER_DISABLED)$/);
      }
      const again = await gw.request({ url: '/.gatehouse/login/start', cookies: jar(), body: { username: 'zoe' } });
      const w = await gw.request({ url: '/.gatehouse/login/webauthn', cookies: jar(), body: { response: {} } });
      assert.equal(again.status, 200, 'a disabled user walks the same steps as anyone (no enumeration)...');
      assert.equal(code(w), 'ERR_LOGIN_EXPIRED');
      const cookies2 = jar();
      const s = await gw.request({ url: '/.gatehouse/login/start', cookies: cookies2, body: { username: 'zoe' } });
      const ww = await gw.request({ url: '/.gatehouse/login/webauthn', cookies: cookies2, body: { response: u.key.authenticate(s.json<{ options: { challenge: string } }>().options, LOGIN) } });
      assert.equal(ww.status, 403, '...and is refused once the key is proven');
      assert.equal(code(ww), 'ERR_USER_DISABLED');
    });
  });
});
