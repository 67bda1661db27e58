// The bus conformance suite on the in-process bus, plus what only it can show cheaply.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isGatehouseError } from '../../src/errors.js';
import { openMemoryBus } from '../../src/bus/memory.js';
import type { Bus } from '../../src/bus/types.js';
import { runBusConformance } from './bus.js';

const RETAIN = 2_000;

runBusConformance('memory', async () => {
  const bus = await openMemoryBus({ kind: 'memory', retain: RETAIN });
  return {
    open: async (): Promise<Bus> => bus,
    // Retention is by count: publishing RETAIN fillers pushes everything older out.
    dropRetained: async () => {
      for (let i = 0; i < RETAIN; i++) await bus.publish('filler.x', '');
    },
    close: () => bus.close(),
  };
});

describe('memory bus', () => {
  it('ends a subscriber that falls behind by more than `retain` with ERR_BUS_SEQUENCE_GONE', async () => {
    const bus = await openMemoryBus({ kind: 'memory', retain: 10 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const errors: Error[] = [];
    const got: number[] = [];
    await bus.subscribe('slow.x', async (m) => {
      await gate;
      got.push(m.seq);
    }, { onError: (e) => errors.push(e) });
    for (let i = 0; i < 30; i++) await bus.publish('slow.x', String(i));
    release();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(errors.length, 1);
    assert.ok(isGatehouseError(errors[0], 'ERR_BUS_SEQUENCE_GONE'));
    assert.deepEqual(got, [1], 'only the message already in the handler completes');
    await bus.close();
  });

  it('an idle subscriber on another subject is not ended by eviction', async () => {
    const bus = await openMemoryBus({ kind: 'memory', retain: 5 });
    const errors: Error[] = [];
    const got: string[] = [];
    await bus.subscribe('quiet.*', (m) => void got.push(m.subject), { onError: (e) => errors.push(e) });
    for (let i = 0; i < 50; i++) await bus.publish('busy.x', String(i));
    await bus.publish('quiet.y', 'hello');
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(errors, []);
    assert.deepEqual(got, ['quiet.y']);
    await bus.close();
  });

  it('rejects a bad retain with ERR_CONFIG_INVALID', async () => {
    await assert.rejects(openMemoryBus({ kind: 'memory', retain: 0 }), (e: unknown) => isGatehouseError(e, 'ERR_CONFIG_INVALID'));
  });
});
