// principalFromSpiffeId (policy test cases, explain --from): the gateway's strict SPIFFE parser, not a looser copy.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { principalFromSpiffeId } from '../../src/authorize/explain.js';
import { loadPolicyDir } from '../../src/authorize/dir.js';
import { explain, explainRequest } from '../../src/admin/console/graph.js';

const POLICIES = new URL('../../policies', import.meta.url).pathname;

describe('authorize/explain principalFromSpiffeId', () => {
  it('reads a workload ID into a service principal', () => {
    assert.deepEqual(principalFromSpiffeId('spiffe://example.org/ns/frontend/sa/web'), {
      kind: 'service', spiffeId: 'spiffe://example.org/ns/frontend/sa/web', namespace: 'frontend', service: 'web', certSerial: '',
    });
  });

  it('refuses what no certificate the gateway accepts could carry', () => {
    for (const id of [
      'spiffe://example.org/ns/-frontend/sa/web', // not a DNS label
      'spiffe://example.org/ns/frontend/sa/web-',
      'spiffe://example..org/ns/frontend/sa/web', // empty trust-domain label
      `spiffe://example.org/ns/${'a'.repeat(64)}/sa/web`, // label over 63
      'spiffe://example.org/ns/frontend/sa/web/',
      'SPIFFE://example.org/ns/frontend/sa/web',
      'spiffe://example.org/ns/Frontend/sa/web',
      'spiffe://example.org',
    ]) {
      assert.equal(principalFromSpiffeId(id), undefined, id);
    }
  });
});

describe('console explain: which comparison decided', () => {
  it('GET /ADMIN/users from frontend: denied by no-admin-from-frontend, compared case-folded', async () => {
    const state = await loadPolicyDir(POLICIES);
    const e = explain(state, explainRequest({ from: 'spiffe://example.org/ns/frontend/sa/web', namespace: 'payments', service: 'api', path: '/ADMIN/users' }));
    assert.deepEqual([e.verdict, e.rule, e.comparison], ['deny', 'no-admin-from-frontend', 'case-folded']);
    assert.deepEqual(e.matching.map((m) => [m.name, m.comparison]), [['no-admin-from-frontend', 'case-folded']]);
  });

  it('paths=case-insensitive compares allow rules folded, as on such a route', async () => {
    const state = await loadPolicyDir(POLICIES);
    const q = { from: 'spiffe://example.org/ns/frontend/sa/web', namespace: 'payments', service: 'api', path: '/V1/Charges/7' };
    assert.deepEqual([explain(state, explainRequest(q)).verdict, explain(state, explainRequest(q)).comparison], ['deny', null]);
    const folded = explain(state, explainRequest({ ...q, paths: 'case-insensitive' }));
    assert.deepEqual([folded.verdict, folded.rule, folded.comparison], ['allow', 'web-reads-charges', 'case-folded']);
  });
});
