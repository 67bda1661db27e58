// Issue 11 §1: policy paths mean what the upstream reads. An upstream that ignores case (Express's
// default, ASP.NET, IIS) or decodes percent-escapes runs its /admin handler for /ADMIN or
// /%C5%BFecret's "secret": deny rules therefore match the folded path as well as the exact one;
// allow rules stay exact unless the route says `paths: case-insensitive`. Every verdict is also
// checked against casbin over policies/model.conf, and the decision says which comparison decided.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { AccessRequest, Decision, PathCase, Principal } from '../../src/contracts/authz.js';
import { compilePolicies } from '../../src/authorize/compile.js';
import { casbinAllows, casbinEnforcer } from '../../src/authorize/casbin.js';
import { PolicyEngine } from '../../src/authorize/engine.js';
import { foldPath, pathMatch, pathMatchFolded } from '../../src/authorize/path.js';
import type { PolicyState } from '../../src/authorize/types.js';

const MODEL = readFileSync(new URL('../../policies/model.conf', import.meta.url), 'utf8');
const svc = (namespace: string, service: string): Principal => ({ kind: 'service', spiffeId: `spiffe://example.org/ns/${namespace}/sa/${service}`, namespace, service, certSerial: '01' });
const viewer: Principal = { kind: 'user', userId: 'vera', roles: { payments: ['viewer'] } };

const PAYMENTS = `namespace: payments
rules:
  - name: no-admin
    effect: deny
    from: [{ role: viewer }, { namespace: frontend }]
    to: { service: api, paths: ["/admin/**"] }
  - name: no-internal
    effect: deny
    from: [{ namespace: frontend }]
    to: { service: api, paths: ["/v1/internal/**", "/v1/users/@me/keys", "/secret/**", "/caf%C3%A9"] }
  - name: viewers-read
    from: [{ role: viewer }]
    to: { service: api, methods: [GET], paths: ["/**"] }
  - name: web-charges
    from: [{ namespace: frontend, service: web }]
    to: { service: api, paths: ["/v1/charges/*", "/**"] }
`;

const state: PolicyState = compilePolicies([{ file: 'payments.yaml', text: PAYMENTS }], 1);
const enforcer = casbinEnforcer(state.lines, MODEL);

/** The fast path's decision; casbin over the shipped model.conf must reach the same verdict. */
async function decide(principal: Principal, path: string, pathCase?: PathCase, method = 'GET'): Promise<Decision> {
  const req: AccessRequest = { principal, namespace: 'payments', service: 'api', method, path, ...(pathCase !== undefined ? { pathCase } : {}) };
  const d = new PolicyEngine(state).decide(req);
  assert.equal(casbinAllows(await enforcer, req), d.allow, `casbin disagrees on ${JSON.stringify(req)}`);
  return d;
}

describe('policy paths compared as the upstream reads them', () => {
  it('deny /admin/** is not bypassed by GET /ADMIN/users or /Admin (a viewer on an upstream that ignores case)', async () => {
    for (const path of ['/ADMIN/users', '/Admin', '/aDmIn/users/7', '/ADMIN/']) {
      const d = await decide(viewer, path);
      assert.deepEqual([d.allow, d.rule, d.comparison], [false, 'no-admin', 'case-folded'], path);
    }
    const exact = await decide(viewer, '/admin/users');
    assert.deepEqual([exact.allow, exact.rule, exact.comparison], [false, 'no-admin', 'exact']);
  });

  it('deny /v1/internal/** is not bypassed by /v1/INTERNAL/keys (a service reaching an internal handler)', async () => {
    for (const path of ['/v1/INTERNAL/keys', '/V1/Internal/keys', '/v1/iNtErNaL']) {
      const d = await decide(svc('frontend', 'web'), path);
      assert.deepEqual([d.allow, d.rule, d.comparison], [false, 'no-internal', 'case-folded'], path);
    }
  });

  it('a deny is not bypassed by a percent-encoded or Unicode spelling that a decoding, case-insensitive upstream reads as the denied path', async () => {
    for (const path of [
      '/v1/users/%40me/keys', // "@" encoded
      '/v1/users/%40ME/KEYS',
      '/%C5%BFecret/x', // U+017F LATIN SMALL LETTER LONG S: upper-cases to "S"
      '/SECRET/x',
      '/CAF%C3%89', // "CAFÉ"
    ]) {
      const d = await decide(svc('frontend', 'web'), path);
      assert.deepEqual([d.allow, d.rule, d.comparison], [false, 'no-internal', 'case-folded'], path);
    }
  });

  it('allow rules stay exact on an exact route (GET /Orders/7 is not /orders/*); on a case-insensitive route they compare folded too, and say so; deny rules still win', async () => {
    const s = compilePolicies([{ file: 'shop.yaml', text: 'namespace: shop\nrules:\n  - { name: read-orders, from: [{ namespace: web }], to: { service: api, methods: [GET], paths: ["/orders/*"] } }\n  - { name: no-export, effect: deny, from: [{ namespace: web }], to: { service: api, paths: ["/orders/export"] } }\n' }], 1);
    const e = await casbinEnforcer(s.lines, MODEL);
    const ask = (path: string, pathCase: PathCase): Decision => {
      const req: AccessRequest = { principal: svc('web', 'www'), namespace: 'shop', service: 'api', method: 'GET', path, pathCase };
      const d = new PolicyEngine(s).decide(req);
      assert.equal(casbinAllows(e, req), d.allow, JSON.stringify(req));
      return d;
    };
    assert.deepEqual([ask('/Orders/7', 'case-insensitive').allow, ask('/Orders/7', 'case-insensitive').comparison], [true, 'case-folded']);
    assert.deepEqual([ask('/orders/7', 'case-insensitive').allow, ask('/orders/7', 'case-insensitive').comparison], [true, 'exact']);
    assert.equal(ask('/Orders/7', 'exact').allow, false);
    const d = ask('/ORDERS/Export', 'case-insensitive');
    assert.deepEqual([d.allow, d.rule, d.comparison], [false, 'no-export', 'case-folded']);
  });

  it('folding: decoded once, case-folded, separators and wildcards kept apart; every exact match is a folded one', () => {
    assert.equal(foldPath('/v1/charges'), '/v1/charges');
    assert.equal(foldPath('/ADMIN/%C5%BFecret/CAF%C3%89/%E2%84%AA'), '/admin/secret/café/k');
    assert.equal(foldPath('/a%2Fb/a%2Ab/a*b/100%25'), '/a%2fb/a%2ab/a%2ab/100%25'); // "/" "*" "%" stay escapes
    assert.equal(foldPath('/%252e%252e/%C0%AE'), '/%252e%252e/%c0%ae'); // decoded once; a malformed byte stays an escape
    assert.equal(pathMatchFolded('/A/B', '/a/*'), true);
    assert.equal(pathMatchFolded('/a*b', '/a%2Ab'), true);
    assert.equal(pathMatchFolded('/x', '/%2A'), false); // an escaped "*" in a pattern is no wildcard
    const paths = ['/', '/a', '/A/', '/a/b', '/a//b', '/%41', '/a%2Fb', '/*', '/**', '/%C3%A9', 'x'];
    const patterns = ['/', '/**', '/a/**', '/*', '/a/*', '/A', '/*/', '/a%2Fb', '/%C3%89'];
    for (const p of paths) for (const q of patterns) if (pathMatch(p, q)) assert.ok(pathMatchFolded(p, q), `${p} ${q}`);
  });
});
