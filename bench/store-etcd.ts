// Store benchmarks on real etcd clusters (1 and 3 members on this machine, real fsync), with
// the same implementation-agnostic measurements as bench/store.ts (see bench/lib/kv.ts).
// One JSON line per figure, impl "etcd-1" / "etcd-3". Takes about 60-80 s.
// Run: node --import tsx bench/store-etcd.ts   (BENCH_N scales the one-at-a-time runs)
import { openEtcdStore } from '../src/store/etcd/index.js';
import { isSkip, startEtcdCluster } from '../test/helpers/etcd.js';
import { measureBatched, measureCas, measureGet, measurePut, measureRange, measureWatch, type KvFigure } from './lib/kv.js';

const N = Number(process.env.BENCH_N ?? 2_000);
const print = (f: KvFigure): void => console.log(JSON.stringify(f));

for (const members of [1, 3] as const) {
  const cluster = await startEtcdCluster({ members });
  if (isSkip(cluster)) {
    console.log(JSON.stringify({ bench: 'store', impl: `etcd-${members}`, skipped: cluster.skip }));
    continue;
  }
  const impl = `etcd-${members}`;
  const store = await openEtcdStore({ kind: 'etcd', endpoints: cluster.endpoints });
  try {
    print(await measurePut(store, { impl, n: N, maxMs: 5_000 }));
    print(await measureGet(store, { impl, n: N * 3, maxMs: 4_000 }));
    print(await measureRange(store, { impl, n: N * 2, maxMs: 4_000 }));
    print(await measureCas(store, { impl, n: N, maxMs: 5_000 }));
    print(await measureWatch(store, { impl, n: N, maxMs: 5_000 }));
    print(await measureBatched(store, { impl, n: 50_000, inFlight: 100, maxMs: 5_000 }));
  } finally {
    await store.close();
    await cluster.stop();
  }
}
