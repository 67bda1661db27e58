// Bus latency and throughput, memory and NATS JetStream (its own nats-server, file storage).
// One JSON line per figure:
//   publish-ack         publish() until it resolves (NATS: the stream's PubAck), one at a time
//   publish-to-deliver  publish() until the subscriber's handler runs, one at a time
//   throughput          BENCH_WINDOW publishes in flight, until the last one is delivered
// Run: node --import tsx bench/bus.ts   (BENCH_N, BENCH_THROUGHPUT_N, BENCH_PAYLOAD to tune)
import { openMemoryBus } from '../src/bus/memory.js';
import { openNatsBus } from '../src/bus/nats.js';
import type { Bus } from '../src/bus/types.js';
import { startNats } from '../test/helpers/nats.js';
import { percentile } from './lib/stats.js';

const N = Number(process.env.BENCH_N ?? 2_000);
const THROUGHPUT_N = Number(process.env.BENCH_THROUGHPUT_N ?? 20_000);
const PAYLOAD = Number(process.env.BENCH_PAYLOAD ?? 256);
const WINDOW = 256;
const WARMUP = 200;

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

function emit(impl: string, op: string, samplesUs: number[], extra: Record<string, number> = {}): void {
  const sorted = [...samplesUs].sort((a, b) => a - b);
  const line: Record<string, string | number> = { bench: 'bus', impl, op, n: samplesUs.length, payloadBytes: PAYLOAD };
  if (sorted.length > 0) {
    line.p50us = percentile(sorted, 50);
    line.p99us = percentile(sorted, 99);
  }
  console.log(JSON.stringify({ ...line, ...extra }));
}

/** Counts deliveries on one subject and lets the bench wait for the k-th. */
async function counter(bus: Bus, subject: string): Promise<{ wait(k: number): Promise<void>; count(): number }> {
  let delivered = 0;
  let waiter: { k: number; resolve: () => void } | undefined;
  await bus.subscribe(subject, () => {
    delivered++;
    if (waiter !== undefined && delivered >= waiter.k) {
      const w = waiter;
      waiter = undefined;
      w.resolve();
    }
  });
  return {
    count: () => delivered,
    wait: (k) => (delivered >= k ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { k, resolve }))),
  };
}

async function run(impl: string, bus: Bus): Promise<void> {
  const payload = new Uint8Array(PAYLOAD).fill(120);
  const subject = `bench.${impl}.${Date.now()}`;
  const c = await counter(bus, subject);

  for (let i = 0; i < WARMUP; i++) await bus.publish(subject, payload);
  await c.wait(WARMUP);

  const ack: number[] = [];
  const p2d: number[] = [];
  const started = nowUs();
  for (let i = 0; i < N; i++) {
    const target = c.count() + 1;
    const t0 = nowUs();
    const delivered = c.wait(target).then(() => nowUs());
    await bus.publish(subject, payload);
    ack.push(nowUs() - t0);
    p2d.push((await delivered) - t0);
  }
  const sequentialRate = Math.round((N / (nowUs() - started)) * 1e6);
  emit(impl, 'publish-ack', ack);
  emit(impl, 'publish-to-deliver', p2d, { msgsPerSec: sequentialRate });

  const base = c.count();
  const t0 = nowUs();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < THROUGHPUT_N) {
      next++;
      await bus.publish(subject, payload);
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  await c.wait(base + THROUGHPUT_N);
  const seconds = (nowUs() - t0) / 1e6;
  emit(impl, 'throughput', [], { n: THROUGHPUT_N, inFlight: WINDOW, msgsPerSec: Math.round(THROUGHPUT_N / seconds) });
}

async function main(): Promise<void> {
  const memory = await openMemoryBus({ kind: 'memory' });
  try {
    await run('memory', memory);
  } finally {
    await memory.close();
  }

  const server = await startNats();
  if ('skip' in server) {
    console.log(JSON.stringify({ bench: 'bus', impl: 'nats', skipped: server.skip }));
    return;
  }
  try {
    const bus = await openNatsBus({ kind: 'nats', servers: [server.url], stream: 'BENCH', timeoutMs: 10_000 });
    try {
      await run('nats', bus);
    } finally {
      await bus.close();
    }
  } finally {
    await server.stop();
  }
}

await main();
