// A real browser proves the human login: Debian's Chromium with a CDP virtual authenticator
// (ctap2, usb, user verification) enrolls, logs in with WebAuthn + TOTP, reaches an upstream
// app through the human listener and sees the identity it received, logs out and is refused.
// Negative runs: no user verification, a wrong TOTP code, the same code twice, an AAGUID not
// on the allow-list. Screenshots of the pages (npm run screenshots) go to docs/screenshots/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { generateSync } from 'otplib';
import { decodeJwt } from 'jose';
import { initCa, type CertificateAuthority } from '../../src/pki/index.js';
import { runStoreOp } from '../../src/admin/ops.js';
import { browserPrograms, launchBrowser, type Browser } from './browser.js';
import { DOMAIN, SHOTS, OffsetClock, expectStep as gatewayStep, gatewayRequest, startGateway, type Gateway } from './gateway.js';

const programs = browserPrograms();

describe('human login in a real browser', { skip: 'skip' in programs ? programs.skip : false }, () => {
  let dir: string;
  let ca: CertificateAuthority;
  let upstream: http.Server;
  let gw: Gateway;
  let browser: Browser;
  const clock = new OffsetClock();
  let seed = '';

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gh-e2e-'));
    await mkdir(path.join(dir, 'policies'));
    await mkdir(SHOTS, { recursive: true });
    await writeFile(
      path.join(dir, 'policies', 'ops.yaml'),
      'namespace: ops\nrules:\n  - name: ops-admins-use-the-dashboard\n    from: [{ role: ops-admin }]\n    to: { service: dash, methods: [GET, HEAD], paths: ["/", "/reports", "/reports/**"] }\n',
    );
    ca = await initCa({ dir: path.join(dir, 'certs'), trustDomain: 'example.org' });
    // the upstream app shows what it was told about the caller
    upstream = http.createServer((req, res) => {
      const auth = req.headers.authorization ?? '';
      const claims = auth.startsWith('Bearer ') ? decodeJwt(auth.slice(7)) : {};
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><title>dashboard</title><h1 id="app">Ops dashboard</h1><pre id="who">${JSON.stringify({ user: req.headers['x-gatehouse-subject'], claims })}</pre>`);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    gw = await startGateway(dir, clock, (upstream.address() as AddressInfo).port);
    if ('skip' in programs) return;
    browser = await launchBrowser({ executablePath: programs.chromium, caPem: ca.certPem, domain: DOMAIN });
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function addUser(id: string): Promise<string> {
    const r = (await runStoreOp('user.add', gw.store, { id, roles: ['ops:ops-admin'], enrollmentTtlMs: 3_600_000 }, clock)) as { token: string };
    return `${gw.origin}/.gatehouse/enroll#${r.token}`;
  }
  const code = (at: number): string => generateSync({ secret: seed, epoch: Math.floor(at / 1000) });
  const errorText = async (): Promise<string> => (await browser.page.textContent('#error')) ?? '';
  /** Waits for `selector`; if the page shows an error first, fails with its text. */
  const expectStep = (selector: string): Promise<void> => gatewayStep(browser.page, selector);

  it('enrolls a hardware authenticator with user verification and an OTP token', async () => {
    const page = browser.page;
    const auth = await browser.addAuthenticator();
    authenticators.push(auth);
    await page.goto(await addUser('alice'));
    await page.screenshot({ path: path.join(SHOTS, 'enroll.png'), fullPage: true });
    await page.click('#enroll-webauthn');
    await expectStep('#enroll-totp-step:not([hidden])');
    seed = ((await page.textContent('#enroll-totp-secret')) ?? '').replace(/\s+/g, '');
    assert.match(seed, /^[A-Z2-7]{16,}$/, 'the page shows the seed for manual entry');
    await page.screenshot({ path: path.join(SHOTS, 'enroll-totp.png'), fullPage: true });
    const now = clock.now();
    await page.fill('#enroll-totp-code-1', code(now));
    await page.fill('#enroll-totp-code-2', code(now + 30_000));
    await page.click('#enroll-totp-submit');
    await expectStep('#enroll-done:not([hidden])');
    void auth; // the credential lives in this virtual authenticator: keep it for the login
  });

  it('logs in with WebAuthn + TOTP, reaches the app, and the app sees who it is', async () => {
    // the enrollment used two TOTP steps; the next login needs a later one
    clock.offset += 60_000;
    const page = browser.page;
    await page.goto(`${gw.origin}/reports?week=47`);
    await page.waitForURL(/\/\.gatehouse\/login/);
    await page.screenshot({ path: path.join(SHOTS, 'login.png'), fullPage: true });
    await page.fill('#username', 'alice');
    await page.click('#login-webauthn');
    await expectStep('#totp-step:not([hidden])');
    await page.fill('#totp-code', code(clock.now()));
    await page.click('#totp-submit');
    await expectStep('#app');
    assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, '/reports?week=47', 'back where it was going');
    const who = JSON.parse((await page.textContent('#who')) ?? '{}') as { user: string; claims: Record<string, unknown> };
    assert.equal(who.user, 'alice');
    assert.equal(who.claims.sub, 'alice');
    assert.deepEqual(who.claims.roles, ['ops-admin']);
    // a virtual authenticator's attestation chains to no configured root, and a phone-app seed is software: swk, aal2
    assert.deepEqual([...(who.claims.amr as string[])].sort(), ['mfa', 'otp', 'swk', 'user']);
    assert.equal(typeof who.claims.sid, 'string');
    assert.equal(who.claims.acr, 'aal2');
    const cookie = (await browser.context.cookies()).find((c) => c.name === '__Host-gatehouse');
    assert.ok(cookie?.secure && cookie.httpOnly && cookie.sameSite === 'Strict' && cookie.path === '/');
    await page.screenshot({ path: path.join(SHOTS, 'app-through-gatehouse.png'), fullPage: true });
    // a path policy does not grant: the access-denied page, with the code
    await page.goto(`${gw.origin}/secrets`);
    await page.waitForSelector('#denied');
    assert.equal(await page.textContent('#denied-code'), 'ERR_POLICY_DENIED');
    await page.screenshot({ path: path.join(SHOTS, 'denied.png'), fullPage: true });
  });

  it('logs out, and is refused afterwards', async () => {
    const page = browser.page;
    await page.goto(`${gw.origin}/.gatehouse/logout`);
    await page.screenshot({ path: path.join(SHOTS, 'logout.png'), fullPage: true });
    await page.click('#logout');
    await page.waitForSelector('#logged-out');
    await page.goto(`${gw.origin}/reports`);
    await page.waitForURL(/\/\.gatehouse\/login/);
    // an API client (no session) gets 401 JSON, not a redirect
    const api = await gatewayRequest(gw, ca.certPem, '/reports');
    assert.equal(api.status, 401);
    assert.equal((JSON.parse(api.body) as { error: { code: string } }).error.code, 'ERR_SESSION_REQUIRED');
  });

  it('refuses a wrong TOTP code, then the same valid code twice', async () => {
    const page = browser.page;
    clock.offset += 30_000;
    const login = async (totp: string): Promise<void> => {
      await page.goto(`${gw.origin}/.gatehouse/login`);
      await page.fill('#username', 'alice');
      await page.click('#login-webauthn');
      await expectStep('#totp-step:not([hidden])');
      await page.fill('#totp-code', totp);
      await page.click('#totp-submit');
    };
    const good = code(clock.now());
    await login(good === '000000' ? '111111' : '000000');
    await page.waitForSelector('#error:not(:empty)');
    assert.match(await errorText(), /code/i);
    await page.screenshot({ path: path.join(SHOTS, 'login-wrong-code.png'), fullPage: true });
    await login(good);
    await page.waitForSelector('#app');
    await browser.context.clearCookies();
    await login(good);
    await page.waitForSelector('#error:not(:empty)');
    assert.match(await errorText(), /used|again|code/i);
  });

  it('refuses an authenticator that does not verify the user', async () => {
    const page = browser.page;
    await browser.context.clearCookies();
    // a key that can do user verification but does not (no fingerprint, no PIN)
    await removeAllAuthenticators();
    const noUv = await browser.addAuthenticator({ hasUserVerification: true, isUserVerified: false });
    authenticators.push(noUv);
    await page.goto(await addUser('bob'));
    await page.click('#enroll-webauthn');
    await page.waitForSelector('#error:not(:empty)');
    const shown = `${(await page.getAttribute('#error', 'data-code')) ?? ''} ${await errorText()}`;
    assert.match(shown, /WEBAUTHN|USER_VERIFICATION|NotAllowed|verif/i, shown);
    await page.screenshot({ path: path.join(SHOTS, 'enroll-no-user-verification.png'), fullPage: true });
    assert.ok(!(await page.isVisible('#enroll-totp-step')), 'enrollment must not go on');
    await browser.removeAuthenticator(noUv);
  });

  it('refuses an authenticator model that is not on the AAGUID allow-list', async () => {
    // its own clock: the shared one runs ahead, and Chromium checks certificate dates in real time
    const strict = await startGateway(dir, new OffsetClock(), (upstream.address() as AddressInfo).port, '  allowedAAGUIDs: ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]');
    try {
      const page = browser.page;
      await removeAllAuthenticators();
      authenticators.push(await browser.addAuthenticator());
      const r = (await runStoreOp('user.add', strict.store, { id: 'carol', roles: ['ops:ops-admin'], enrollmentTtlMs: 3_600_000 }, new OffsetClock())) as { token: string };
      await page.goto(`${strict.origin}/.gatehouse/enroll#${r.token}`);
      await page.click('#enroll-webauthn');
      await page.waitForSelector('#error:not(:empty)');
      assert.equal(await page.getAttribute('#error', 'data-code'), 'ERR_WEBAUTHN_AAGUID');
      assert.ok(!(await page.isVisible('#enroll-totp-step')));
    } finally {
      await strict.close();
    }
  });

  const authenticators: string[] = [];
  async function removeAllAuthenticators(): Promise<void> {
    for (const id of authenticators.splice(0)) await browser.removeAuthenticator(id).catch(() => undefined);
  }
});
