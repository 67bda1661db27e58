// What a policy means, case by case; each verdict is also checked against casbin.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AccessRequest, Decision, Principal } from '../../src/contracts/authz.js';
import { DECISION_REASONS } from '../../src/contracts/authz.js';
import { compilePolicies } from '../../src/authorize/compile.js';
import { casbinAllows, casbinEnforcer } from '../../src/authorize/casbin.js';
import { PolicyEngine } from '../../src/authorize/engine.js';
import { pathMatch } from '../../src/authorize/path.js';
import type { PolicyState } from '../../src/authorize/types.js';

const svc = (namespace: string, service: string): Principal => ({ kind: 'service', spiffeId: `spiffe://example.org/ns/${namespace}/sa/${service}`, namespace, service, certSerial: '01' });
const user = (roles: Record<string, string[]>): Principal => ({ kind: 'user', userId: 'alice', roles });

function compile(files: Record<string, string>, version = 1): PolicyState {
  return compilePolicies(Object.entries(files).map(([file, text]) => ({ file, text })), version);
}

/** Decides with the fast path and insists casbin reaches the same verdict. */
async function check(state: PolicyState, principal: Principal, namespace: string, service: string, method: string, path: string): Promise<Decision> {
  const req: AccessRequest = { principal, namespace, service, method, path };
  const d = new PolicyEngine(state).decide(req);
  assert.equal(casbinAllows(await casbinEnforcer(state.lines), req), d.allow, `casbin disagrees on ${JSON.stringify(req)}`);
  for (const r of d.reasons) assert.ok((DECISION_REASONS as readonly string[]).includes(r));
  return d;
}

const PAYMENTS = `namespace: payments
rules:
  - name: web-creates-charges
    from: [{ namespace: frontend, service: web }]
    to: { service: api, methods: [POST], paths: ["/v1/charges", "/v1/charges/*"] }
  - name: no-admin-from-frontend
    effect: deny
    from: [{ namespace: frontend }]
    to: { service: api, paths: ["/admin/**"] }
  - name: frontend-reads-everything
    from: [{ namespace: frontend }]
    to: { service: api }
  - name: ops
    from: [{ role: ops-admin }]
    to: { service: api, methods: [GET], paths: ["/admin/**"] }
`;

describe('policy semantics', () => {
  const state = compile({ 'payments.yaml': PAYMENTS }, 7);

  it('allows what a rule allows, naming the rule, mode and version', async () => {
    const d = await check(state, svc('frontend', 'web'), 'payments', 'api', 'POST', '/v1/charges/ch_1');
    assert.deepEqual(d, { allow: true, pass: true, reasons: ['allowed-by-rule'], rule: 'web-creates-charges', comparison: 'exact', mode: 'enforce', policyVersion: 7 });
  });

  it('denies by default: other namespace, other service, unknown namespace', async () => {
    for (const [p, ns, s] of [[svc('billing', 'web'), 'payments', 'api'], [svc('frontend', 'web'), 'payments', 'db'], [svc('frontend', 'web'), 'ledger', 'api']] as const) {
      const d = await check(state, p, ns, s, 'GET', '/v1/charges');
      assert.equal(d.allow, false);
      assert.equal(d.pass, false);
      assert.deepEqual(d.reasons, ['no-matching-rule']);
      assert.equal(d.rule, undefined);
    }
  });

  it('deny beats allow, whatever the order, and names the deny rule', async () => {
    const d = await check(state, svc('frontend', 'web'), 'payments', 'api', 'GET', '/admin/users');
    assert.equal(d.allow, false);
    assert.deepEqual(d.reasons, ['denied-by-rule']);
    assert.equal(d.rule, 'no-admin-from-frontend');
    // frontend-reads-everything (an allow after the deny) matches too, and still loses.
  });

  it('effect defaults to allow; omitted methods mean every method; omitted paths mean every path', async () => {
    for (const m of ['GET', 'DELETE', 'PATCH', 'OPTIONS']) {
      const d = await check(state, svc('frontend', 'cms'), 'payments', 'api', m, '/anything/at/all');
      assert.equal(d.allow, true, m);
      assert.equal(d.rule, 'frontend-reads-everything');
    }
  });

  it('methods listed restrict the rule', async () => {
    const s = compile({ 'payments.yaml': PAYMENTS.split('  - name: no-admin')[0]! });
    assert.equal((await check(s, svc('frontend', 'web'), 'payments', 'api', 'GET', '/v1/charges')).allow, false);
    assert.equal((await check(s, svc('frontend', 'web'), 'payments', 'api', 'POST', '/v1/charges')).allow, true);
  });

  it('"*" matches exactly one non-empty segment', () => {
    assert.ok(pathMatch('/v1/charges/7', '/v1/charges/*'));
    assert.ok(!pathMatch('/v1/charges/', '/v1/charges/*'));
    assert.ok(!pathMatch('/v1/charges', '/v1/charges/*'));
    assert.ok(!pathMatch('/v1/charges/7/refunds', '/v1/charges/*'));
    assert.ok(pathMatch('/a/x/c', '/a/*/c'));
    assert.ok(!pathMatch('/a//c', '/a/*/c'));
  });

  it('a trailing "/**" matches any depth, including none', () => {
    for (const p of ['/admin', '/admin/', '/admin/users', '/admin/users/42/keys']) assert.ok(pathMatch(p, '/admin/**'), p);
    for (const p of ['/administrator', '/', '/v1/admin']) assert.ok(!pathMatch(p, '/admin/**'), p);
    assert.ok(pathMatch('/', '/**'));
    assert.ok(!pathMatch('*', '/**'), 'a path that does not start with / matches nothing');
    assert.ok(pathMatch('/', '/') && !pathMatch('/a', '/'));
    assert.ok(pathMatch('/v1/', '/v1/') && !pathMatch('/v1', '/v1/'));
  });

  it('paths are compared exactly: no decoding, no case folding', async () => {
    for (const p of ['/V1/charges', '/v1/charges%2F7', '/v1/./charges', '/v1//charges']) {
      assert.equal((await check(state, svc('frontend', 'web'), 'payments', 'api', 'POST', p)).rule === 'web-creates-charges', false, p);
    }
  });

  it('a namespace-wide from admits every service of that namespace and no other', async () => {
    assert.equal((await check(state, svc('frontend', 'anything'), 'payments', 'api', 'GET', '/x')).allow, true);
    assert.equal((await check(state, svc('frontend2', 'web'), 'payments', 'api', 'GET', '/x')).allow, false);
  });

  it('role rules apply to people holding the role in the target namespace only', async () => {
    assert.equal((await check(state, user({ payments: ['ops-admin'] }), 'payments', 'api', 'GET', '/admin/users')).rule, 'ops');
    assert.equal((await check(state, user({ payments: ['ops-admin'] }), 'payments', 'api', 'GET', '/admin/users')).allow, true);
    const elsewhere = await check(state, user({ billing: ['ops-admin'] }), 'payments', 'api', 'GET', '/admin/users');
    assert.deepEqual([elsewhere.allow, elsewhere.reasons], [false, ['no-matching-rule']]);
    // Service rules never match a person, role rules never match a service.
    assert.equal((await check(state, user({ payments: ['frontend'] }), 'payments', 'api', 'GET', '/x')).allow, false);
    assert.equal((await check(state, svc('ops-admin', 'x'), 'payments', 'api', 'GET', '/admin/users')).allow, false);
  });

  it('dry-run reports the would-be denial and lets it pass', async () => {
    const s = compile({ 'payments.yaml': PAYMENTS.replace('namespace: payments\n', 'namespace: payments\nmode: dry-run\n') });
    const denied = await check(s, svc('frontend', 'web'), 'payments', 'api', 'GET', '/admin');
    assert.deepEqual(denied, { allow: false, pass: true, reasons: ['denied-by-rule', 'dry-run'], rule: 'no-admin-from-frontend', comparison: 'exact', mode: 'dry-run', policyVersion: 1 });
    const nothing = await check(s, svc('billing', 'x'), 'payments', 'api', 'GET', '/');
    assert.deepEqual(nothing.reasons, ['no-matching-rule', 'dry-run']);
    assert.equal(nothing.pass, true);
    const allowed = await check(s, svc('frontend', 'web'), 'payments', 'api', 'POST', '/v1/charges');
    assert.deepEqual([allowed.allow, allowed.pass, allowed.reasons], [true, true, ['allowed-by-rule']]);
  });

  it('to.service "*" covers every service of the namespace', async () => {
    const s = compile({ 'shop.yaml': 'namespace: shop\nrules:\n  - name: probes\n    from: [{ namespace: mon }]\n    to: { service: "*", methods: [GET], paths: [/healthz] }\n' });
    assert.equal((await check(s, svc('mon', 'p'), 'shop', 'cart', 'GET', '/healthz')).allow, true);
    assert.equal((await check(s, svc('mon', 'p'), 'shop', 'cart', 'GET', '/healthz/x')).allow, false);
  });

  it('the first matching deny (by file order) decides, else the first matching allow', async () => {
    const s = compile({
      'a.yaml': `namespace: a
rules:
  - { name: allow-1, from: [{ namespace: b }], to: { service: s, paths: ["/x/**"] } }
  - { name: deny-1, effect: deny, from: [{ namespace: b, service: t }], to: { service: s, paths: ["/x/*"] } }
  - { name: allow-2, from: [{ namespace: b }], to: { service: s, paths: ["/x/*"] } }
  - { name: deny-2, effect: deny, from: [{ namespace: b }], to: { service: s, paths: ["/x/y"] } }
`,
    });
    assert.equal((await check(s, svc('b', 't'), 'a', 's', 'GET', '/x/y')).rule, 'deny-1');
    assert.equal((await check(s, svc('b', 'u'), 'a', 's', 'GET', '/x/y')).rule, 'deny-2');
    assert.equal((await check(s, svc('b', 'u'), 'a', 's', 'GET', '/x/z')).rule, 'allow-1');
  });

  it('with no policy loaded every request is refused as policy-unavailable', () => {
    const d = new PolicyEngine().decide({ principal: svc('a', 'b'), namespace: 'c', service: 'd', method: 'GET', path: '/' });
    assert.deepEqual(d, { allow: false, pass: false, reasons: ['policy-unavailable'], mode: 'enforce', policyVersion: 0 });
  });

  it('swap installs newer states only', () => {
    const engine = new PolicyEngine(compile({ 'payments.yaml': PAYMENTS }, 5));
    const seen: number[] = [];
    engine.onSwap((s) => seen.push(s.version));
    assert.equal(engine.swap(compile({}, 5)), false);
    assert.equal(engine.swap(compile({}, 6)), true);
    assert.deepEqual(seen, [6]);
    assert.equal(engine.decide({ principal: svc('frontend', 'web'), namespace: 'payments', service: 'api', method: 'GET', path: '/' }).policyVersion, 6);
  });
});
