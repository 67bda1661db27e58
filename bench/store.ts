// Store benchmarks on the embedded store (a temporary directory, the system clock, the same
// durability settings as production). One JSON line per figure; see bench/lib/kv.ts.
// Run: node --import tsx bench/store.ts   (BENCH_N scales the one-at-a-time runs)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openEmbeddedStore } from '../src/store/embedded/index.js';
import { measureBatched, measureTxnBatched, measureCas, measureGet, measurePut, measureRange, measureWatch, type KvFigure } from './lib/kv.js';

const N = Number(process.env.BENCH_N ?? 5_000);
const impl = 'embedded';

const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-bench-'));
const store = await openEmbeddedStore({ kind: 'embedded', path: dir });
const print = (f: KvFigure): void => console.log(JSON.stringify(f));
try {
  print(await measurePut(store, { impl, n: N, maxMs: 8_000 }));
  print(await measureGet(store, { impl, n: N * 40, maxMs: 5_000 }));
  print(await measureRange(store, { impl, n: N * 4, maxMs: 5_000 }));
  print(await measureCas(store, { impl, n: N, maxMs: 8_000 }));
  print(await measureWatch(store, { impl, n: N, maxMs: 8_000 }));
  print(await measureBatched(store, { impl, n: 200_000, inFlight: 1_000, maxMs: 10_000 }));
  print(await measureBatched(store, { impl, n: 50_000, inFlight: 100, maxMs: 5_000 }));
  print(await measureTxnBatched(store, { impl, n: 500_000, inFlight: 8, opsPerTxn: 100, maxMs: 8_000 }));
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
