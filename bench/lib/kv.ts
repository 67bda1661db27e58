// Store measurements that work on any Store (embedded, etcd). Each writes under its own
// random prefix, measures one thing, and returns a figure; the caller prints it.
//   put        put() until it resolves, one at a time
//   get        get() of an existing key at the current revision, one at a time
//   range      range() of a 100-key prefix with limit 10, one at a time
//   cas        get() then put({ifModRevision}) of one counter, one at a time
//   watch      put() until a watcher's handler runs with its event (not the put's ack), one at a time
//   batched    `inFlight` puts kept in flight; ops/s over the whole run, latency per put
//   txn-batched puts grouped into transactions (`opsPerTxn`), `inFlight` txns; ops/s per put, latency per txn
import { randomBytes } from 'node:crypto';
import type { Store } from '../../src/store/types.js';
import { percentile } from './stats.js';

export interface KvFigure {
  bench: 'store';
  impl: string;
  op: string;
  n: number;
  opsPerSec: number;
  p50us: number;
  p99us: number;
  valueBytes: number;
  inFlight?: number;
  opsPerTxn?: number;
}

export interface MeasureOptions {
  /** Name printed as `impl` (embedded, etcd). */
  impl: string;
  /** Operations to time (after a short warm-up). */
  n: number;
  /** Stop early after this long, so a slow backend keeps the bench short. */
  maxMs?: number;
  valueBytes?: number;
}

const WARMUP = 200;

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

function figure(op: string, o: MeasureOptions, samplesUs: Float64Array, elapsedMs: number, extra: Partial<KvFigure> = {}): KvFigure {
  const sorted = samplesUs.slice().sort();
  return {
    bench: 'store',
    impl: o.impl,
    op,
    n: samplesUs.length,
    opsPerSec: Math.round((samplesUs.length / elapsedMs) * 1000),
    p50us: round(percentile(sorted, 50)),
    p99us: round(percentile(sorted, 99)),
    valueBytes: o.valueBytes ?? 100,
    ...extra,
  };
}

function prefix(): string {
  return `/bench/${randomBytes(4).toString('hex')}/`;
}

function value(o: MeasureOptions): Uint8Array {
  return randomBytes(o.valueBytes ?? 100);
}

/** Times `op(i)` one call at a time; returns latencies (µs) and the elapsed wall time. */
async function serial(o: MeasureOptions, op: (i: number) => Promise<unknown>): Promise<{ samples: Float64Array; elapsedMs: number }> {
  for (let i = 0; i < Math.min(WARMUP, o.n); i++) await op(-1 - i);
  const samples = new Float64Array(o.n);
  const deadline = performance.now() + (o.maxMs ?? 10_000);
  const start = performance.now();
  let done = 0;
  for (; done < o.n; done++) {
    const t0 = performance.now();
    await op(done);
    const t1 = performance.now();
    samples[done] = (t1 - t0) * 1000;
    if (t1 > deadline) {
      done++;
      break;
    }
  }
  return { samples: samples.subarray(0, done), elapsedMs: performance.now() - start };
}

export async function measurePut(store: Store, o: MeasureOptions): Promise<KvFigure> {
  const p = prefix();
  const v = value(o);
  const { samples, elapsedMs } = await serial(o, (i) => store.put(`${p}${i}`, v));
  return figure('put', o, samples, elapsedMs);
}

export async function measureGet(store: Store, o: MeasureOptions & { keys?: number }): Promise<KvFigure> {
  const p = prefix();
  const v = value(o);
  const keys = o.keys ?? 1_000;
  await Promise.all(Array.from({ length: keys }, (_, i) => store.put(`${p}${i}`, v)));
  const names = Array.from({ length: keys }, (_, i) => `${p}${i}`);
  const { samples, elapsedMs } = await serial(o, async (i) => {
    const kv = await store.get(names[Math.abs(i) % keys]!);
    if (kv === undefined) throw new Error('bench key missing');
  });
  return figure('get', o, samples, elapsedMs);
}

export async function measureRange(store: Store, o: MeasureOptions & { keys?: number; limit?: number }): Promise<KvFigure> {
  const p = prefix();
  const v = value(o);
  const keys = o.keys ?? 100;
  const limit = o.limit ?? 10;
  await Promise.all(Array.from({ length: keys }, (_, i) => store.put(`${p}${String(i).padStart(4, '0')}`, v)));
  const { samples, elapsedMs } = await serial(o, async () => {
    const r = await store.range({ prefix: p }, { limit });
    if (r.kvs.length !== limit) throw new Error('bench range came back short');
  });
  return figure(`range-${keys}-limit-${limit}`, o, samples, elapsedMs);
}

export async function measureCas(store: Store, o: MeasureOptions): Promise<KvFigure> {
  const key = `${prefix()}counter`;
  await store.put(key, '0');
  const { samples, elapsedMs } = await serial(o, async () => {
    const kv = await store.get(key);
    if (kv === undefined) throw new Error('bench counter missing');
    await store.put(key, String(Number(Buffer.from(kv.value).toString()) + 1), { ifModRevision: kv.modRevision });
  });
  return figure('cas', o, samples, elapsedMs);
}

export async function measureWatch(store: Store, o: MeasureOptions): Promise<KvFigure> {
  const p = prefix();
  const v = value(o);
  let deliveredAt = 0;
  let onEvent: (() => void) | undefined;
  const watch = await store.watch({ prefix: p }, () => {
    deliveredAt = performance.now();
    onEvent?.();
  });
  try {
    const samples = new Float64Array(o.n);
    const deadline = performance.now() + (o.maxMs ?? 10_000);
    const start = performance.now();
    let done = 0;
    for (let i = -Math.min(WARMUP, o.n); i < o.n && performance.now() < deadline; i++) {
      const delivered = new Promise<void>((resolve) => (onEvent = resolve));
      const t0 = performance.now();
      // Latency is to the handler, not to the put's acknowledgement.
      await Promise.all([store.put(`${p}${i}`, v), delivered]);
      if (i >= 0) samples[done++] = (deliveredAt - t0) * 1000;
    }
    return figure('watch-put-to-deliver', o, samples.subarray(0, done), performance.now() - start);
  } finally {
    await watch.close();
  }
}

export async function measureBatched(store: Store, o: MeasureOptions & { inFlight: number }): Promise<KvFigure> {
  const p = prefix();
  const v = value(o);
  const samples = new Float64Array(o.n);
  let next = 0;
  const deadline = performance.now() + (o.maxMs ?? 10_000);
  const start = performance.now();
  const lane = async (): Promise<void> => {
    while (next < o.n && performance.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      await store.put(`${p}${i % 50_000}`, v);
      samples[i] = (performance.now() - t0) * 1000;
    }
  };
  await Promise.all(Array.from({ length: o.inFlight }, lane));
  const elapsedMs = performance.now() - start;
  return figure('batched-put', o, samples.subarray(0, next), elapsedMs, { inFlight: o.inFlight });
}

/**
 * Puts grouped `opsPerTxn` to a transaction (one revision each), `inFlight` transactions at
 * a time: how Gatehouse itself writes in bulk (the audit writer's batches). ops/s counts puts.
 */
export async function measureTxnBatched(store: Store, o: MeasureOptions & { inFlight: number; opsPerTxn: number }): Promise<KvFigure> {
  const p = prefix();
  const v = value(o);
  const txns = Math.ceil(o.n / o.opsPerTxn);
  const samples = new Float64Array(txns);
  let next = 0;
  const deadline = performance.now() + (o.maxMs ?? 10_000);
  const start = performance.now();
  const lane = async (): Promise<void> => {
    while (next < txns && performance.now() < deadline) {
      const t = next++;
      const ops = Array.from({ length: o.opsPerTxn }, (_, j) => ({ op: 'put' as const, key: `${p}${(t * o.opsPerTxn + j) % 50_000}`, value: v }));
      const t0 = performance.now();
      await store.txn([], ops);
      samples[t] = (performance.now() - t0) * 1000;
    }
  };
  await Promise.all(Array.from({ length: o.inFlight }, lane));
  const elapsedMs = performance.now() - start;
  const f = figure('txn-batched-put', o, samples.subarray(0, next), elapsedMs, { inFlight: o.inFlight });
  // latency is per transaction; throughput per put
  return { ...f, n: next * o.opsPerTxn, opsPerSec: Math.round(((next * o.opsPerTxn) / elapsedMs) * 1000), opsPerTxn: o.opsPerTxn };
}
