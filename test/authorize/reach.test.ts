// canReach: the question token exchange asks ("may this caller call that service at all?").
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from '../../src/contracts/authz.js';
import { compilePolicies } from '../../src/authorize/compile.js';
import { PolicyEngine } from '../../src/authorize/engine.js';

const svc = (namespace: string, service: string): Principal => ({ kind: 'service', spiffeId: `spiffe://example.org/ns/${namespace}/sa/${service}`, namespace, service, certSerial: '01' });
const user = (roles: Record<string, string[]>): Principal => ({ kind: 'user', userId: 'alice', roles });

const engine = new PolicyEngine(
  compilePolicies(
    [
      {
        file: 'payments.yaml',
        text: `namespace: payments
rules:
  - name: web-creates-charges
    from: [{ namespace: frontend, service: web }]
    to: { service: api, methods: [POST], paths: ["/v1/charges"] }
  - name: monitoring-everything
    from: [{ namespace: monitoring }]
    to: { service: "*", methods: [GET], paths: ["/healthz"] }
  - name: ops
    from: [{ role: ops-admin }]
    to: { service: api, paths: ["/admin/**"] }
  - name: no-batch
    effect: deny
    from: [{ namespace: jobs, service: batch }]
    to: { service: api }
`,
      },
    ],
    1,
  ),
);

describe('canReach', () => {
  it('is true when some allow rule admits the caller to the service', () => {
    assert.equal(engine.canReach(svc('frontend', 'web'), 'payments', 'api'), true);
    assert.equal(engine.canReach(svc('monitoring', 'prober'), 'payments', 'ledger'), true, 'namespace-wide caller, every service');
    assert.equal(engine.canReach(user({ payments: ['ops-admin'] }), 'payments', 'api'), true);
  });

  it('is false otherwise: other services, other namespaces, roles held elsewhere, deny-only callers, no policy', () => {
    assert.equal(engine.canReach(svc('frontend', 'cms'), 'payments', 'api'), false);
    assert.equal(engine.canReach(svc('frontend', 'web'), 'payments', 'ledger'), false);
    assert.equal(engine.canReach(user({ frontend: ['ops-admin'] }), 'payments', 'api'), false);
    assert.equal(engine.canReach(svc('jobs', 'batch'), 'payments', 'api'), false);
    assert.equal(engine.canReach(svc('frontend', 'web'), 'nowhere', 'api'), false);
    assert.equal(new PolicyEngine().canReach(svc('frontend', 'web'), 'payments', 'api'), false);
  });
});
