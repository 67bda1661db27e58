// The one bus conformance suite: every Bus implementation runs these cases (Teleport-style).
// Each case gets a fresh harness and a random subject prefix, so cases never see each other's
// messages even on a shared server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { isGatehouseError } from '../../src/errors.js';
import type { ErrorCode } from '../../src/errors.js';
import { MAX_PAYLOAD_BYTES } from '../../src/bus/subject.js';
import type { Bus, BusMessage, SubscribeOptions, Subscription } from '../../src/bus/types.js';
import { Rng } from '../helpers/rng.js';

export interface BusHarness {
  /** A connection to the same logical bus (memory: the shared instance; NATS: a new connection). */
  open(): Promise<Bus>;
  /** Restarts the server under live connections (NATS only). */
  restartServer?(): Promise<void>;
  /** Makes the bus forget every message published so far, as its retention limits eventually would. */
  dropRetained?(): Promise<void>;
  /** Closes every bus this harness opened and releases what it created. */
  close(): Promise<void>;
}

export type MakeBusHarness = () => Promise<BusHarness | { skip: string }>;

const dec = new TextDecoder();
const text = (m: BusMessage): string => dec.decode(m.data);
const prefix = (): string => `t${randomBytes(5).toString('hex')}`;

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const settle = (ms = 150): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Collector {
  readonly got: BusMessage[];
  readonly errors: Error[];
  readonly sub: Subscription;
  wait(n: number, timeoutMs?: number): Promise<void>;
}

async function collect(bus: Bus, pattern: string, options: Omit<SubscribeOptions, 'onError'> = {}): Promise<Collector> {
  const got: BusMessage[] = [];
  const errors: Error[] = [];
  const sub = await bus.subscribe(pattern, (m) => void got.push(m), { ...options, onError: (e) => errors.push(e) });
  return {
    got,
    errors,
    sub,
    wait: (n, timeoutMs) => until(`${n} messages on ${pattern} (have ${got.length})`, () => got.length >= n, timeoutMs),
  };
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isGatehouseError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

function assertIncreasing(messages: readonly BusMessage[]): void {
  for (let i = 1; i < messages.length; i++) {
    const a = messages[i - 1];
    const b = messages[i];
    assert.ok(a !== undefined && b !== undefined && b.seq > a.seq, `seq not increasing at ${i}: ${a?.seq} then ${b?.seq}`);
  }
}

export function runBusConformance(name: string, makeHarness: MakeBusHarness): void {
  describe(`bus conformance: ${name}`, () => {
    // Runs fn with a fresh harness, skipping when the harness cannot be made here.
    const withHarness = (fn: (h: BusHarness, t: TestContext) => Promise<void>) => async (t: TestContext): Promise<void> => {
      const h = await makeHarness();
      if ('skip' in h) {
        t.skip(h.skip);
        return;
      }
      try {
        await fn(h, t);
      } finally {
        await h.close();
      }
    };

    it('delivers 1,000 messages in publish order with increasing seq', withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      const c = await collect(bus, `${p}.order`);
      const seqs: number[] = [];
      for (let i = 0; i < 1000; i++) seqs.push(await bus.publish(`${p}.order`, String(i)));
      await c.wait(1000);
      await settle();
      assert.equal(c.got.length, 1000);
      assert.deepEqual(c.got.map(text), Array.from({ length: 1000 }, (_, i) => String(i)));
      assert.deepEqual(c.got.map((m) => m.seq), seqs);
      assertIncreasing(c.got);
      assert.equal(c.sub.lastSequence, seqs[999]);
      assert.deepEqual(c.errors, []);
    }));

    it('keeps subject, data and time as published; strings are UTF-8', withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      const c = await collect(bus, `${p}.>`);
      const before = Date.now();
      const s1 = await bus.publish(`${p}.a.b`, 'héllo ✓');
      const s2 = await bus.publish(`${p}.c`, new Uint8Array([0, 1, 255]));
      await c.wait(2);
      const [m1, m2] = c.got;
      assert.ok(m1 !== undefined && m2 !== undefined);
      assert.deepEqual([m1.subject, m1.seq, text(m1)], [`${p}.a.b`, s1, 'héllo ✓']);
      assert.deepEqual([m2.subject, m2.seq, [...m2.data]], [`${p}.c`, s2, [0, 1, 255]]);
      assert.ok(m1.time >= before - 1000 && m1.time <= Date.now() + 1000, `time ${m1.time} is not now`);
      assert.ok(await bus.ping());
    }));

    it('fans out: every subscriber, on every connection, gets every message', withHarness(async (h) => {
      const p = prefix();
      const buses = [await h.open(), await h.open(), await h.open()];
      const collectors = await Promise.all(buses.map((b) => collect(b, `${p}.fan`)));
      const publisher = buses[0];
      assert.ok(publisher !== undefined);
      for (let i = 0; i < 50; i++) await publisher.publish(`${p}.fan`, String(i));
      for (const c of collectors) {
        await c.wait(50);
        assert.deepEqual(c.got.map(text), Array.from({ length: 50 }, (_, i) => String(i)));
      }
    }));

    it('matches * (one token) and > (one or more tokens) without cross-talk', withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      const other = prefix();
      const star = await collect(bus, `${p}.a.*`);
      const tail = await collect(bus, `${p}.a.>`);
      const exact = await collect(bus, `${p}.a.b`);
      const mid = await collect(bus, `${p}.*.b`);
      const all = await collect(bus, `${p}.>`);
      const foreign = await collect(bus, `${other}.>`);
      const subjects = [`${p}.a`, `${p}.a.b`, `${p}.a.c`, `${p}.a.b.c`, `${p}.x.b`, `${p}.ab`, `${other}x.a.b`];
      for (const s of subjects) await bus.publish(s, s);
      await all.wait(6);
      await settle(300);
      assert.deepEqual(star.got.map(text), [`${p}.a.b`, `${p}.a.c`]);
      assert.deepEqual(tail.got.map(text), [`${p}.a.b`, `${p}.a.c`, `${p}.a.b.c`]);
      assert.deepEqual(exact.got.map(text), [`${p}.a.b`]);
      assert.deepEqual(mid.got.map(text), [`${p}.a.b`, `${p}.x.b`]);
      assert.deepEqual(all.got.map(text), subjects.slice(0, 6));
      assert.deepEqual(foreign.got, []);
    }));

    it('a new subscription without fromSequence sees only later messages', withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      await bus.publish(`${p}.live`, 'before');
      const c = await collect(bus, `${p}.live`);
      await bus.publish(`${p}.live`, 'after');
      await c.wait(1);
      await settle();
      assert.deepEqual(c.got.map(text), ['after']);
    }));

    it('resumes from lastSequence + 1 after the subscriber restarts: nothing missed, nothing twice', withHarness(async (h) => {
      const publisher = await h.open();
      const p = prefix();
      const first = await collect(await h.open(), `${p}.r.*`);
      for (let i = 0; i < 10; i++) await publisher.publish(`${p}.r.${i % 2 ? 'odd' : 'even'}`, String(i));
      await first.wait(10);
      const resumeFrom = first.sub.lastSequence + 1;
      await first.sub.close();
      // Published while nobody listens.
      for (let i = 10; i < 20; i++) await publisher.publish(`${p}.r.${i % 2 ? 'odd' : 'even'}`, String(i));
      await publisher.publish(`${p}.elsewhere`, 'not for us');
      const second = await collect(await h.open(), `${p}.r.*`, { fromSequence: resumeFrom });
      for (let i = 20; i < 25; i++) await publisher.publish(`${p}.r.even`, String(i));
      await second.wait(15);
      await settle();
      assert.deepEqual(second.got.map(text), Array.from({ length: 15 }, (_, i) => String(i + 10)));
      assertIncreasing(second.got);
      const firstLast = first.got.at(-1);
      const secondFirst = second.got[0];
      assert.ok(firstLast !== undefined && secondFirst !== undefined && secondFirst.seq > firstLast.seq);
    }));

    it('delivers on resume a message published while no one listened', withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      const seq = await bus.publish(`${p}.missed`, 'while away');
      const c = await collect(await h.open(), `${p}.missed`, { fromSequence: seq });
      await c.wait(1);
      assert.equal(c.got[0]?.seq, seq);
      assert.equal(c.got[0] && text(c.got[0]), 'while away');
      // fromSequence 0 means "everything retained" too.
      const all = await collect(bus, `${p}.missed`, { fromSequence: 0 });
      await all.wait(1);
      assert.equal(all.got[0]?.seq, seq);
    }));

    it('awaits async handlers one at a time; a slow subscriber blocks neither publishers nor others', withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let inFlight = 0;
      let maxInFlight = 0;
      const slow: string[] = [];
      const delays = new Rng(11);
      await bus.subscribe(`${p}.bp`, async (m) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await gate;
        await new Promise((r) => setTimeout(r, delays.chance(0.1) ? 3 : 0));
        slow.push(text(m));
        inFlight--;
      });
      const fast = await collect(bus, `${p}.bp`);
      const n = 200;
      // Every publish resolves while the slow handler is stuck on the first message.
      for (let i = 0; i < n; i++) await bus.publish(`${p}.bp`, String(i));
      await fast.wait(n);
      assert.ok(slow.length === 0, 'slow handler ran past the gate');
      release();
      await until(`slow subscriber (${slow.length}/${n})`, () => slow.length === n);
      assert.deepEqual(slow, Array.from({ length: n }, (_, i) => String(i)));
      assert.equal(maxInFlight, 1, 'handler calls overlapped');
    }));

    it('reports a throwing handler through onError and goes on delivering', withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      const got: string[] = [];
      const errors: Error[] = [];
      await bus.subscribe(`${p}.boom`, async (m) => {
        got.push(text(m));
        if (text(m) === '1') throw new Error('handler failed');
      }, { onError: (e) => errors.push(e) });
      for (let i = 0; i < 3; i++) await bus.publish(`${p}.boom`, String(i));
      await until('3 deliveries', () => got.length === 3);
      assert.deepEqual(got, ['0', '1', '2']);
      assert.equal(errors.length, 1);
      assert.equal(errors[0]?.message, 'handler failed');
      assert.ok(await bus.ping());
    }));

    it('stops delivering once Subscription.close resolves', withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      const c = await collect(bus, `${p}.stop`);
      await bus.publish(`${p}.stop`, 'a');
      await c.wait(1);
      await c.sub.close();
      await bus.publish(`${p}.stop`, 'b');
      await settle(300);
      assert.deepEqual(c.got.map(text), ['a']);
      await c.sub.close();
    }));

    it('rejects malformed subjects and patterns with ERR_BUS_BAD_SUBJECT', withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      const badSubjects = ['', '.', `${p}.`, `.${p}`, `${p}..x`, `${p}.*`, `${p}.>`, `${p}.a*`, `${p} x`, `${p}.\u00e9`, `${p}.\n`, 'x'.repeat(300)];
      for (const s of badSubjects) await rejectsWith(bus.publish(s, 'x'), 'ERR_BUS_BAD_SUBJECT');
      const badPatterns = ['', `${p}..*`, `${p}.>.x`, `${p}.a>`, `${p}.*x`, `${p}. `, `${p}.`];
      for (const s of badPatterns) await rejectsWith(bus.subscribe(s, () => undefined), 'ERR_BUS_BAD_SUBJECT');
      // Valid ones pass.
      for (const s of [`${p}.*.x`, `${p}.>`, '>', '*', `${p}.a-b_c:d`]) await (await bus.subscribe(s, () => undefined)).close();
      await bus.publish(`${p}.a-b_c:d`, 'ok');
    }));

    it(`rejects payloads over ${MAX_PAYLOAD_BYTES} bytes with ERR_BUS_PAYLOAD_TOO_LARGE; one at the limit goes through`, withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      const c = await collect(bus, `${p}.big`);
      await rejectsWith(bus.publish(`${p}.big`, new Uint8Array(MAX_PAYLOAD_BYTES + 1)), 'ERR_BUS_PAYLOAD_TOO_LARGE');
      await rejectsWith(bus.publish(`${p}.big`, 'x'.repeat(MAX_PAYLOAD_BYTES + 1)), 'ERR_BUS_PAYLOAD_TOO_LARGE');
      const atLimit = new Uint8Array(MAX_PAYLOAD_BYTES).fill(7);
      const seq = await bus.publish(`${p}.big`, atLimit);
      await c.wait(1);
      assert.equal(c.got.length, 1);
      assert.equal(c.got[0]?.seq, seq);
      assert.equal(c.got[0]?.data.byteLength, MAX_PAYLOAD_BYTES);
      assert.equal(c.got[0]?.data[MAX_PAYLOAD_BYTES - 1], 7);
    }));

    it('rejects a fromSequence the bus no longer retains with ERR_BUS_SEQUENCE_GONE', withHarness(async (h, t) => {
      if (h.dropRetained === undefined) {
        t.skip('harness cannot drop retained messages');
        return;
      }
      const bus = await h.open();
      const p = prefix();
      const first = await bus.publish(`${p}.old`, 'old');
      await h.dropRetained();
      await rejectsWith(bus.subscribe(`${p}.old`, () => undefined, { fromSequence: first }), 'ERR_BUS_SEQUENCE_GONE');
      await rejectsWith(bus.subscribe(`${p}.old`, () => undefined, { fromSequence: 0 }), 'ERR_BUS_SEQUENCE_GONE');
      // From the current end it is fine, and later messages arrive.
      const next = await bus.publish(`${p}.old`, 'new');
      const c = await collect(bus, `${p}.old`, { fromSequence: next });
      await c.wait(1);
      assert.deepEqual(c.got.map(text), ['new']);
    }));

    it('after close: publish and subscribe fail with ERR_BUS_CLOSED, ping is false, close is idempotent', withHarness(async (h) => {
      const bus = await h.open();
      const p = prefix();
      const c = await collect(bus, `${p}.closed`);
      await bus.close();
      await rejectsWith(bus.publish(`${p}.closed`, 'x'), 'ERR_BUS_CLOSED');
      await rejectsWith(bus.subscribe(`${p}.closed`, () => undefined), 'ERR_BUS_CLOSED');
      assert.equal(await bus.ping(), false);
      await bus.close();
      assert.deepEqual(c.errors, [], 'closing the bus is not an error for its subscriptions');
    }));

    it('survives a server restart mid-stream: nothing lost, the live subscriber continues without duplicates', withHarness(async (h, t) => {
      if (h.restartServer === undefined) {
        t.skip('no server to restart');
        return;
      }
      const restartServer = h.restartServer.bind(h);
      const publisher = await h.open();
      const p = prefix();
      const live = await collect(await h.open(), `${p}.rs`);
      const acked: number[] = [];
      const n = 200;
      const publishing = (async () => {
        for (let i = 0; i < n; i++) {
          // The bus retries within its deadline; outlasting it is retryable, so the caller retries.
          for (;;) {
            try {
              acked.push(await publisher.publish(`${p}.rs`, String(i)));
              break;
            } catch (err) {
              if (!isGatehouseError(err, 'ERR_BUS_UNAVAILABLE')) throw err;
            }
          }
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      await until('publishing under way', () => acked.length >= n / 4);
      await restartServer();
      await publishing;
      await until(`every acked message (${live.got.length}/${acked.length})`, () => acked.every((s) => live.got.some((m) => m.seq === s)), 30_000);
      await settle(300);
      const seqs = live.got.map((m) => m.seq);
      assert.equal(new Set(seqs).size, seqs.length, 'a message was delivered twice');
      assertIncreasing(live.got);
      for (const s of acked) assert.ok(seqs.includes(s), `acked seq ${s} never delivered`);
      // Payloads in order; a caller-level retry may only repeat the value just before it.
      const values = live.got.map(text).filter((v, i, a) => i === 0 || a[i - 1] !== v);
      assert.deepEqual(values, Array.from({ length: n }, (_, i) => String(i)));
      assert.deepEqual(live.errors, []);
      // A subscriber that resumes after the restart sees the same history.
      const resumed = await collect(await h.open(), `${p}.rs`, { fromSequence: live.got[0]?.seq ?? 1 });
      await resumed.wait(live.got.length);
      assert.deepEqual(resumed.got.map((m) => m.seq), seqs);
    }));
  });
}
