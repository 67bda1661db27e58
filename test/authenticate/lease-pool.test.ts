// The shared lease pool (reuse within a bucket, rollover, never shorter than asked) and the
// sign-in steps folded into one transaction each: a concurrent replay still fails.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManualClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { LeasePool } from '../../src/authenticate/lib/lease-pool.js';
import { CHALLENGES_PREFIX, CREDENTIALS_PREFIX, LOGINS_PREFIX, SESSIONS_PREFIX } from '../../src/authenticate/types.js';
import { text } from '../../src/store/index.js';
import { errorCode, makeEnv, startGateway, enroll, jar, totp, advance, LOGIN, type Env, type Gateway } from './harness.js';

describe('lease pool', () => {
  let dir: string;
  let clock: ManualClock;
  let store: EmbeddedStore;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gh-pool-'));
    clock = new ManualClock(Date.UTC(2026, 0, 1));
    store = await openEmbeddedStore({ kind: 'embedded', path: dir, clock });
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 4; i++) {
      await store.settle();
      await new Promise<void>((r) => setImmediate(r));
    }
  };

  it('reuses one lease per TTL within its bucket (concurrent callers share one grant), and a TTL of its own per TTL', async () => {
    const pool = new LeasePool(store, clock);
    let grants = 0;
    const grant = store.grant.bind(store);
    const counting = Object.create(store, { grant: { value: (ttl: number) => (grants++, grant(ttl)) } }) as EmbeddedStore;
    const p = new LeasePool(counting, clock);
    const ids = await Promise.all([p.lease(60_000), p.lease(60_000), p.lease(60_000)]);
    assert.equal(new Set(ids).size, 1);
    clock.advance(5_000);
    assert.equal(await p.lease(60_000), ids[0]);
    assert.notEqual(await p.lease(300_000), ids[0]);
    assert.equal(grants, 2);
    assert.ok(await pool.lease(1_000));
  });

  it('rolls over once a lease could no longer cover a full TTL', async () => {
    const p = new LeasePool(store, clock);
    const first = await p.lease(60_000); // slack 6 s: 66 s lease, handed out for 6 s
    clock.advance(6_000);
    assert.equal(await p.lease(60_000), first);
    clock.advance(1);
    assert.notEqual(await p.lease(60_000), first);
  });

  it('never shorter than asked: a record put at the end of the bucket lives its full TTL, and not much longer', async () => {
    for (const ttl of [1_000, 60_000, 300_000]) {
      const p = new LeasePool(store, clock);
      await p.lease(ttl);
      clock.advance(Math.min(10_000, Math.floor(ttl / 10))); // the last instant the lease is handed out
      const key = `/pool/${ttl}`;
      await store.put(key, 'v', { lease: await p.lease(ttl) });
      clock.advance(ttl - 1);
      await settle();
      assert.ok(await store.get(key), `alive just before its ${ttl} ms`);
      clock.advance(1_000 + 1);
      await settle();
      assert.equal(await store.get(key), undefined, `gone within 1 s after its ${ttl} ms`);
    }
  });

  it('forgets a lease the store lost, and does not keep a failed grant', async () => {
    const p = new LeasePool(store, clock);
    const id = await p.lease(60_000);
    await store.revoke(id);
    p.forget(id);
    assert.notEqual(await p.lease(60_000), id);
    const failing = Object.create(store, { grant: { value: () => Promise.reject(new Error('down')) } }) as EmbeddedStore;
    const q = new LeasePool(failing, clock);
    await assert.rejects(q.lease(60_000), /down/);
    await assert.rejects(q.lease(60_000), /down/, 'asks again');
  });
});

describe('sign-in steps folded into one transaction', () => {
  let env: Env;
  let gw: Gateway;
  let gw2: Gateway;
  before(async () => {
    env = await makeEnv();
    gw = await startGateway(env, { replicaId: 'h-a' });
    gw2 = await startGateway(env, { replicaId: 'h-b' });
  });
  after(async () => {
    await gw2?.close();
    await gw?.close();
    await env?.close();
  });

  it('the same assertion on two replicas at once: one passes, the other is refused, the counter moves once', async () => {
    const u = await enroll(env, gw, 'folda', ['payments:ops-admin']);
    await advance(env, 30_000);
    const cookies = jar();
    const s = await gw.request({ url: '/.gatehouse/login/start', cookies, body: { username: u.id } });
    const response = u.key.authenticate(s.json<{ options: { challenge: string } }>().options, LOGIN);
    const results = await Promise.all([gw.request({ url: '/.gatehouse/login/webauthn', cookies, body: { response } }), gw2.request({ url: '/.gatehouse/login/webauthn', cookies, body: { response } })]);
    assert.equal(results.filter((r) => r.status === 200).length, 1, results.map((r) => r.body).join(' | '));
    assert.ok(['ERR_WEBAUTHN_CHALLENGE', 'ERR_LOGIN_FACTOR_ORDER'].includes(errorCode(results.find((r) => r.status !== 200)!)));
    assert.equal((await env.store.range({ prefix: CHALLENGES_PREFIX })).kvs.length, 0, 'the challenge is consumed');
    const cred = (await env.store.get(CREDENTIALS_PREFIX + (response as { id: string }).id))!;
    assert.equal(cred.version, 2, 'registered, then one counter update');
    assert.equal((JSON.parse(text(cred.value)) as { lockedAt?: number }).lockedAt, undefined, 'not locked');
  });

  it('two good codes for one sign-in on two replicas at once: exactly one session, the sign-in is consumed', async () => {
    const u = await enroll(env, gw, 'foldb', ['payments:ops-admin']);
    await advance(env, 30_000);
    const cookies = jar();
    const s = await gw.request({ url: '/.gatehouse/login/start', cookies, body: { username: u.id } });
    const w = await gw.request({ url: '/.gatehouse/login/webauthn', cookies, body: { response: u.key.authenticate(s.json<{ options: { challenge: string } }>().options, LOGIN) } });
    assert.equal(w.status, 200, w.body);
    const sessionsBefore = (await env.store.range({ prefix: SESSIONS_PREFIX })).count;
    const now = env.clock.now();
    const results = await Promise.all([
      gw.request({ url: '/.gatehouse/login/totp', cookies: { jar: new Map(cookies.jar) }, body: { code: totp(u.seed, now) } }),
      gw2.request({ url: '/.gatehouse/login/totp', cookies: { jar: new Map(cookies.jar) }, body: { code: totp(u.seed, now + 30_000) } }),
    ]);
    assert.equal(results.filter((r) => r.status === 200).length, 1, results.map((r) => r.body).join(' | '));
    const refused = results.find((r) => r.status !== 200)!;
    assert.ok(['ERR_LOGIN_EXPIRED', 'ERR_TOTP_REPLAY'].includes(errorCode(refused)), refused.body);
    assert.equal((await env.store.range({ prefix: SESSIONS_PREFIX })).count, sessionsBefore + 1, 'one session');
    assert.equal((await env.store.range({ prefix: LOGINS_PREFIX })).kvs.filter((kv) => text(kv.value).includes('"foldb"')).length, 0, 'the sign-in is gone');
  });
});
