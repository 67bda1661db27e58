// Issue 10, §3: one unparseable record under the users prefix ended the session manager's
// watch, and a later `user disable` was never seen by that replica. Every component that
// mirrors a store prefix now follows it with the one follower: for each followed prefix, a
// corrupt record written straight into the store, then a real change after it — the change is
// seen, the bad record counted and reported. And a lost watch is healed by a re-read on the
// clock (no sleeping).
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createSecretKey, randomBytes } from 'node:crypto';
import { SessionManager } from '../../src/authenticate/sessions.js';
import { disableUser } from '../../src/authenticate/users.js';
import { USERS_PREFIX, SESSIONS_PREFIX, type UserRecord } from '../../src/authenticate/types.js';
import { PolicyEngine } from '../../src/authorize/engine.js';
import { POLICY_PREFIX, watchPolicies, type StoredPolicy } from '../../src/authorize/store.js';
import { isGatehouseError } from '../../src/errors.js';
import { CertRevocationList, revokeCertificate, revokedCertKey } from '../../src/pki/index.js';
import { RevocationSet, revoke } from '../../src/revocation/index.js';
import { KeyRing, SIGNING_KEY_PREFIX } from '../../src/tokens/index.js';
import type { AccessRequest } from '../../src/contracts/authz.js';
import { breakable, followerHarness, recordingReporter, until, type FollowerHarness } from './follower-helpers.js';

const HOST = 'app.example.org';
const HOUR = 3_600_000;

async function putUser(h: FollowerHarness, id: string, status: UserRecord['status']): Promise<void> {
  const user: UserRecord = { format: 1, id, roles: { payments: ['viewer'] }, status, createdAt: h.clock.now() };
  await h.store.put(USERS_PREFIX + id, JSON.stringify(user));
}

const newSession = (userId: string) => ({ userId, roles: { payments: ['viewer'] }, amr: ['hwk', 'user'], acr: 'aal3', credentialId: 'cred', lastWebAuthnAt: 0, host: HOST, ip: '127.0.0.1', userAgent: 'test' });

describe('a corrupt record under a followed prefix never stops its follower', () => {
  let h: FollowerHarness;
  beforeEach(async () => {
    h = await followerHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('users: after an unparseable user record, a later `user disable` is seen by the session manager', async () => {
    await putUser(h, 'alice', 'active');
    const r = recordingReporter();
    const sessions = await SessionManager.open({ store: h.store, clock: h.clock, idleMs: HOUR, absoluteMs: 12 * HOUR, follower: r.reporter });
    try {
      assert.equal(sessions.userStatus('alice'), 'active');
      await h.store.put(`${USERS_PREFIX}mallory`, '{"id": "mallory", "status": ');
      await h.store.put(`${USERS_PREFIX}trudy`, JSON.stringify({ format: 1, id: 'trudy', status: 'superuser' }));
      await disableUser(h.store, 'alice', h.clock);
      await h.settle();
      assert.equal(sessions.userStatus('alice'), 'disabled', 'the disable after the bad records is seen');
      assert.equal(sessions.userStatus('mallory'), undefined);
      assert.equal(sessions.userStatus('trudy'), undefined, 'an unknown status is no status: that user is refused');
      assert.deepEqual(r.bad.map((b) => [b.prefix, b.key, b.error.code]), [
        [USERS_PREFIX, `${USERS_PREFIX}mallory`, 'ERR_STORE_CORRUPT'],
        [USERS_PREFIX, `${USERS_PREFIX}trudy`, 'ERR_STORE_CORRUPT'],
      ]);
    } finally {
      await sessions.close();
    }
  });

  it("sessions: after an unparseable session record, another replica's new session is seen; the bad key is reported by its hash's start only", async () => {
    await putUser(h, 'alice', 'active');
    const r = recordingReporter();
    const a = await SessionManager.open({ store: h.store, clock: h.clock, idleMs: HOUR, absoluteMs: 12 * HOUR });
    const b = await SessionManager.open({ store: h.store, clock: h.clock, idleMs: HOUR, absoluteMs: 12 * HOUR, follower: r.reporter });
    try {
      const badHash = createHash('sha256').update('whatever').digest('hex');
      await h.store.put(SESSIONS_PREFIX + badHash, '{"kind": "primary", "sid": 5}');
      const s = await a.create(newSession('alice'));
      await h.settle();
      const view = b.lookup(s.id, HOST);
      assert.ok(!(view instanceof Error), `replica B knows the session made on A (${view instanceof Error ? view.code : ''})`);
      assert.equal(view.sid, s.record.sid);
      assert.equal(r.bad.length, 1);
      assert.equal(r.bad[0]?.key, `${SESSIONS_PREFIX}${badHash.slice(0, 8)}…`, 'a session key is not logged whole');
      assert.ok(!r.bad[0]?.error.message.includes(badHash), 'nor named whole in the error');
      assert.equal(b.size, 1);
      // a session record that turns unreadable ends that session here (fail closed), and is reported
      await h.store.put(SESSIONS_PREFIX + s.hash, 'garbage');
      await h.settle();
      assert.ok(isGatehouseError(b.lookup(s.id, HOST), 'ERR_SESSION_EXPIRED'));
      assert.equal(r.bad.length, 2);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('sessions and users: a lost watch is healed by a re-read on the clock; ended sessions and disabled users are seen', async () => {
    await putUser(h, 'alice', 'active');
    await putUser(h, 'bob', 'active');
    const flaky = breakable(h.store);
    const r = recordingReporter();
    const a = await SessionManager.open({ store: h.store, clock: h.clock, idleMs: HOUR, absoluteMs: 12 * HOUR });
    const b = await SessionManager.open({ store: flaky.store, clock: h.clock, idleMs: HOUR, absoluteMs: 12 * HOUR, follower: r.reporter });
    try {
      const s = await a.create(newSession('alice'));
      await h.settle();
      assert.ok(!(b.lookup(s.id, HOST) instanceof Error));
      assert.equal(await flaky.breakWatches(), 2, 'users and sessions');
      assert.deepEqual(r.lost.map((l) => l.prefix).sort(), [SESSIONS_PREFIX, USERS_PREFIX]);
      await a.end(s.hash);
      await disableUser(h.store, 'bob', h.clock);
      await h.settle();
      assert.equal(b.userStatus('bob'), 'active', 'nothing arrives while the watches are lost');
      await h.advance(500);
      await until('both re-read', () => r.resyncs.length === 2);
      assert.equal(b.userStatus('bob'), 'disabled');
      assert.ok(isGatehouseError(b.lookup(s.id, HOST), 'ERR_SESSION_EXPIRED'), 'the session ended while the watch was lost is gone');
      assert.equal(b.size, 0);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('policy: after a record that is not a policy, a later change to another namespace is compiled and decides', async () => {
    const web: AccessRequest = {
      principal: { kind: 'service', spiffeId: 'spiffe://example.org/ns/frontend/sa/web', namespace: 'frontend', service: 'web', certSerial: '01' },
      namespace: 'payments', service: 'api', method: 'POST', path: '/v1/charges',
    };
    const r = recordingReporter();
    const engine = new PolicyEngine();
    const refused: string[] = [];
    const watch = await watchPolicies(h.store, engine, { follower: r.reporter, clock: h.clock, onError: (e) => refused.push(e.code) });
    try {
      assert.deepEqual(engine.decide(web).reasons, ['no-matching-rule']);
      await h.store.put(`${POLICY_PREFIX}broken`, '{"format": 1, "source": ');
      await h.settle();
      await watch.settled();
      const source = 'namespace: payments\nrules:\n  - name: web-allow\n    effect: allow\n    from: [{ namespace: frontend, service: web }]\n    to: { service: api, methods: [POST], paths: ["/v1/charges"] }\n';
      const stored: StoredPolicy = { format: 1, namespace: 'payments', file: 'payments.yaml', source, sha256: createHash('sha256').update(source).digest('hex') };
      const rev = (await h.store.put(`${POLICY_PREFIX}payments`, JSON.stringify(stored))).revision;
      await h.settle();
      await watch.settled();
      const d = engine.decide(web);
      assert.deepEqual([d.allow, d.rule, d.policyVersion], [true, 'web-allow', rev], 'the change after the bad record is in force');
      assert.deepEqual(r.bad.map((b) => [b.prefix, b.key, b.error.code]), [[POLICY_PREFIX, `${POLICY_PREFIX}broken`, 'ERR_STORE_CORRUPT']]);
      assert.deepEqual(refused, [], 'a bad record is the follower’s report, not a refused policy set');
    } finally {
      await watch.close();
    }
  });

  it('signing keys: after a corrupt key record, a key another replica rotates in is published', async () => {
    const kek = createSecretKey(randomBytes(32));
    const r = recordingReporter();
    const a = await KeyRing.open({ store: h.store, clock: h.clock, kek });
    const b = await KeyRing.open({ store: h.store, clock: h.clock, kek, follower: r.reporter });
    try {
      const bogus = randomBytes(32).toString('base64url');
      await h.store.put(SIGNING_KEY_PREFIX + bogus, '{"format": 1, "kid": ');
      const { kid } = await a.rotate({ force: true });
      await h.settle();
      await b.idle();
      assert.ok(b.publishedKey(kid) !== undefined, 'the rotated key is published on B');
      assert.equal(b.publishedKey(bogus), undefined);
      assert.deepEqual(r.bad.map((x) => [x.prefix, x.key]), [[SIGNING_KEY_PREFIX, SIGNING_KEY_PREFIX + bogus]]);
      assert.equal(r.bad[0]?.error.code, 'ERR_STORE_CORRUPT');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('revocations: after an unreadable revocation (counted as revoked: fail closed), a later revocation is applied', async () => {
    const r = recordingReporter();
    const set = await RevocationSet.open({ store: h.store, clock: h.clock, follower: r.reporter });
    const applied: string[] = [];
    set.onRevoked((rec, via) => applied.push(`${rec.kind}:${rec.id}:${via}`));
    try {
      await h.store.put('/gatehouse/revoked/user/mallory', '{not json');
      await h.store.put('/gatehouse/revoked/nonsense', '{}');
      await revoke(h.store, undefined, { kind: 'user', id: 'bob', by: 'test' }, h.clock);
      await h.settle();
      assert.ok(set.has('user', 'bob'), 'the revocation after the bad records is applied');
      assert.ok(set.has('user', 'mallory'), 'an unreadable record that names a user still revokes it');
      assert.deepEqual(applied, ['user:mallory:store', 'user:bob:store']);
      assert.deepEqual(r.bad.map((b) => [b.prefix, b.key]), [
        ['/gatehouse/revoked/', '/gatehouse/revoked/user/mallory'],
        ['/gatehouse/revoked/', '/gatehouse/revoked/nonsense'],
      ]);
    } finally {
      await set.close();
    }
  });

  it('CRL list: after an unreadable certificate revocation (fail closed), a later one is seen', async () => {
    const r = recordingReporter();
    const list = await CertRevocationList.open(h.store, { clock: h.clock, follower: r.reporter });
    const revoked: string[] = [];
    list.onRevoked((rec) => revoked.push(rec.serial));
    try {
      await h.store.put(revokedCertKey('0a0b'), '{"revokedAt": ');
      await revokeCertificate(h.store, { serial: '0c0d', notAfter: new Date(h.clock.now() + HOUR), clock: h.clock });
      await h.settle();
      assert.ok(list.isRevoked('0c0d'), 'the revocation after the bad record is seen');
      assert.ok(list.isRevoked('0a0b'), 'the unreadable one still counts as revoked');
      assert.deepEqual(revoked, ['0a0b', '0c0d']);
      assert.deepEqual(r.bad.map((b) => [b.key, b.error.code]), [[revokedCertKey('0a0b'), 'ERR_CERT_REVOCATION_INVALID']]);
    } finally {
      await list.close();
    }
  });
});
