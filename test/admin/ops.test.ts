// The local operator API's arguments: a wrong shape is a coded 400 naming the field, never a 500.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isGatehouseError, type ErrorCode } from '../../src/errors.js';
import { ManualClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { runStoreOp, type StoreOpName } from '../../src/admin/ops.js';
import { explainRequest } from '../../src/admin/console/graph.js';
import { parseAuditQuery } from '../../src/admin/audit-api.js';

describe('admin operation arguments', () => {
  let dir: string;
  let store: EmbeddedStore;
  const clock = new ManualClock();
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gh-ops-'));
    store = await openEmbeddedStore({ kind: 'embedded', path: dir, clock });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const refused = (name: StoreOpName, args: unknown, code: ErrorCode, message?: RegExp) =>
    assert.rejects(runStoreOp(name, store, args, clock), (e: unknown) => isGatehouseError(e, code) && (message === undefined || message.test(e.message)), `${name} ${JSON.stringify(args)}`);

  it('refuses wrong shapes with ERR_BAD_REQUEST naming the field', async () => {
    await refused('policy.apply', { sources: 'x' }, 'ERR_BAD_REQUEST', /^sources must be a list/);
    await refused('policy.apply', { sources: [{ file: 'a.yaml' }] }, 'ERR_BAD_REQUEST', /^sources\[0\]\.text is required$/);
    await refused('user.add', { id: 'alice', roles: ['payments:ops'], enrollmentTtlMs: 1 }, 'ERR_BAD_REQUEST', /^enrollmentTtlMs must be at least 60000$/);
    await refused('user.add', null, 'ERR_BAD_REQUEST', /^the body must be a map/);
    await refused('totp.import', { tokens: [{ serial: 'T1', sealedSeed: 'v1.x', digits: 7, period: 30, algorithm: 'sha1' }] }, 'ERR_BAD_REQUEST', /^tokens\[0\]\.digits must be one of 6, 8, got number 7$/);
    await refused('totp.import', { tokens: [{ serial: 'T1', sealedSeed: 'plain', digits: 6, period: 30, algorithm: 'sha1' }] }, 'ERR_BAD_REQUEST', /sealedSeed must be a sealed seed/);
    await refused('cert.revoke', {}, 'ERR_BAD_REQUEST', /^serial is required$/);
  });

  it('keeps the owning part\'s codes for what the values mean', async () => {
    await refused('user.add', { id: 'Not A User', roles: [], enrollmentTtlMs: 60_000 }, 'ERR_USER_INVALID');
    await refused('cert.revoke', { serial: 'zz' }, 'ERR_CERT_REVOCATION_INVALID');
    await refused('cert.revoke', { serial: '0a', reason: 'because' }, 'ERR_CERT_REVOCATION_INVALID');
    await refused('revoke', { kind: 'nope', id: 'x' }, 'ERR_REVOCATION_INVALID');
  });

  it('console explain and audit queries refuse bad parameters with ERR_BAD_REQUEST', () => {
    assert.deepEqual(explainRequest({ from: 'spiffe://td/ns/a/sa/b', namespace: 'pay', service: 'api' }), {
      principal: { kind: 'service', spiffeId: 'spiffe://td/ns/a/sa/b', namespace: 'a', service: 'b', certSerial: '' }, namespace: 'pay', service: 'api', method: 'GET', path: '/',
    });
    for (const q of [{ namespace: 'pay', service: 'api' }, { from: 'r', namespace: 'Pay', service: 'api' }, { from: ['a', 'b'], namespace: 'pay', service: 'api' }, { from: 'spiffe://td/ns/a/sa/b/', namespace: 'pay', service: 'api' }]) {
      assert.throws(() => explainRequest(q), (e: unknown) => isGatehouseError(e, 'ERR_BAD_REQUEST'), JSON.stringify(q));
    }
    assert.equal(parseAuditQuery({ limit: '1000' }, 0).limit, 1000);
    for (const q of [{ limit: '0' }, { limit: '1001' }, { limit: '1e3' }, { user: ['a', 'b'] }, { since: 'yesterday' }]) {
      assert.throws(() => parseAuditQuery(q, 0), (e: unknown) => isGatehouseError(e, 'ERR_BAD_REQUEST'), JSON.stringify(q));
    }
  });
});
