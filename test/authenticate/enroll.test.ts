// Enrollment: the one-time link, WebAuthn registration policy (UV, AAGUID allow-list,
// attestation to a trusted root), and the OTP token confirmed by two consecutive codes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { addUser, parseRoles, getUser } from '../../src/authenticate/index.js';
import { text } from '../../src/store/index.js';
import { ScureBase32Plugin } from 'otplib';
import { errorCode, makeEnv, startGateway, startRoutes, giveHardwareToken, totp, advance, auditEvents, LOGIN, type Client, type Env, type Gateway } from './harness.js';
import { SoftAuthenticator } from './soft-authenticator.js';
import { makeAttestationPki, type AttestationPki } from './attestation-ca.js';

const YUBI = 'cb69481e-8ff7-4039-93ec-0a2729a154a8';


describe('enrollment', () => {
  let env: Env;
  let pki: AttestationPki;
  let other: AttestationPki;

  before(async () => {
    env = await makeEnv();
    pki = makeAttestationPki('Test Vendor');
    other = makeAttestationPki('Other Vendor');
    await writeFile(path.join(env.dir, 'roots.pem'), pki.rootPem);
  });
  after(async () => env?.close());

  /** A new user with a hardware OTP token assigned (software seeds are off by default); their link's token. */
  async function newUser(id: string, o: { token?: boolean } = {}): Promise<string> {
    const link = (await addUser(env.store, { id, roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock)).enrollment.token;
    if (o.token !== false) await giveHardwareToken(env, id);
    return link;
  }

  async function register(gw: Client, token: string, key: SoftAuthenticator) {
    const o = await gw.request({ url: '/.gatehouse/enroll/webauthn/options', body: { token } });
    assert.equal(o.status, 200, o.body);
    const options = o.json<{ options: { challenge: string; rp: { id: string }; user: { id: string }; attestation: string; authenticatorSelection: { userVerification: string; residentKey: string } } }>().options;
    return { options, res: await gw.request({ url: '/.gatehouse/enroll/webauthn', body: { token, response: key.register(options, LOGIN) } }) };
  }

  describe('with totp.allowSoftware (a phone-app seed when no token is assigned)', () => {
    let gw: Awaited<ReturnType<typeof startRoutes>>;
    before(async () => {
      gw = await startRoutes(env, { allowSoftwareTotp: true });
    });
    after(async () => gw?.close());

    it('asks for direct attestation, required UV and a resident key (preferred); registers; then two consecutive codes finish it', async () => {
      const token = await newUser('carol', { token: false });
      const start = await gw.request({ url: '/.gatehouse/enroll/start', body: { token } });
      assert.deepEqual(start.json(), { user: 'carol', webauthnDone: false, totp: 'required', complete: false });
      const { options, res } = await register(gw, token, new SoftAuthenticator());
      assert.equal(options.attestation, 'direct');
      assert.equal(options.authenticatorSelection.userVerification, 'required');
      assert.equal(options.authenticatorSelection.residentKey, 'preferred');
      assert.equal(res.status, 200, res.body);
      assert.deepEqual(res.json(), { complete: false });
      assert.equal((await getUser(env.store, 'carol'))?.status, 'pending', 'not active before the OTP token');
      const t = await gw.request({ url: '/.gatehouse/enroll/totp/options', body: { token } });
      const { secret, qr, serial } = t.json<{ secret: string; qr: string; serial: string }>();
      assert.match(qr, /^data:image\/svg\+xml;base64,/);
      assert.match(Buffer.from(qr.split(',')[1]!, 'base64').toString('utf8'), /<svg/);
      assert.match(serial, /^enrolled-carol-/);
      const now = env.clock.now();
      // two codes that are not consecutive are refused
      const gap = await gw.request({ url: '/.gatehouse/enroll/totp', body: { token, code1: totp(secret, now - 60_000), code2: totp(secret, now) } });
      assert.equal(errorCode(gap), 'ERR_TOTP_INVALID');
      const ok = await gw.request({ url: '/.gatehouse/enroll/totp', body: { token, code1: totp(secret, now - 30_000), code2: totp(secret, now) } });
      assert.equal(ok.status, 200, ok.body);
      assert.equal((await getUser(env.store, 'carol'))?.status, 'active');
      // the link was consumed
      const again = await gw.request({ url: '/.gatehouse/enroll/start', body: { token } });
      assert.equal(again.status, 401);
      assert.equal(errorCode(again), 'ERR_ENROLLMENT_INVALID');
      // the seed is sealed at rest: no form of it appears anywhere in the store
      const dump = (await env.store.range({ prefix: '' })).kvs.map((kv) => text(kv.key) + '=' + text(kv.value)).join('\n');
      assert.equal(dump.includes(secret), false, 'base32 seed in the store');
      const raw = Buffer.from(new ScureBase32Plugin().decode(secret));
      assert.equal(raw.length, 20);
      assert.equal(dump.includes(raw.toString('hex')) || dump.includes(raw.toString('base64')), false, 'hex or base64 seed in the store');
      assert.match(dump, /\/gatehouse\/totp\/carol=\{[^\n]*"sealedSeed":"v1\./);
    });
  });

  describe('with the default policy', () => {
    let gw: Gateway;
    before(async () => {
      gw = await startGateway(env);
    });
    after(async () => gw?.close());

    it('refuses a security key that did not verify the user (UV=0)', async () => {
      const token = await newUser('dave');
      const { res } = await register(gw, token, new SoftAuthenticator({ uv: false }));
      assert.equal(res.status, 401);
      assert.equal(errorCode(res), 'ERR_WEBAUTHN_USER_VERIFICATION');
    });

    it('refuses an unknown, expired or reused link', async () => {
      const unknown = await gw.request({ url: '/.gatehouse/enroll/start', body: { token: 'A'.repeat(43) } });
      assert.equal(errorCode(unknown), 'ERR_ENROLLMENT_INVALID');
      const { enrollment } = await addUser(env.store, { id: 'erin', roles: {}, enrollmentTtlMs: 60_000 }, env.clock);
      await advance(env, 61_000);
      const expired = await gw.request({ url: '/.gatehouse/enroll/start', body: { token: enrollment.token } });
      assert.equal(errorCode(expired), 'ERR_ENROLLMENT_INVALID');
      const stored = await env.store.range({ prefix: '/gatehouse/enrollments/' });
      assert.ok(stored.kvs.every((kv) => !text(kv.value).includes(enrollment.token)), 'only the hash of the token is stored');
    });

    it('an administrator-assigned OTP token is confirmed with its codes instead of a new seed', async () => {
      const token = await newUser('frank', { token: false });
      const { importTokens, sealSeed } = await import('../../src/authenticate/index.js');
      const { loadKek } = await import('../../src/tokens/index.js');
      const kek = await loadKek({ file: path.join(env.dir, 'certs', 'kek'), env: {} });
      const seed = Buffer.alloc(20, 7);
      await importTokens(env.store, [{ serial: 'HW-0001', sealedSeed: sealSeed(kek, 'HW-0001', seed), digits: 6, period: 30, algorithm: 'sha1' }], env.clock);
      const { assignToken } = await import('../../src/authenticate/index.js');
      await assignToken(env.store, 'HW-0001', 'frank', env.clock);
      await register(gw, token, new SoftAuthenticator());
      const t = await gw.request({ url: '/.gatehouse/enroll/totp/options', body: { token } });
      assert.deepEqual(t.json(), { serial: 'HW-0001', assigned: true, kind: 'hardware' });
      const now = env.clock.now();
      const ok = await gw.request({ url: '/.gatehouse/enroll/totp', body: { token, code1: totp(seed, now - 30_000), code2: totp(seed, now) } });
      assert.equal(ok.status, 200, ok.body);
      assert.equal((await getUser(env.store, 'frank'))?.status, 'active');
    });
  });

  describe('with an AAGUID allow-list', () => {
    let gw: Gateway;
    before(async () => {
      gw = await startGateway(env, { replicaId: 'h-aaguid', webauthn: `webauthn: { rpId: example.org, origins: ["${LOGIN}"], allowedAAGUIDs: ["${YUBI}"] }` });
    });
    after(async () => gw?.close());

    it('refuses a model not on the list and accepts one on it', async () => {
      const bad = await register(gw, await newUser('gina'), new SoftAuthenticator());
      assert.equal(bad.res.status, 403);
      assert.equal(errorCode(bad.res), 'ERR_WEBAUTHN_AAGUID');
      const good = await register(gw, await newUser('hank'), new SoftAuthenticator({ aaguid: YUBI }));
      assert.equal(good.res.status, 200, good.res.body);
    });
  });

  describe('with requireAttestation', () => {
    let gw: Gateway;
    before(async () => {
      gw = await startGateway(env, { replicaId: 'h-att', webauthn: `webauthn: { rpId: example.org, origins: ["${LOGIN}"], requireAttestation: true, attestationRoots: [./roots.pem] }` });
    });
    after(async () => gw?.close());

    it('refuses none and self attestation (a software authenticator)', async () => {
      const none = await register(gw, await newUser('ivan'), new SoftAuthenticator({ attestation: 'none' }));
      assert.equal(errorCode(none.res), 'ERR_WEBAUTHN_ATTESTATION');
      const self = await register(gw, await newUser('judy'), new SoftAuthenticator({ attestation: 'packed-self' }));
      assert.equal(self.res.status, 403);
      assert.equal(errorCode(self.res), 'ERR_WEBAUTHN_ATTESTATION');
    });

    it('refuses a packed x5c chain to another root, accepts one to the configured root', async () => {
      const foreign = await register(gw, await newUser('kate'), new SoftAuthenticator({ attestation: 'packed-x5c', x5c: { key: other.leafKey, chain: [other.leafDer] } }));
      assert.equal(errorCode(foreign.res), 'ERR_WEBAUTHN_ATTESTATION');
      // a leaf whose signature does not match its certificate's key fails the statement itself
      const forged = await register(gw, await newUser('liam'), new SoftAuthenticator({ attestation: 'packed-x5c', x5c: { key: other.leafKey, chain: [pki.leafDer] } }));
      assert.equal(errorCode(forged.res), 'ERR_WEBAUTHN_INVALID');
      const trusted = await register(gw, await newUser('mona'), new SoftAuthenticator({ attestation: 'packed-x5c', x5c: { key: pki.leafKey, chain: [pki.leafDer] } }));
      assert.equal(trusted.res.status, 200, trusted.res.body);
      const events = await auditEvents(env, gw);
      const ok = events.find((e) => e['event.action'] === 'enrollment.webauthn' && e['user.id'] === 'mona');
      assert.equal(ok?.['gatehouse.attestation_format'], 'packed');
    });
  });
});
