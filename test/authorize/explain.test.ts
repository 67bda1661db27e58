// principalFromSpiffeId (policy test cases, explain --from): the gateway's strict SPIFFE parser, not a looser copy.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { principalFromSpiffeId } from '../../src/authorize/explain.js';

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
