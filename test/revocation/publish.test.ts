// Broadcasting a revocation retries on the caller's clock (lib/backoff): 100 ms, then 300 ms,
// within a 1.5 s budget — driven here by a ManualClock, nothing sleeps.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../src/errors.js';
import { ManualClock } from '../../src/lib/clock.js';
import type { Bus } from '../../src/bus/index.js';
import { publishRevocation, type RevocationRecord } from '../../src/revocation/index.js';

const record: RevocationRecord = { format: 1, kind: 'user', id: 'bob', reason: 'test', revokedAt: new Date(0).toISOString(), by: 'test', expiresAt: null };
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A bus whose publish fails `failures` times, then answers with sequence 7; it notes when it was called. */
function flakyBus(clock: ManualClock, failures: number): { bus: Bus; calls: number[] } {
  const calls: number[] = [];
  const bus = {
    kind: 'memory',
    publish: async () => {
      calls.push(clock.now());
      if (calls.length <= failures) throw new GatehouseError('ERR_BUS_UNAVAILABLE', 'down', { retryable: true });
      return 7;
    },
  } as unknown as Bus;
  return { bus, calls };
}

describe('publishRevocation', () => {
  it('retries after 100 ms and then 300 ms on the injected clock', async () => {
    const clock = new ManualClock();
    const t0 = clock.now();
    const { bus, calls } = flakyBus(clock, 2);
    const errors: string[] = [];
    let result: number | null | undefined;
    void publishRevocation(bus, record, (e) => errors.push(e.message), clock).then((r) => (result = r));
    await turn();
    assert.deepEqual(calls.map((t) => t - t0), [0]);
    clock.advance(99);
    await turn();
    assert.equal(calls.length, 1, 'no retry before 100 ms');
    clock.advance(1);
    await turn();
    clock.advance(299);
    await turn();
    assert.equal(calls.length, 2, 'the second pause is 300 ms');
    clock.advance(1);
    await turn();
    assert.deepEqual(calls.map((t) => t - t0), [0, 100, 400]);
    assert.equal(result, 7);
    assert.deepEqual(errors, ['down', 'down']);
  });

  it('gives up after three attempts and answers null (the store already holds the revocation)', async () => {
    const clock = new ManualClock();
    const { bus, calls } = flakyBus(clock, 10);
    let result: number | null | undefined;
    void publishRevocation(bus, record, undefined, clock).then((r) => (result = r));
    for (let i = 0; i < 5; i++) {
      clock.advance(300);
      await turn();
    }
    assert.equal(calls.length, 3);
    assert.equal(result, null);
  });
});
