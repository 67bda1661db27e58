// Enrollment links and what they can store (issue 11 §2). Before: an older link still worked
// after a newer one was issued, even after the user had finished enrolling, and its WebAuthn
// step stored a second key on the *active* user at once: that key plus the user's own OTP
// token signed in. Now a new link voids every older one, finishing voids all, and a key is
// stored only together with the enrollment's OTP step.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addUser, getUser, issueEnrollment, parseRoles } from '../../src/authenticate/index.js';
import { text } from '../../src/store/index.js';
import { runStoreOp } from '../../src/admin/ops.js';
import { attestedKey, completeEnrollment, errorCode, giveHardwareToken, jar, login, makeEnv, startGateway, totp, LOGIN, type Env, type Gateway } from './harness.js';
import { SoftAuthenticator } from './soft-authenticator.js';

describe('enrollment links and the keys they store', () => {
  let env: Env;
  let gw: Gateway;

  before(async () => {
    env = await makeEnv();
    gw = await startGateway(env);
  });
  after(async () => {
    await gw?.close();
    await env?.close();
  });

  /** The attacker's half of an enrollment: register their own key with a link they hold. */
  async function registerWith(token: string, key: SoftAuthenticator) {
    const o = await gw.request({ url: '/.gatehouse/enroll/webauthn/options', body: { token } });
    if (o.status !== 200) return o;
    const options = o.json<{ options: { challenge: string; rp: { id: string }; user: { id: string } } }>().options;
    return gw.request({ url: '/.gatehouse/enroll/webauthn', body: { token, response: key.register(options, LOGIN) } });
  }

  async function credentialRecords(): Promise<string[]> {
    return (await env.store.range({ prefix: '/gatehouse/webauthn/' })).kvs.map((kv) => text(kv.value));
  }

  it('an older link of an active user cannot add a second security key that signs in with the user\'s own OTP token', async () => {
    const { enrollment: old } = await addUser(env.store, { id: 'olga', roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock);
    const hw = await giveHardwareToken(env, 'olga');
    // the administrator sends a fresh link (the first one leaked), and olga enrolls with it
    const fresh = (await runStoreOp('user.enroll', env.store, { id: 'olga', enrollmentTtlMs: 86_400_000 }, env.clock)) as { token: string };
    await completeEnrollment(env, gw, fresh.token, attestedKey(env), hw.seed);
    assert.equal((await getUser(env.store, 'olga'))?.status, 'active');
    const keysBefore = (await getUser(env.store, 'olga'))?.credentialIds ?? [];
    // whoever holds the old link tries to add their own key
    const mallory = new SoftAuthenticator();
    const start = await gw.request({ url: '/.gatehouse/enroll/start', body: { token: old.token } });
    assert.equal(errorCode(start), 'ERR_ENROLLMENT_INVALID');
    const reg = await registerWith(old.token, mallory);
    assert.equal(errorCode(reg), 'ERR_ENROLLMENT_INVALID');
    assert.deepEqual((await getUser(env.store, 'olga'))?.credentialIds, keysBefore, 'no key was added');
    // and their key plus olga's OTP code does not sign in (a key made outside the ceremony, if none got in)
    if (mallory.credentials.length === 0) mallory.register({ challenge: 'A'.repeat(43), rp: { id: 'example.org' }, user: { id: 'b2xnYQ' } }, LOGIN);
    env.clock.advance(60_000);
    await assert.rejects(login(env, gw, { id: 'olga', key: mallory, seed: hw.seed }), /login\/webauthn: .*ERR_WEBAUTHN_UNKNOWN_CREDENTIAL/);
  });

  it('a newer link voids the older one at once, before either is used', async () => {
    const { enrollment: first } = await addUser(env.store, { id: 'pia', roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock);
    await giveHardwareToken(env, 'pia');
    const second = await issueEnrollment(env.store, 'pia', { clock: env.clock, ttlMs: 86_400_000 });
    assert.equal(errorCode(await gw.request({ url: '/.gatehouse/enroll/start', body: { token: first.token } })), 'ERR_ENROLLMENT_INVALID');
    assert.equal((await gw.request({ url: '/.gatehouse/enroll/start', body: { token: second.token } })).status, 200);
    // the replaced link's record is gone from the store too
    const links = (await env.store.range({ prefix: '/gatehouse/enrollments/' })).kvs.map((kv) => JSON.parse(text(kv.value)) as { userId: string }).filter((r) => r.userId === 'pia');
    assert.equal(links.length, 1);
  });

  it('a key registered in an enrollment that never confirmed its OTP token is never stored, and cannot sign in', async () => {
    const { enrollment } = await addUser(env.store, { id: 'quinn', roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock);
    const hw = await giveHardwareToken(env, 'quinn');
    const key = new SoftAuthenticator();
    const before = await credentialRecords();
    const reg = await registerWith(enrollment.token, key);
    assert.equal(reg.status, 200, reg.body);
    assert.deepEqual(reg.json(), { complete: false });
    assert.deepEqual(await credentialRecords(), before, 'no webauthn/ record before the OTP step');
    assert.deepEqual((await getUser(env.store, 'quinn'))?.credentialIds ?? [], []);
    // a second registration with the same link is refused (one key per enrollment)
    assert.equal(errorCode(await registerWith(enrollment.token, new SoftAuthenticator())), 'ERR_LOGIN_FACTOR_ORDER');
    // the OTP step stores the key, the token and the activation together
    const now = env.clock.now();
    const done = await gw.request({ url: '/.gatehouse/enroll/totp', body: { token: enrollment.token, code1: totp(hw.seed, now - 30_000), code2: totp(hw.seed, now) } });
    assert.equal(done.status, 200, done.body);
    const user = await getUser(env.store, 'quinn');
    assert.equal(user?.status, 'active');
    assert.equal(user?.credentialIds?.length, 1);
    assert.equal(user?.enrollment, undefined, 'finishing consumes the link');
  });

  it('a re-enrollment of an active user that stops after the WebAuthn step leaves the user as they were', async () => {
    const { enrollment } = await addUser(env.store, { id: 'rosa', roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock);
    const hw = await giveHardwareToken(env, 'rosa');
    await completeEnrollment(env, gw, enrollment.token, new SoftAuthenticator(), hw.seed);
    const keys = (await getUser(env.store, 'rosa'))?.credentialIds;
    const again = await issueEnrollment(env.store, 'rosa', { clock: env.clock, ttlMs: 86_400_000 });
    const extra = new SoftAuthenticator();
    assert.equal((await registerWith(again.token, extra)).status, 200);
    assert.deepEqual((await getUser(env.store, 'rosa'))?.credentialIds, keys);
    env.clock.advance(60_000);
    const cookies = jar();
    const start = await gw.request({ url: '/.gatehouse/login/start', cookies, body: { username: 'rosa', rd: '/' } });
    const w = await gw.request({ url: '/.gatehouse/login/webauthn', cookies, body: { response: extra.authenticate(start.json<{ options: { challenge: string; rpId: string } }>().options, LOGIN) } });
    assert.equal(errorCode(w), 'ERR_WEBAUTHN_UNKNOWN_CREDENTIAL');
  });

  it('finishing an enrollment voids every link of the user, the one used included', async () => {
    const { enrollment: first } = await addUser(env.store, { id: 'sven', roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock);
    const hw = await giveHardwareToken(env, 'sven');
    const second = await issueEnrollment(env.store, 'sven', { clock: env.clock, ttlMs: 86_400_000 });
    await completeEnrollment(env, gw, second.token, new SoftAuthenticator(), hw.seed);
    for (const token of [first.token, second.token]) {
      for (const url of ['/.gatehouse/enroll/start', '/.gatehouse/enroll/webauthn/options', '/.gatehouse/enroll/totp/options']) {
        assert.equal(errorCode(await gw.request({ url, body: { token } })), 'ERR_ENROLLMENT_INVALID', url);
      }
    }
  });

  it('a link issued before a user was disabled does not work once they are enabled again', async () => {
    const { enrollment } = await addUser(env.store, { id: 'uma', roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock);
    await giveHardwareToken(env, 'uma');
    await runStoreOp('user.disable', env.store, { id: 'uma' }, env.clock);
    await runStoreOp('user.enable', env.store, { id: 'uma' }, env.clock);
    assert.equal((await getUser(env.store, 'uma'))?.status, 'pending');
    assert.equal(errorCode(await gw.request({ url: '/.gatehouse/enroll/start', body: { token: enrollment.token } })), 'ERR_ENROLLMENT_INVALID');
    const fresh = (await runStoreOp('user.enroll', env.store, { id: 'uma', enrollmentTtlMs: 86_400_000 }, env.clock)) as { token: string };
    assert.equal((await gw.request({ url: '/.gatehouse/enroll/start', body: { token: fresh.token } })).status, 200);
  });

  it('a link of a user who was deleted and added again under the same id does not work for the new user', async () => {
    const { enrollment: old } = await addUser(env.store, { id: 'tara', roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock);
    await runStoreOp('user.delete', env.store, { id: 'tara' }, env.clock);
    await addUser(env.store, { id: 'tara', roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock);
    await giveHardwareToken(env, 'tara');
    assert.equal(errorCode(await gw.request({ url: '/.gatehouse/enroll/start', body: { token: old.token } })), 'ERR_ENROLLMENT_INVALID');
  });
});
