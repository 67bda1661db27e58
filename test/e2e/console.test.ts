// The security console in a real browser (Debian's Chromium, CDP virtual authenticator, as in
// login.test.ts): an operator (bob) signs in and keeps his session cookie; a security admin and
// auditor (alice) signs in, opens /.gatehouse/admin, filters the audit log, sees the timeline,
// the segmentation graph and an explained decision, finds bob's live session, revokes it with
// the button, and bob's next request is refused. Screenshots (npm run screenshots) go to docs/screenshots/console*.png.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { generateSync } from 'otplib';
import { initCa, type CertificateAuthority } from '../../src/pki/index.js';
import { runStoreOp } from '../../src/admin/ops.js';
import { browserPrograms, launchBrowser, type Browser } from './browser.js';
import { DOMAIN, SHOTS, OffsetClock, expectStep as gatewayStep, gatewayRequest, startGateway, type Gateway } from './gateway.js';

const programs = browserPrograms();

describe('security console in a real browser', { skip: 'skip' in programs ? programs.skip : false }, () => {
  let dir: string;
  let ca: CertificateAuthority;
  let upstream: http.Server;
  let gw: Gateway;
  let browser: Browser;
  const clock = new OffsetClock();
  const seeds = new Map<string, string>();
  let bobCookie = '';

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gh-e2e-console-'));
    await mkdir(path.join(dir, 'policies'));
    await mkdir(SHOTS, { recursive: true });
    await writeFile(
      path.join(dir, 'policies', 'ops.yaml'),
      'namespace: ops\nrules:\n  - name: ops-admins-use-the-dashboard\n    from: [{ role: ops-admin }]\n    to: { service: dash, methods: [GET, HEAD], paths: ["/", "/reports", "/reports/**"] }\n' +
        '  - name: billing-reads-metrics\n    from: [{ namespace: billing, service: api }]\n    to: { service: metrics, methods: [GET], paths: ["/metrics"] }\n',
    );
    await writeFile(
      path.join(dir, 'policies', 'billing.yaml'),
      'namespace: billing\nrules:\n  - name: dash-calls-billing\n    from: [{ namespace: ops, service: dash }]\n    to: { service: api, methods: [GET, POST], paths: ["/invoices/**"] }\n',
    );
    ca = await initCa({ dir: path.join(dir, 'certs'), trustDomain: 'example.org' });
    upstream = http.createServer((_req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end('<!doctype html><title>dashboard</title><h1 id="app">Ops dashboard</h1>');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    gw = await startGateway(dir, clock, (upstream.address() as AddressInfo).port);
    if ('skip' in programs) return;
    browser = await launchBrowser({ executablePath: programs.chromium, caPem: ca.certPem, domain: DOMAIN });
    await browser.addAuthenticator();
  });

  after(async () => {
    await browser?.close();
    await gw?.close();
    upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const code = (user: string, at: number): string => generateSync({ secret: seeds.get(user)!, epoch: Math.floor(at / 1000) });
  const expectStep = (selector: string): Promise<void> => gatewayStep(browser.page, selector);
  /** Enrolls `id` with the virtual authenticator and a TOTP seed, then signs in through the pages. */
  async function enrollAndLogin(id: string, roles: string[]): Promise<void> {
    const page = browser.page;
    const r = (await runStoreOp('user.add', gw.store, { id, roles, enrollmentTtlMs: 3_600_000 }, clock)) as { token: string };
    await page.goto(`${gw.origin}/.gatehouse/enroll#${r.token}`);
    await page.click('#enroll-webauthn');
    await expectStep('#enroll-totp-step:not([hidden])');
    seeds.set(id, ((await page.textContent('#enroll-totp-secret')) ?? '').replace(/\s+/g, ''));
    const now = clock.now();
    await page.fill('#enroll-totp-code-1', code(id, now));
    await page.fill('#enroll-totp-code-2', code(id, now + 30_000));
    await page.click('#enroll-totp-submit');
    await expectStep('#enroll-done:not([hidden])');
    clock.offset += 60_000;
    await page.goto(`${gw.origin}/reports`);
    await page.waitForURL(/\/\.gatehouse\/login/);
    await page.fill('#username', id);
    await page.click('#login-webauthn');
    await expectStep('#totp-step:not([hidden])');
    await page.fill('#totp-code', code(id, clock.now()));
    await page.click('#totp-submit');
    await expectStep('#app');
  }
  const request = (p: string, cookie: string, accept?: string): Promise<{ status: number; body: string }> => gatewayRequest(gw, ca.certPem, p, cookie, accept);

  it('an operator signs in; the console refuses him and sends people without a session to sign in', async () => {
    await enrollAndLogin('bob', ['ops:ops-admin']);
    bobCookie = (await browser.context.cookies()).find((c) => c.name === '__Host-gatehouse')?.value ?? '';
    assert.notEqual(bobCookie, '');
    assert.equal((await request('/reports', bobCookie)).status, 200, 'bob reaches the app');
    const denied = await request('/.gatehouse/admin', bobCookie, 'text/html');
    assert.equal(denied.status, 403);
    assert.match(denied.body, /ERR_ADMIN_FORBIDDEN/);
    const api = await request('/.gatehouse/admin/api/sessions', bobCookie);
    assert.equal(api.status, 403);
    // bob's browser session stays alive on the server; this browser forgets it
    await browser.context.clearCookies();
    await browser.page.goto(`${gw.origin}/.gatehouse/admin`);
    await browser.page.waitForURL(/\/\.gatehouse\/login/);
    assert.equal((await request('/.gatehouse/admin/api/graph', '')).status, 401);
  });

  it('a security admin opens the console and filters the audit log', async () => {
    await enrollAndLogin('alice', ['gatehouse:security-admin', 'gatehouse:security-auditor', 'ops:ops-admin']);
    const page = browser.page;
    const res = await page.goto(`${gw.origin}/.gatehouse/admin`);
    await page.waitForSelector('#console-user');
    assert.equal(await page.textContent('#console-user'), 'alice');
    assert.match((await res?.allHeaders())?.['content-security-policy'] ?? '', /script-src 'self'/, 'no inline script allowed');
    assert.equal((await res?.allHeaders())?.['cache-control'], 'no-store');
    await page.fill('#audit-action', 'authentication.*');
    await page.click('#audit-apply');
    await page.waitForSelector('#audit-rows tr[data-action^="authentication."]');
    const actions: string[] = [];
    for (const r of await page.locator('#audit-rows tr').all()) actions.push((await r.getAttribute('data-action')) ?? '');
    assert.ok(actions.length >= 2, `expected rows, got ${actions.length}`);
    assert.ok(actions.every((a) => a.startsWith('authentication.')), actions.join(','));
    // the timeline of proxy decisions: bob's and alice's requests to ops
    await page.fill('#audit-action', '');
    await page.click('#audit-apply');
    await page.waitForSelector('[data-testid="timeline-svg"] rect[data-ns="ops"][data-kind="allow"]');
    await page.screenshot({ path: path.join(SHOTS, 'console.png'), fullPage: true });
  });

  it('shows the segmentation graph and explains a decision', async () => {
    const page = browser.page;
    await page.waitForSelector('[data-testid="graph-svg"] [data-node="svc:ops/dash"]');
    assert.ok(await page.$('[data-testid="graph-svg"] path[data-from="role:ops/ops-admin"][data-to="svc:ops/dash"]'));
    assert.ok(await page.$('[data-testid="graph-svg"] path[data-from="svc:ops/dash"][data-to="svc:billing/api"]'));
    await page.fill('#explain-from', 'spiffe://example.org/ns/ops/sa/dash');
    await page.fill('#explain-namespace', 'billing');
    await page.fill('#explain-service', 'api');
    await page.fill('#explain-method', 'POST');
    await page.fill('#explain-path', '/invoices/42');
    await page.click('#explain-submit');
    await page.waitForSelector('#explain-result:not([hidden])');
    assert.equal(await page.textContent('#explain-verdict'), 'allow');
    assert.equal(await page.textContent('#explain-rule'), 'dash-calls-billing');
    await page.fill('#explain-path', '/admin');
    await page.click('#explain-submit');
    await page.locator('#explain-verdict', { hasText: 'deny' }).waitFor();
    assert.match((await page.textContent('#explain-reasons')) ?? '', /no-matching-rule/);
    await page.locator('#graph').screenshot({ path: path.join(SHOTS, 'console-graph.png') });
  });

  it("revokes bob's live session with the button, and bob is refused", async () => {
    const page = browser.page;
    const row = page.locator('#session-rows tr[data-user="bob"]');
    await row.waitFor();
    const sid = (await row.getAttribute('data-sid')) ?? '';
    assert.match(sid, /.+/);
    assert.ok(!(await page.content()).includes(bobCookie), 'the page never shows a session cookie');
    await page.screenshot({ path: path.join(SHOTS, 'console-sessions.png'), fullPage: true });
    await page.click(`[data-testid="revoke-${sid}"]`);
    await page.waitForSelector(`#session-rows tr[data-sid="${sid}"]`, { state: 'detached', timeout: 15_000 });
    assert.match((await page.textContent('#status')) ?? '', /revoked/);
    const refused = await request('/reports', bobCookie);
    assert.equal(refused.status, 401, refused.body);
    assert.match((JSON.parse(refused.body) as { error: { code: string } }).error.code, /^ERR_SESSION_(REVOKED|REQUIRED|EXPIRED)$/);
    // alice's own session is untouched
    assert.ok(await page.$('#session-rows tr.current'));
    await page.screenshot({ path: path.join(SHOTS, 'console-revoked.png'), fullPage: true });
  });
});
