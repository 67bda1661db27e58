// Issue 11 §5: revocations are validated, listed and liftable. Before, a user or service
// revocation (no lease) stayed until someone ran `etcdctl del` — impossible on the embedded
// store — and a typo (an unknown user, a foreign trust domain) was stored as a permanent record.
// Here: checkRevocationTarget refuses typos unless forced; liftRevocation deletes the record and
// broadcasts the lift; every RevocationSet following the store drops it, one that knew it from
// the bus only drops it on the lift, and an older bus message cannot bring it back.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isGatehouseError } from '../../src/errors.js';
import { systemClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { openBus, type Bus } from '../../src/bus/index.js';
import {
  RevocationSet, checkRevocationTarget, liftRevocation, listRevocations, publishRevocation, revoke, type RevocationRecord,
} from '../../src/revocation/index.js';
import { waitFor } from '../helpers/programs.js';

const TD = 'example.org';

describe('lifting a revocation', () => {
  let dirs: string[];
  let store: EmbeddedStore;
  /** Another replica's store: its set hears revocations of `store` over the bus only. */
  let away: EmbeddedStore;
  let bus: Bus;
  let a: RevocationSet;
  let b: RevocationSet;
  let c: RevocationSet;
  const errors: string[] = [];

  before(async () => {
    dirs = [mkdtempSync(path.join(tmpdir(), 'gh-lift-')), mkdtempSync(path.join(tmpdir(), 'gh-lift-'))];
    store = await openEmbeddedStore({ kind: 'embedded', path: dirs[0]! });
    away = await openEmbeddedStore({ kind: 'embedded', path: dirs[1]! });
    bus = await openBus({ kind: 'memory' });
    const onError = (e: Error): void => void errors.push(e.message);
    // a and b: two replicas of one store and bus; c: a replica whose store never saw these records
    a = await RevocationSet.open({ store, bus, onError });
    b = await RevocationSet.open({ store, bus, onError });
    c = await RevocationSet.open({ store: away, bus, onError });
    await store.put('/gatehouse/users/alice', JSON.stringify({ format: 1, id: 'alice', roles: {}, status: 'active', createdAt: 0 }));
  });
  after(async () => {
    await Promise.all([a?.close(), b?.close(), c?.close()]);
    await bus?.close();
    await store?.close();
    await away?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const everywhere = (what: string, kind: 'user' | 'service', id: string, held: boolean) =>
    waitFor(what, async () => ([a, b].every((s) => s.has(kind, id) === held) ? true : undefined), 5_000, 5);

  it('a user revocation (no lease) is lifted by deleting its record: every replica drops it, and the older bus message cannot bring it back', async () => {
    const r = await revoke(store, bus, { kind: 'user', id: 'alice', reason: 'test', by: 'test' }, systemClock);
    assert.equal(r.record.expiresAt, null, 'no lease');
    await everywhere('both replicas hold the revocation', 'user', 'alice', true);
    const lifted = await liftRevocation(store, bus, { kind: 'user', id: 'alice', reason: 'found', by: 'test' }, systemClock);
    assert.deepEqual([lifted.lifted.kind, lifted.lifted.id, lifted.lifted.revokedAt, lifted.key], ['user', 'alice', r.record.revokedAt, '/gatehouse/revoked/user/alice']);
    assert.notEqual(lifted.published, null, 'the lift is broadcast');
    assert.equal(await store.get('/gatehouse/revoked/user/alice'), undefined);
    await everywhere('both replicas dropped it', 'user', 'alice', false);
    // a JetStream replay, a slow publisher: the revocation that was lifted arrives again
    await publishRevocation(bus, r.record);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(a.has('user', 'alice') || b.has('user', 'alice'), false, 'an older bus message does not bring it back');
    // revoked again later: that is a new revocation, and it counts
    await new Promise((resolve) => setTimeout(resolve, 2));
    await revoke(store, bus, { kind: 'user', id: 'alice', reason: 'again', by: 'test' }, systemClock);
    await everywhere('revoked again', 'user', 'alice', true);
  });

  it('a replica that knows a revocation from the bus only (its store watch never saw the record) drops it on the lift', async () => {
    const spiffeId = `spiffe://${TD}/ns/frontend/sa/bus-only`;
    await revoke(store, bus, { kind: 'service', id: spiffeId, by: 'test' }, systemClock);
    await waitFor('c heard it on the bus', async () => (c.has('service', spiffeId) ? true : undefined), 5_000, 5);
    await liftRevocation(store, bus, { kind: 'service', id: spiffeId, by: 'test' }, systemClock);
    await waitFor('c dropped it on the lift', async () => (!c.has('service', spiffeId) ? true : undefined), 5_000, 5);
    await everywhere('a and b dropped it on the delete', 'service', spiffeId, false);
  });

  it('a session or token revocation (leased) is lifted with its lease; nothing revoked: ERR_REVOCATION_NOT_FOUND; a certificate: ERR_REVOCATION_PERMANENT', async () => {
    const t = await revoke(store, undefined, { kind: 'token', id: 'jti-to-lift-0001', by: 'test' }, systemClock);
    const lease = (await store.get(t.key))?.lease;
    assert.ok(lease !== undefined);
    await liftRevocation(store, undefined, { kind: 'token', id: 'jti-to-lift-0001', by: 'test' }, systemClock);
    await assert.rejects(store.keepAlive(lease), (e: unknown) => isGatehouseError(e, 'ERR_STORE_LEASE_NOT_FOUND'), 'the lease ended with the record');
    await assert.rejects(liftRevocation(store, undefined, { kind: 'token', id: 'jti-to-lift-0001', by: 'test' }, systemClock), (e: unknown) => isGatehouseError(e, 'ERR_REVOCATION_NOT_FOUND'));
    await assert.rejects(liftRevocation(store, undefined, { kind: 'cert', id: '0a', by: 'test' }, systemClock), (e: unknown) => isGatehouseError(e, 'ERR_REVOCATION_PERMANENT'));
  });

  it('an unreadable record is listed as such (it counts as revoked) and can be lifted', async () => {
    await store.put('/gatehouse/revoked/user/mallory', '{not json');
    await everywhere('fail closed: mallory counts as revoked', 'user', 'mallory', true);
    const { revocations } = await listRevocations(store, { kind: 'user', now: Date.now() });
    assert.deepEqual(revocations.find((r) => r.id === 'mallory'), { kind: 'user', id: 'mallory', reason: 'unspecified', revokedAt: '', by: 'unknown', expiresAt: null, unreadable: true });
    const l = await liftRevocation(store, bus, { kind: 'user', id: 'mallory', by: 'test' }, systemClock);
    assert.equal(l.lifted.unreadable, true);
    await everywhere('mallory is lifted', 'user', 'mallory', false);
  });

  it('lists what the store holds, by kind, with who revoked it and until when', async () => {
    const rec: RevocationRecord = (await revoke(store, undefined, { kind: 'service', id: `spiffe://${TD}/ns/a/sa/listed`, reason: 'retired', by: 'cli' }, systemClock)).record;
    const all = await listRevocations(store, { now: Date.now() });
    assert.equal(all.truncated, false);
    const { format: _format, ...row } = rec;
    assert.deepEqual(all.revocations.find((r) => r.id === rec.id), row);
    assert.deepEqual((await listRevocations(store, { kind: 'service', now: Date.now() })).revocations.map((r) => r.kind), ['service']);
    const capped = await listRevocations(store, { limit: 1, now: Date.now() });
    assert.deepEqual([capped.revocations.length, capped.truncated], [1, true]);
  });
});

describe('checkRevocationTarget: an operator revocation names a real user and this trust domain, unless forced', () => {
  let dir: string;
  let store: EmbeddedStore;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gh-target-'));
    store = await openEmbeddedStore({ kind: 'embedded', path: dir });
    await store.put('/gatehouse/users/bob', JSON.stringify({ format: 1, id: 'bob', roles: {}, status: 'active', createdAt: 0 }));
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses revoke user nosuchuser with ERR_USER_NOT_FOUND (before: stored as a permanent revocation)', async () => {
    await assert.rejects(checkRevocationTarget(store, 'user', 'nosuchuser', { trustDomain: TD }), (e: unknown) => isGatehouseError(e, 'ERR_USER_NOT_FOUND') && /--force/.test(e.message));
    assert.deepEqual(await checkRevocationTarget(store, 'user', 'nosuchuser', { force: true }), { skipped: 'user-not-found' });
    assert.deepEqual(await checkRevocationTarget(store, 'user', 'bob', {}), {});
  });

  it('refuses a service of another trust domain (spiffe://exmple.org/...) with ERR_REVOCATION_INVALID', async () => {
    await assert.rejects(checkRevocationTarget(store, 'service', 'spiffe://exmple.org/ns/a/sa/b', { trustDomain: TD, forceHint: 'force: true' }), (e: unknown) => isGatehouseError(e, 'ERR_REVOCATION_INVALID') && /exmple\.org.*force: true/.test(e.message));
    assert.deepEqual(await checkRevocationTarget(store, 'service', 'spiffe://exmple.org/ns/a/sa/b', { trustDomain: TD, force: true }), { skipped: 'foreign-trust-domain' });
    assert.deepEqual(await checkRevocationTarget(store, 'service', `spiffe://${TD}/ns/a/sa/b`, { trustDomain: TD }), {});
  });
});
