// `audit at`: the store as it was at a revision, and a time mapped to a revision by checkpoints.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isGatehouseError } from '../../src/errors.js';
import { revisionAt, stateAt } from '../../src/audit/index.js';
import { event, harness } from './helpers.js';

const session = (sid: string, userId: string, createdAt: number) => ({ format: 1, kind: 'primary', sid, userId, roles: { payments: ['viewer'] }, amr: ['hwk', 'user'], acr: 'aal3', credentialId: 'c', host: 'app.test', createdAt, lastSeen: createdAt, lastWebAuthnAt: createdAt, expiresAt: createdAt + 3_600_000, ip: '10.0.0.1', userAgent: 'x', lease: '1' });

describe('audit at', () => {
  it('shows sessions, policies and revocations as they were, maps a time through checkpoints, and refuses compacted history', async () => {
    const h = await harness();
    const w = await h.open({ checkpointEvery: 1, batchSize: 1 });
    const t0 = h.clock.now();
    await h.store.put('/gatehouse/policy/payments', JSON.stringify({ format: 1, namespace: 'payments', file: 'payments.yaml', source: 'x', sha256: 'aa' }));
    await h.store.put('/gatehouse/sessions/' + 'f'.repeat(64), JSON.stringify(session('sid-alice', 'alice', t0)));
    await h.store.put('/gatehouse/sessions/' + 'e'.repeat(64), JSON.stringify({ format: 1, kind: 'alias', primary: 'f'.repeat(64), host: 'b.test', createdAt: t0 }));
    w.append(event(1, h.clock));
    await w.flush(); // checkpoint #1 at t0
    const atT0 = await h.store.revision();
    h.clock.advance(60_000);
    await h.store.delete('/gatehouse/sessions/' + 'f'.repeat(64));
    await h.store.put('/gatehouse/revoked/cert/0a1b', JSON.stringify({ serial: '0a1b', revokedAt: new Date(h.clock.now()).toISOString(), reason: 'keyCompromise', notAfter: '2027-01-01T00:00:00Z' }));
    w.append(event(2, h.clock));
    await w.flush(); // checkpoint #2 at t0 + 60 s

    const then = await stateAt(h.store, atT0);
    assert.deepEqual(then.sessions.map((s) => [s.sid, s.user, s.created, s.lastSeen]), [['sid-alice', 'alice', new Date(t0).toISOString(), new Date(t0).toISOString()]]);
    assert.ok(!JSON.stringify(then).includes('f'.repeat(64)), 'never the session hash');
    assert.deepEqual(then.policies.map((p) => [p.namespace, p.file]), [['payments', 'payments.yaml']]);
    assert.deepEqual(then.revocations, []);

    const m = await revisionAt(h.store, t0 + 30_000);
    assert.equal(m.observedAt, new Date(t0).toISOString());
    assert.equal(m.next?.time, new Date(t0 + 60_000).toISOString());
    const mid = await stateAt(h.store, m.revision);
    assert.equal(mid.sessions.length, 1, 'alice was still signed in at the checkpoint before t0+30s');
    const later = await stateAt(h.store, (await revisionAt(h.store, t0 + 61_000)).revision);
    assert.deepEqual(later.sessions, []);
    assert.deepEqual(later.revocations.map((r) => [r.kind, r.id]), [['cert', '0a1b']]);

    await assert.rejects(revisionAt(h.store, t0 - 1), (e: unknown) => isGatehouseError(e, 'ERR_AUDIT_TIME_UNMAPPED'));
    await h.store.compact(await h.store.revision());
    await assert.rejects(stateAt(h.store, atT0), (e: unknown) => isGatehouseError(e, 'ERR_STORE_COMPACTED') && /compacted away/.test((e as Error).message));
    await h.close();
  });
});
