// Where a login step's durable write spends its tail (npm run bench:write-floor). Three HTTP
// requests in a row (fastify inject, as bench:login), interleaved round-robin so every variant
// sees the same machine, each variant doing one thing per request:
//   inject         nothing: fastify and light-my-request alone
//   lmdb-async     one lmdb-js async transaction (a 300-byte put), answered after its flush:
//                  what the embedded store is built on, with the same open options
//   lmdb-sync      one lmdb-js synchronous transaction: commit and fsync on the event loop
//                  (the embedded store does not do this: it would stall every request)
//   store          one guarded transaction on the embedded store (what bench:login's floor does)
//   fdatasync      8 KiB written to a file and fdatasync'd on the event loop: the disk alone
// Figures: p50/p99/p999 of the three requests' summed time, in microseconds.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { open } from 'lmdb';
import { openEmbeddedStore } from '../src/store/embedded/index.js';
import { timeThree } from './lib/login-floor.js';
import { percentile } from './lib/stats.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1_500);
const WARMUP = 100;
const storeDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-bench-'));
const lmdbDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-bench-'));
const store = await openEmbeddedStore({ kind: 'embedded', path: storeDir });
const root = open({ path: lmdbDir, maxDbs: 2, overlappingSync: true, noSync: false, useWritemap: false, encoding: 'binary', keyEncoding: 'binary' });
const db = root.openDB<Buffer, Buffer>({ name: 'floor', encoding: 'binary', keyEncoding: 'binary' });
const value = Buffer.alloc(300, 1);
const payload = { pad: 'x'.repeat(200) };
const variants = ['inject', 'lmdb-async', 'lmdb-sync', 'store', 'fdatasync'] as const;
const fd = openSync(path.join(lmdbDir, 'fsync.bin'), 'w');
const page = Buffer.alloc(8192, 7);
type Variant = (typeof variants)[number];

const app = Fastify();
let n = 0;
app.post<{ Params: { v: Variant } }>('/:v', async (req) => {
  const key = `/bench/floor/${n++}`;
  switch (req.params.v) {
    case 'inject':
      break;
    case 'lmdb-async': {
      const committed = root.transaction(() => db.putSync(Buffer.from(key), value));
      const flushed = root.flushed;
      await committed;
      await flushed;
      break;
    }
    case 'lmdb-sync':
      root.transactionSync(() => db.putSync(Buffer.from(key), value));
      break;
    case 'fdatasync':
      writeSync(fd, page, 0, page.length, (n % 64) * page.length);
      fdatasyncSync(fd);
      break;
    case 'store': {
      const r = await store.txn([{ key, target: 'version', op: '==', value: 0 }], [{ op: 'put', key, value }]);
      if (!r.succeeded) throw new Error('key existed');
      break;
    }
  }
  return { ok: true };
});
await app.ready();

const pct = (sorted: number[], p: number): number => Math.round(percentile(sorted, p) * 1000) / 1000;
const times = new Map<Variant, number[]>(variants.map((v) => [v, []]));
try {
  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    for (const v of variants) {
      const us = await timeThree(app, `/${v}`, payload);
      if (i >= WARMUP) times.get(v)!.push(us);
    }
  }
  for (const [v, xs] of times) {
    xs.sort((a, b) => a - b);
    console.log(JSON.stringify({ bench: 'write-floor', variant: v, requests: 3, n: xs.length, p50us: pct(xs, 50), p99us: pct(xs, 99), p999us: pct(xs, 99.9) }));
  }
} finally {
  await app.close();
  await store.close();
  await root.close();
  closeSync(fd);
  rmSync(storeDir, { recursive: true, force: true });
  rmSync(lmdbDir, { recursive: true, force: true });
}
