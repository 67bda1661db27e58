// Issue 11 §1 over the wire: a path means what the upstream reads. The gateway sits in front of
// the fixture's hostile upstream (it echoes the URL it got). A deny rule is not bypassed by a
// spelling an upstream that ignores case reads as the denied path (/ADMIN/users for a person,
// /v1/INTERNAL/keys for a service); spellings an upstream may decode into another path (double
// encoding, over-long UTF-8, a trailing dot, %20, %3B) are refused with 400 and audited once,
// unless the route says its upstream reads them literally; a case-insensitive route compares
// allow rules folded too.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { applyPolicySources } from '../../src/authorize/store.js';
import type { AuditEvent } from '../../src/contracts/audit.js';
import { parseConfig } from '../../src/config/index.js';
import { PATH_FORMS } from '../../src/gateway/path.js';
import { issueCertificate, type IssuedCertificate } from '../../src/pki/index.js';
import { HOSTILE_PATHS } from '../proxy/hostile-paths.js';
import { APP_HOST, LENIENT_HOST, call, startGatewayFixture, type Answer, type GatewayFixture } from './fixture.js';

const POLICY = `namespace: payments
rules:
  - name: no-admin
    effect: deny
    from: [{ role: viewer }, { namespace: frontend }]
    to: { service: api, paths: ["/admin/**"] }
  - name: no-internal
    effect: deny
    from: [{ namespace: frontend }]
    to: { service: api, paths: ["/v1/internal/**"] }
  - name: viewers-read
    from: [{ role: viewer }]
    to: { service: api, methods: [GET], paths: ["/**"] }
  - name: frontend-calls
    from: [{ namespace: frontend }]
    to: { service: api, paths: ["/**"] }
  - name: clerks-read-orders
    from: [{ namespace: shop, service: clerk }]
    to: { service: api, methods: [GET], paths: ["/v1/orders/*"] }
`;

const codeOf = (a: Answer): string => (JSON.parse(a.body) as { error: { code: string } }).error.code;
const requestIdOf = (a: Answer): string => (JSON.parse(a.body) as { requestId: string }).requestId;

describe('policy paths mean what the upstream reads (over the wire)', () => {
  let f: GatewayFixture;
  let viewer: string;
  let clerk: IssuedCertificate;
  before(async () => {
    f = await startGatewayFixture();
    const version = f.app.policy.version;
    await applyPolicySources(f.store, [{ file: 'payments.yaml', text: POLICY }]);
    for (let i = 0; i < 500 && f.app.policy.version === version; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(f.app.policy.version > version, 'the test policy was not loaded');
    viewer = (await f.session('vera', { payments: ['viewer'] })).cookie;
    clerk = await issueCertificate(f.ca, { namespace: 'shop', service: 'clerk' });
  });
  after(async () => f.close());

  /** The one audit event of an answer's request. */
  async function eventOf(a: Answer): Promise<AuditEvent> {
    const id = requestIdOf(a);
    const mine = (await f.events()).filter((e) => e['gatehouse.request_id'] === id);
    assert.equal(mine.length, 1, JSON.stringify(mine));
    return mine[0]!;
  }

  it('deny /admin/** is not bypassed by GET /ADMIN/users or /Admin (a viewer, human listener)', async () => {
    assert.equal((await call(f, { listener: 'human', host: APP_HOST, cookie: viewer, path: '/v1/things' })).status, 200);
    for (const path of ['/ADMIN/users', '/Admin', '/aDMIN/users?x=1']) {
      const r = await call(f, { listener: 'human', host: APP_HOST, cookie: viewer, path, headers: { accept: 'application/json' } });
      assert.equal(r.status, 403, `${path}: ${r.body.slice(0, 200)}`);
      assert.equal(codeOf(r), 'ERR_POLICY_DENIED');
      const ev = await eventOf(r);
      assert.deepEqual([ev['gatehouse.rule'], ev['gatehouse.path_comparison']], ['no-admin', 'case-folded']);
    }
  });

  it('deny /v1/internal/** is not bypassed by /v1/INTERNAL/keys (a service), nor on a case-insensitive route', async () => {
    for (const host of ['api.payments', LENIENT_HOST]) {
      for (const path of ['/v1/INTERNAL/keys', '/V1/Internal/keys', '/ADMIN/users']) {
        const r = await call(f, { listener: 'service', host, path });
        assert.equal(r.status, 403, `${host}${path}: ${r.body.slice(0, 200)}`);
        assert.equal(codeOf(r), 'ERR_POLICY_DENIED');
      }
    }
  });

  it('double encoding, over-long UTF-8, a trailing dot, %20 and %3B are refused with 400 naming the form, audited once, never forwarded', async () => {
    const cases: [string, string][] = [
      ['/v1/charges/%252e%252e%252fadmin', 'double-encoding'],
      ['/v1/%C0%AE%C0%AE/admin', 'overlong-utf8'],
      ['/v1/internal./keys', 'trailing-dot'],
      ['/v1/internal%20/keys', 'encoded-space'],
      ['/admin%3Bx=1', 'encoded-semicolon'],
    ];
    for (const [path, problem] of cases) {
      for (const listener of ['service', 'human'] as const) {
        const r = await call(f, { listener, path, ...(listener === 'human' ? { cookie: viewer } : {}) });
        assert.equal(r.status, 400, `${listener} ${path}: ${r.body.slice(0, 200)}`);
        assert.equal(codeOf(r), 'ERR_PATH_REJECTED');
        assert.match(r.body, new RegExp(`request path refused: ${problem}`));
        const ev = await eventOf(r);
        assert.deepEqual([ev['event.reason'], ev['gatehouse.error_code'], ev['gatehouse.reasons']], [problem, 'ERR_PATH_REJECTED', ['bad-path']]);
      }
    }
  });

  it('every form in the hostile corpus reaches the upstream unchanged on a route that allows it, and a deny still holds there', async () => {
    for (const [path, problem] of HOSTILE_PATHS) {
      if (!(PATH_FORMS as readonly string[]).includes(problem)) continue;
      const r = await call(f, { listener: 'service', host: LENIENT_HOST, path });
      assert.equal(r.status, 200, `${path}: ${r.body.slice(0, 200)}`);
      assert.equal((JSON.parse(r.body) as { url: string }).url, path, 'the upstream got another spelling');
    }
    // allowed spellings are still compared folded against deny rules
    const r = await call(f, { listener: 'service', host: LENIENT_HOST, path: '/V1/INTERNAL/keys%20' });
    assert.equal(r.status, 403);
  });

  it('allow rules stay exact on an exact route (GET /V1/Orders/7 is not /v1/orders/*) and compare folded on a case-insensitive one', async () => {
    const exact = await call(f, { listener: 'service', cert: clerk, host: 'api.payments', path: '/V1/Orders/7' });
    assert.equal(exact.status, 403);
    assert.equal((await call(f, { listener: 'service', cert: clerk, host: 'api.payments', path: '/v1/orders/7' })).status, 200);
    const folded = await call(f, { listener: 'service', cert: clerk, host: LENIENT_HOST, path: '/V1/Orders/7' });
    assert.equal(folded.status, 200, folded.body.slice(0, 200));
    assert.equal((JSON.parse(folded.body) as { url: string }).url, '/V1/Orders/7');
  });

  it('routes[].paths and routes[].allowPathForms take exactly the documented values', () => {
    const route = (extra: string): string => `routes:\n  - { host: a.b, namespace: ns, service: svc, upstream: "http://127.0.0.1:1"${extra} }\n`;
    const ok = parseConfig(route(`, paths: case-insensitive, allowPathForms: [${PATH_FORMS.join(', ')}]`), '/x.yaml').routes[0]!;
    assert.deepEqual([ok.paths, ok.allowPathForms], ['case-insensitive', [...PATH_FORMS]]);
    const plain = parseConfig(route(''), '/x.yaml').routes[0]!;
    assert.deepEqual([plain.paths, plain.allowPathForms], ['exact', []]);
    assert.throws(() => parseConfig(route(', paths: insensitive'), '/x.yaml'), /routes\[0\]\.paths must be one of exact, case-insensitive/);
    assert.throws(() => parseConfig(route(', allowPathForms: [dot-segment]'), '/x.yaml'), /routes\[0\]\.allowPathForms\[0\] must be one of double-encoding/);
  });
});
