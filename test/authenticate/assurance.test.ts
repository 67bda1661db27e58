// acr and amr say only what was proven (issue 11 §3). Before: with webauthn.allowedAAGUIDs but
// without requireAttestation, a software key claiming a YubiKey's AAGUID enrolled and its
// sessions got `acr: aal3`, `amr: [hwk, …]`; a phone-app seed counted as a hardware OTP token;
// the page handed out phone-app seeds to anyone without a token.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { acrOf, acrSatisfies, addUser, amrOf, parseRoles, type Factor } from '../../src/authenticate/index.js';
import { text } from '../../src/store/index.js';
import { runStoreOp } from '../../src/admin/ops.js';
import { attestedKey, completeEnrollment, enroll, errorCode, giveHardwareToken, login, makeEnv, startGateway, startRoutes, whoAmI, LOGIN, ADMIN_APP, type Env, type Gateway } from './harness.js';
import { makeAttestationPki, type AttestationPki } from './attestation-ca.js';
import { HOSTILE_AUTHENTICATORS, YUBIKEY, type Outcome } from './hostile-authenticators.js';
import { SoftAuthenticator } from './soft-authenticator.js';

describe('acr and amr say only what was proven', () => {
  let env: Env;
  let other: AttestationPki;
  let n = 0;

  before(async () => {
    env = await makeEnv();
    other = makeAttestationPki('Other Vendor');
  });
  after(async () => env?.close());

  const nextId = (): string => `p${++n}`;

  /** Enrolls a key (with a hardware OTP token) and signs in; what the gateway made of it. */
  async function attempt(gw: Gateway, key: SoftAuthenticator): Promise<{ refused: string } | { hwk: boolean; record: { attestationVerified?: boolean }; session: Awaited<ReturnType<typeof whoAmI>> }> {
    const id = nextId();
    const { enrollment } = await addUser(env.store, { id, roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock);
    const hw = await giveHardwareToken(env, id);
    try {
      await completeEnrollment(env, gw, enrollment.token, key, hw.seed);
    } catch (err) {
      const code = /"code":"(ERR_[A-Z_]+)"/.exec((err as Error).message)?.[1];
      return { refused: code ?? (err as Error).message };
    }
    env.clock.advance(60_000);
    const { cookies } = await login(env, gw, { id, key, seed: hw.seed });
    const session = await whoAmI(gw, cookies);
    const kv = (await env.store.range({ prefix: '/gatehouse/webauthn/' })).kvs.map((x) => JSON.parse(text(x.value)) as { userId: string; attestationVerified?: boolean }).find((c) => c.userId === id)!;
    return { hwk: session.amr?.includes('hwk') === true, record: kv, session };
  }

  function judge(got: Awaited<ReturnType<typeof attempt>>, want: Outcome, name: string): void {
    if ('refused' in want) {
      assert.deepEqual(got, { refused: want.refused }, name);
      return;
    }
    assert.ok(!('refused' in got), `${name}: refused with ${'refused' in got ? got.refused : ''}`);
    if (want.enrolled === 'hwk') {
      assert.equal(got.record.attestationVerified, true, `${name}: the record says the attestation verified`);
      assert.equal(got.session.acr, 'aal3', name);
      assert.deepEqual(got.session.amr, ['hwk', 'user', 'otp', 'mfa'], name);
    } else {
      assert.equal(got.record.attestationVerified, false, `${name}: the record says the attestation did not verify`);
      assert.equal(got.hwk, false, `${name}: not hwk`);
      assert.equal(got.session.acr, 'aal2', `${name}: not aal3`);
      assert.deepEqual(got.session.amr, ['swk', 'user', 'otp', 'mfa'], name);
    }
  }

  describe('an AAGUID allow-list without requireAttestation (the AAGUID is the key\'s own claim)', () => {
    let gw: Gateway;
    before(async () => {
      gw = await startGateway(env, { replicaId: 'h-allow', webauthn: `webauthn: { rpId: example.org, origins: ["${LOGIN}"], allowedAAGUIDs: ["${YUBIKEY}"], attestationRoots: [./vendor-root.pem] }` });
    });
    after(async () => gw?.close());

    for (const c of HOSTILE_AUTHENTICATORS) {
      it(c.name, async () => judge(await attempt(gw, c.key({ trusted: env.vendor, other })), c.allowList, c.name));
    }
  });

  describe('requireAttestation with a trusted root', () => {
    let gw: Gateway;
    before(async () => {
      gw = await startGateway(env, { replicaId: 'h-required', webauthn: `webauthn: { rpId: example.org, origins: ["${LOGIN}"], allowedAAGUIDs: ["${YUBIKEY}"], requireAttestation: true, attestationRoots: [./vendor-root.pem] }` });
    });
    after(async () => gw?.close());

    for (const c of HOSTILE_AUTHENTICATORS) {
      it(c.name, async () => judge(await attempt(gw, c.key({ trusted: env.vendor, other })), c.required, c.name));
    }
  });

  describe('with the default config', () => {
    let gw: Gateway;
    before(async () => {
      gw = await startGateway(env, { replicaId: 'h-default' });
    });
    after(async () => gw?.close());

    it('enrollment without an assigned token offers no phone-app seed (totp.allowSoftware is off): it asks for a hardware token', async () => {
      const { enrollment } = await addUser(env.store, { id: 'nohw', roles: parseRoles(['payments:ops-admin']), enrollmentTtlMs: 86_400_000 }, env.clock);
      for (const url of ['/.gatehouse/enroll/start', '/.gatehouse/enroll/webauthn/options', '/.gatehouse/enroll/totp/options']) {
        const r = await gw.request({ url, body: { token: enrollment.token } });
        assert.equal(r.status, 403, url);
        assert.equal(errorCode(r), 'ERR_TOTP_TOKEN_REQUIRED', url);
        assert.equal(r.body.includes('secret'), false, `${url}: no seed`);
      }
      // once an administrator assigns a token, the same link works, and key plus token reach aal3
      const hw = await giveHardwareToken(env, 'nohw');
      const key = attestedKey(env);
      await completeEnrollment(env, gw, enrollment.token, key, hw.seed);
      env.clock.advance(60_000);
      assert.equal((await whoAmI(gw, (await login(env, gw, { id: 'nohw', key, seed: hw.seed })).cookies)).acr, 'aal3');
    });

    it('a credential stored before attestation was recorded (no attestationVerified) is not hwk', async () => {
      const u = await enroll(env, gw, nextId(), ['payments:ops-admin'], attestedKey(env));
      const kv = (await env.store.range({ prefix: '/gatehouse/webauthn/' })).kvs.find((x) => (JSON.parse(text(x.value)) as { userId: string }).userId === u.id)!;
      const { attestationVerified: _dropped, ...legacy } = JSON.parse(text(kv.value)) as Record<string, unknown>;
      await env.store.put(text(kv.key), JSON.stringify(legacy));
      env.clock.advance(60_000);
      const s = await whoAmI(gw, (await login(env, gw, u)).cookies);
      assert.equal(s.acr, 'aal2');
      assert.deepEqual(s.amr, ['swk', 'user', 'otp', 'mfa']);
    });

    it('a seed enrolled for a phone app before kinds were recorded (serial enrolled-…) is not a hardware OTP token', async () => {
      const u = await enroll(env, gw, nextId(), ['payments:ops-admin'], attestedKey(env));
      const key = `/gatehouse/totp/${u.id}`;
      const rec = JSON.parse(text((await env.store.get(key))!.value)) as Record<string, unknown>;
      // the same seed, stored as enrollment stored phone-app seeds before: no kind, an enrolled- serial
      const { sealSeed, openSeed } = await import('../../src/authenticate/index.js');
      const kek = await env.kek();
      const seed = openSeed(kek, String(rec.serial), String(rec.sealedSeed));
      const serial = `enrolled-${u.id}-0001`;
      const { kind: _kind, ...legacy }: Record<string, unknown> = { ...rec, serial, sealedSeed: sealSeed(kek, serial, seed) };
      await env.store.put(key, JSON.stringify(legacy));
      env.clock.advance(60_000);
      const s = await whoAmI(gw, (await login(env, gw, u)).cookies);
      assert.equal(s.acr, 'aal2');
      assert.deepEqual(s.amr, ['hwk', 'user', 'otp', 'swk', 'mfa']);
    });

    it('a step-up of an hwk session with a key whose make was never proven is refused (ERR_ACR_INSUFFICIENT)', async () => {
      const u = await enroll(env, gw, nextId(), ['payments:ops-admin'], attestedKey(env));
      // a second, unattested key of the same person (re-enrolled with their hardware token)
      const again = (await runStoreOp('user.enroll', env.store, { id: u.id, enrollmentTtlMs: 86_400_000 }, env.clock)) as { token: string };
      env.clock.advance(60_000);
      const soft = new SoftAuthenticator();
      await completeEnrollment(env, gw, again.token, soft, u.seed);
      env.clock.advance(60_000);
      const { cookies } = await login(env, gw, u, { host: 'admin.example.org' });
      assert.equal((await whoAmI(gw, cookies, 'admin.example.org')).acr, 'aal3');
      const start = await gw.request({ url: '/.gatehouse/step-up/start', host: 'admin.example.org', cookies, body: { rd: '/' } });
      assert.equal(start.status, 200, start.body);
      const options = start.json<{ options: { challenge: string; rpId: string; allowCredentials: { id: string }[] } }>().options;
      assert.deepEqual(options.allowCredentials.map((c) => c.id), [u.key.credentials[0]!.id.toString('base64url')], 'only the attested key is offered');
      const r = await gw.request({ url: '/.gatehouse/step-up/webauthn', host: 'admin.example.org', cookies, body: { response: soft.authenticate(options, ADMIN_APP) } });
      assert.equal(errorCode(r), 'ERR_ACR_INSUFFICIENT');
    });
  });

  describe('with totp.allowSoftware (a phone-app seed)', () => {
    it('a phone-app seed is not a hardware OTP token: the session is aal2 and its amr says otp with swk', async () => {
      const routes = await startRoutes(env, { allowSoftwareTotp: true });
      try {
        const u = await enroll(env, routes, nextId(), ['payments:ops-admin'], attestedKey(env), { otp: 'software' });
        assert.match(u.serial, /^enrolled-/);
        env.clock.advance(60_000);
        const s = await whoAmI(routes, (await login(env, routes, u)).cookies);
        assert.equal(s.acr, 'aal2');
        assert.deepEqual(s.amr, ['hwk', 'user', 'otp', 'swk', 'mfa']);
        const rec = JSON.parse(text((await env.store.get(`/gatehouse/totp/${u.id}`))!.value)) as { kind: string };
        assert.equal(rec.kind, 'software');
      } finally {
        await routes.close();
      }
    });
  });

  it('docs/threat-model.md\'s acr and amr table is what the code computes, row by row', () => {
    const doc = readFileSync(new URL('../../docs/threat-model.md', import.meta.url), 'utf8');
    const section = doc.slice(doc.indexOf('### acr and amr'));
    const rows = [...section.matchAll(/^\| (attested|not attested|—) \| (hardware|software|—) \| `([a-z ]+)` \| `(aal[123])` \|$/gm)];
    assert.equal(rows.length, 8, 'the table has a row for each combination');
    for (const [, key, otp, amr, acr] of rows) {
      const done: Factor[] = [...(key !== '—' ? (['webauthn-uv'] as const) : []), ...(otp !== '—' ? (['totp'] as const) : [])];
      const proofs = { done, keyAttested: key === 'attested', otpHardware: otp === 'hardware' };
      assert.deepEqual(amrOf(proofs), amr!.split(' '), `${key} / ${otp}: amr`);
      assert.equal(acrOf(proofs), acr, `${key} / ${otp}: acr`);
    }
  });

  it('a level the code does not know (an older session\'s acr) satisfies no route demand', () => {
    assert.equal(acrSatisfies('aal3', 'aal3'), true);
    assert.equal(acrSatisfies('aal2', 'aal3'), false);
    assert.equal(acrSatisfies('aal3', 'aal1'), true);
    for (const odd of ['', 'AAL3', 'aal4', 'urn:x:aal3']) assert.equal(acrSatisfies(odd, 'aal1'), false, odd);
  });
});
