// The one backoff: delays, growth, cap, seeded jitter, and the retry loop on a ManualClock
// (nothing here sleeps).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, Delays, backoffDelay, sleep } from '../../src/lib/backoff.js';
import { ManualClock } from '../../src/lib/clock.js';
import { isGatehouseError } from '../../src/errors.js';
import { Rng } from '../helpers/rng.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('backoff delays', () => {
  it('start at min, grow by the factor (default 2) and stop at max', () => {
    const d = new Delays({ minMs: 100, maxMs: 1_000 });
    assert.deepEqual([d.next(), d.next(), d.next(), d.next(), d.next(), d.next()], [100, 200, 400, 800, 1_000, 1_000]);
    assert.equal(d.attempts, 6);
    d.reset();
    assert.equal(d.next(), 100, 'reset starts over');
    const three = new Delays({ minMs: 100, maxMs: 900, factor: 3 });
    assert.deepEqual([three.next(), three.next(), three.next()], [100, 300, 900]);
  });

  it('jitter shortens each delay by up to its fraction, from the injected source only', () => {
    const seq = [0, 0.5, 0.999];
    let i = 0;
    const d = new Delays({ minMs: 100, maxMs: 5_000, jitter: { fraction: 0.5, random: () => seq[i++]! } });
    assert.deepEqual([d.next(), d.next(), d.next()], [100, 150, 400 * (1 - 0.5 * 0.999)]);
    // the same seed gives the same delays: tests are deterministic
    const a = new Rng(42);
    const b = new Rng(42);
    const policy = (r: Rng) => ({ minMs: 20, maxMs: 250, jitter: { fraction: 0.5, random: () => r.next() } });
    const da = new Delays(policy(a));
    const db = new Delays(policy(b));
    for (let k = 0; k < 10; k++) {
      const x = da.next();
      assert.equal(x, db.next());
      assert.ok(x >= Math.min(250, 20 * 2 ** k) / 2 && x <= Math.min(250, 20 * 2 ** k));
    }
  });

  it('backoffDelay is the same arithmetic without state', () => {
    assert.deepEqual([0, 1, 2, 3, 10].map((n) => backoffDelay({ minMs: 20, maxMs: 250 }, n)), [20, 40, 80, 160, 250]);
  });

  it('refuses a policy that makes no sense, with ERR_CONFIG_INVALID', () => {
    for (const p of [{ minMs: -1, maxMs: 10 }, { minMs: 10, maxMs: 5 }, { minMs: 1, maxMs: 5, factor: 0.5 }, { minMs: 1, maxMs: 5, jitter: { fraction: 2, random: () => 0 } }]) {
      assert.throws(() => new Delays(p), (e) => isGatehouseError(e, 'ERR_CONFIG_INVALID'));
    }
  });
});

describe('backoff on the clock', () => {
  it('sleep resolves when the clock passes the delay', async () => {
    const clock = new ManualClock();
    let done = false;
    void sleep(clock, 300).then(() => (done = true));
    clock.advance(299);
    await turn();
    assert.equal(done, false);
    clock.advance(1);
    await turn();
    assert.equal(done, true);
  });

  it('retries a failing attempt after growing delays, reports each failure, and resets after a success', async () => {
    const clock = new ManualClock();
    const attempts: number[] = [];
    const errors: string[] = [];
    let failuresLeft = 2;
    const b = new Backoff(
      clock,
      { minMs: 500, maxMs: 30_000 },
      async () => {
        attempts.push(clock.now());
        if (failuresLeft-- > 0) throw new Error(`down ${failuresLeft}`);
      },
      (e) => errors.push(e.message),
    );
    const t0 = clock.now();
    b.schedule();
    assert.equal(b.pending, true);
    clock.advance(499);
    await turn();
    assert.deepEqual(attempts, []);
    clock.advance(1); // 500: first attempt fails, next in 1,000
    await turn();
    clock.advance(999);
    await turn();
    assert.equal(attempts.length, 1);
    clock.advance(1); // 1,500: second fails, next in 2,000
    await turn();
    clock.advance(2_000); // 3,500: third succeeds
    await turn();
    assert.deepEqual(attempts.map((t) => t - t0), [500, 1_500, 3_500]);
    assert.deepEqual(errors, ['down 1', 'down 0']);
    assert.equal(b.pending, false);
    b.reset();
    b.schedule();
    clock.advance(500);
    await turn();
    assert.equal(attempts.length, 4, 'after reset the first delay is min again');
    b.stop();
    b.schedule();
    clock.advance(60_000);
    await turn();
    assert.equal(attempts.length, 4, 'nothing runs after stop');
  });
});
