// SessionManager.onEnded: an identity that ends (logout, expiry, `user disable`, a record gone
// or unreadable) is announced once on every replica, so the gateway can close its channels.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { SessionManager, type SessionEnd } from '../../src/authenticate/sessions.js';
import { disableUser } from '../../src/authenticate/users.js';
import { SESSIONS_PREFIX, USERS_PREFIX, type UserRecord } from '../../src/authenticate/types.js';
import { followerHarness, type FollowerHarness } from '../store/follower-helpers.js';

const HOST = 'app.example.org';
const HOUR = 3_600_000;
const newSession = (userId: string) => ({ userId, roles: { payments: ['viewer'] }, amr: ['hwk', 'user'], acr: 'aal3', credentialId: 'cred', lastWebAuthnAt: 0, host: HOST, ip: '127.0.0.1', userAgent: 'test' });

describe('SessionManager onEnded', () => {
  let h: FollowerHarness;
  const ends: Record<'a' | 'b', SessionEnd[]> = { a: [], b: [] };
  let a: SessionManager;
  let b: SessionManager;
  beforeEach(async () => {
    h = await followerHarness();
    ends.a = [];
    ends.b = [];
    for (const id of ['alice', 'bob']) {
      const user: UserRecord = { format: 1, id, roles: {}, status: 'active', createdAt: h.clock.now() };
      await h.store.put(USERS_PREFIX + id, JSON.stringify(user));
    }
    const open = (name: 'a' | 'b'): Promise<SessionManager> =>
      SessionManager.open({ store: h.store, clock: h.clock, idleMs: HOUR, absoluteMs: 12 * HOUR, onEnded: (e) => void ends[name].push(e) });
    a = await open('a');
    b = await open('b');
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await h.close();
  });

  it('a logout on one replica is announced on both, once', async () => {
    const s = await a.create(newSession('alice'));
    await h.settle();
    assert.equal(await a.end(s.hash), true);
    await h.settle();
    assert.deepEqual(ends.a, [{ kind: 'session', id: s.record.sid }]);
    assert.deepEqual(ends.b, [{ kind: 'session', id: s.record.sid }]);
  });

  it('user disable is announced as the user, and as each of their sessions', async () => {
    const s = await a.create(newSession('bob'));
    await h.settle();
    await disableUser(h.store, 'bob', h.clock);
    await h.settle();
    for (const got of [ends.a, ends.b]) {
      assert.deepEqual(got.filter((e) => e.kind === 'user'), [{ kind: 'user', id: 'bob' }]);
      assert.deepEqual(got.filter((e) => e.kind === 'session'), [{ kind: 'session', id: s.record.sid }]);
    }
  });

  it('a session or user record that turns unreadable ends that identity (fail closed)', async () => {
    const s = await a.create(newSession('alice'));
    await h.settle();
    await h.store.put(SESSIONS_PREFIX + s.hash, 'garbage');
    await h.store.put(USERS_PREFIX + 'bob', '{"status": 3}');
    await h.settle();
    assert.deepEqual(ends.b, [{ kind: 'session', id: s.record.sid }, { kind: 'user', id: 'bob' }]);
  });

  it('nothing is announced for what was already ended or disabled when the replica started', async () => {
    await disableUser(h.store, 'alice', h.clock);
    await h.settle();
    const seen: SessionEnd[] = [];
    const c = await SessionManager.open({ store: h.store, clock: h.clock, idleMs: HOUR, absoluteMs: 12 * HOUR, onEnded: (e) => void seen.push(e) });
    try {
      await h.store.put(USERS_PREFIX + 'alice', JSON.stringify({ format: 1, id: 'alice', roles: {}, status: 'disabled', createdAt: 1 }));
      await h.settle();
      assert.deepEqual(seen, []);
    } finally {
      await c.close();
    }
  });
});
