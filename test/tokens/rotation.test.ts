// Signing keys shared by replicas: exactly one new key per rotation, adopted by every replica
// through the watch; old keys published until every token they signed has expired.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError, isGatehouseError } from '../../src/errors.js';
import { text } from '../../src/store/index.js';
import { KeyRing, RETIRED_GRACE_MS, SIGNING_KEY_PREFIX, SIGNING_POINTER_KEY, TOKEN_LIMITS, type StoredSigningKey } from '../../src/tokens/index.js';
import { AUDIENCE, CALLER, harness, until, type Harness } from './helpers.js';

const R = TOKEN_LIMITS.rotateAfterMs;
const P = TOKEN_LIMITS.prepublishMs;

async function storedKeys(h: Harness): Promise<StoredSigningKey[]> {
  const r = await h.store.range({ prefix: SIGNING_KEY_PREFIX });
  return r.kvs.map((kv) => JSON.parse(text(kv.value)) as StoredSigningKey).sort((a, b) => a.activateAt - b.activateAt);
}

describe('KeyRing rotation across replicas', () => {
  let h: Harness;
  const rings: KeyRing[] = [];
  const errors: string[] = [];
  const open = async (): Promise<KeyRing> => {
    const ring = await KeyRing.open({ store: h.store, clock: h.clock, kek: h.kek, onError: (e) => errors.push(e.code) });
    rings.push(ring);
    return ring;
  };
  const settleAll = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      await Promise.all(rings.map((r) => r.idle()));
      await h.settle();
    }
  };

  beforeEach(async () => {
    h = await harness();
    rings.length = 0;
    errors.length = 0;
  });
  afterEach(async () => {
    for (const r of rings) await r.close();
    await h.close();
  });

  it('two replicas starting together create exactly one first key and both sign with it', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    await settleAll();
    const keys = await storedKeys(h);
    assert.equal(keys.length, 1);
    assert.equal(keys[0]!.activateAt, h.clock.now(), 'the first key signs at once: nothing else can');
    const pointer = JSON.parse(text((await h.store.get(SIGNING_POINTER_KEY))!.value)) as { kid: string };
    assert.equal(pointer.kid, keys[0]!.kid);
    assert.equal(a.signingKey().kid, keys[0]!.kid);
    assert.equal(b.signingKey().kid, keys[0]!.kid);
    assert.equal(a.stats().rotations + b.stats().rotations, 1);
    assert.deepEqual(errors, []);
  });

  it('each scheduled rotation creates exactly one key; both replicas publish it first, then sign with it', async () => {
    const a = await open();
    const b = await open();
    await settleAll();
    let previous = a.signingKey().kid;
    for (let turn = 1; turn <= 3; turn++) {
      // Both replicas' timers fire at the same instant and race for the pointer.
      await h.advance(R - P);
      await settleAll();
      const keys = await storedKeys(h);
      const live = keys.filter((k) => h.clock.now() < k.expireAt);
      const newest = live[live.length - 1]!;
      assert.equal(keys.filter((k) => k.createdAt === h.clock.now()).length, 1, `turn ${turn}: exactly one new key`);
      assert.equal(newest.activateAt, h.clock.now() + P, 'published prepublishMs before it signs');
      await until(() => a.publishedKey(newest.kid) !== undefined && b.publishedKey(newest.kid) !== undefined);
      // Published, not yet signing.
      assert.equal(a.signingKey().kid, previous);
      assert.equal(b.signingKey().kid, previous);
      // The replaced key stops signing exactly when the new one starts.
      const old = keys.find((k) => k.kid === previous)!;
      assert.equal(old.retireAt, newest.activateAt);
      assert.equal(old.expireAt, newest.activateAt + RETIRED_GRACE_MS);

      await h.advance(P);
      await settleAll();
      assert.equal(a.signingKey().kid, newest.kid);
      assert.equal(b.signingKey().kid, newest.kid);
      previous = newest.kid;
    }
    const total = a.stats().rotations + b.stats().rotations;
    assert.equal(total, 4, 'one first key and three rotations');
    assert.ok(a.stats().adopted + b.stats().adopted >= 3, 'every lost race adopted the winner');
    assert.deepEqual(errors, []);
  });

  it('forced rotations racing on two replicas still create one key', async () => {
    const a = await open();
    const b = await open();
    await settleAll();
    const before = (await storedKeys(h)).length;
    const [ra, rb] = await Promise.all([a.rotate({ force: true }), b.rotate({ force: true })]);
    await settleAll();
    assert.equal((await storedKeys(h)).length, before + 1);
    assert.equal(ra.kid, rb.kid);
    assert.equal([ra.rotated, rb.rotated].filter(Boolean).length, 1);
  });

  it('a retired key is unpublished and deleted by its lease once every token it signed has expired', async () => {
    const a = await open();
    await settleAll();
    const first = a.signingKey().kid;
    await h.advance(R);
    await settleAll();
    const second = a.signingKey().kid;
    assert.notEqual(first, second);
    assert.ok(a.publishedKey(first) !== undefined, 'still published during its grace');
    assert.deepEqual(a.published().map((k) => k.kid).sort(), [first, second].sort());
    await h.advance(RETIRED_GRACE_MS);
    await settleAll();
    assert.equal(a.publishedKey(first), undefined, 'unpublished at its expireAt');
    // The lease is rounded up to whole seconds (plus one), so the store lets go a moment later.
    await h.advance(2_000);
    await settleAll();
    assert.deepEqual((await storedKeys(h)).map((k) => k.kid), [second], 'the lease removed it from the store');
    await until(() => a.published().length === 1);
  });

  it('after a long outage (every key expired) a new key signs at once', async () => {
    let a = await open();
    await settleAll();
    const first = a.signingKey().kid;
    await a.close();
    rings.length = 0;
    await h.advance(3 * R + RETIRED_GRACE_MS);
    assert.equal((await storedKeys(h)).length, 0);
    a = await open();
    await settleAll();
    assert.notEqual(a.signingKey().kid, first);
  });

  it('a rotation the store refuses is retried; the current key signs meanwhile', async () => {
    let down = false;
    const flaky = new Proxy(h.store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (down && ['get', 'txn', 'grant', 'range'].includes(String(prop))) return Promise.reject(new GatehouseError('ERR_STORE_UNAVAILABLE', 'down', { retryable: true }));
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const ring = await KeyRing.open({ store: flaky, clock: h.clock, kek: h.kek, retryMs: 30_000, onError: (e) => errors.push(e.code) });
    rings.push(ring);
    const first = ring.signingKey().kid;
    down = true;
    await h.advance(R - P);
    await settleAll();
    assert.ok(errors.includes('ERR_STORE_UNAVAILABLE'));
    assert.equal((await storedKeys(h)).length, 1, 'no key was created');
    await h.advance(P);
    assert.equal(ring.signingKey().kid, first, 'the current key keeps signing past its rotation');
    down = false;
    await h.advance(30_000);
    await settleAll();
    assert.equal((await storedKeys(h)).length, 2, 'the retry created the next key');
    await h.advance(P);
    await settleAll();
    assert.notEqual(ring.signingKey().kid, first);
  });

  it('a rotation that keeps losing the pointer race gives up after five attempts with a retryable conflict, and is retried later', async () => {
    let racing = false;
    let txns = 0;
    // another writer moves the pointer between each attempt's read and its transaction
    const contended = new Proxy(h.store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return async (...args: unknown[]) => {
          if (prop === 'txn' && racing) {
            txns++;
            const pointer = await target.get(SIGNING_POINTER_KEY);
            await target.put(SIGNING_POINTER_KEY, pointer!.value);
          }
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const ring = await KeyRing.open({ store: contended, clock: h.clock, kek: h.kek, retryMs: 30_000, onError: (e) => errors.push(e.code) });
    rings.push(ring);
    racing = true;
    await h.advance(R - P);
    await settleAll();
    assert.equal(txns, 5, 'five attempts, then the rotation gives up');
    assert.deepEqual(errors, ['ERR_STORE_CONFLICT']);
    assert.equal((await storedKeys(h)).length, 1, 'no key was created');
    racing = false;
    await h.advance(30_000);
    await settleAll();
    assert.equal((await storedKeys(h)).length, 2, 'the retry created the next key');
  });

  it('a short rotation period gets a proportionally short prepublish time', async () => {
    const ring = await KeyRing.open({ store: h.store, clock: h.clock, kek: h.kek, rotateAfterMs: 60_000 });
    rings.push(ring);
    assert.equal(ring.prepublishMs, 15_000);
    const first = ring.signingKey().kid;
    await h.advance(45_000);
    await settleAll();
    assert.equal(ring.published().length, 2);
    await h.advance(15_000);
    await settleAll();
    assert.notEqual(ring.signingKey().kid, first);
  });

  it('refuses a rotation period shorter than twice the prepublish time', async () => {
    await assert.rejects(
      KeyRing.open({ store: h.store, clock: h.clock, kek: h.kek, rotateAfterMs: 60_000, prepublishMs: 60_000 }),
      (err: unknown) => isGatehouseError(err, 'ERR_CONFIG_INVALID'),
    );
  });
});

describe('rotation overlap with the token service', () => {
  it('a token of the old key verifies until it expires, then is refused; after the grace its kid is unknown', async () => {
    const h = await harness();
    try {
      const t = await h.open();
      // Mint just before the next key activates, so the token outlives the switch.
      await h.advance(R - 60_000);
      const old = await t.mint({ subject: CALLER, audience: AUDIENCE, namespace: 'payments', roles: ['reader'] });
      await h.advance(60_000);
      const fresh = await t.mint({ subject: 'someone-else', audience: AUDIENCE, namespace: 'payments', roles: [] });
      assert.notEqual(fresh.kid, old.kid, 'the new key signs now');
      assert.ok(t.jwks().keys.some((k) => k.kid === old.kid), 'the old key is still published');
      assert.equal((await t.verify(old.token, { audience: AUDIENCE })).kid, old.kid);

      await h.advance(old.expiresAt - h.clock.now() + TOKEN_LIMITS.clockSkewSeconds * 1000);
      await assert.rejects(t.verify(old.token, { audience: AUDIENCE }), (e: unknown) => isGatehouseError(e, 'ERR_TOKEN_EXPIRED'));

      await h.advance(RETIRED_GRACE_MS);
      assert.ok(!t.jwks().keys.some((k) => k.kid === old.kid), 'unpublished after the grace');
      await assert.rejects(t.verify(old.token, { audience: AUDIENCE }), (e: unknown) => isGatehouseError(e, 'ERR_TOKEN_UNKNOWN_KEY'));
    } finally {
      await h.close();
    }
  });
});
