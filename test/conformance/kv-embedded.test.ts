// The KV conformance suite on the embedded store: a temporary directory and a ManualClock,
// so lease expiry is driven by advancing the clock, never by sleeping.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManualClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { runKvConformance } from './kv.js';

runKvConformance('embedded', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-kv-'));
  const clock = new ManualClock();
  let store: EmbeddedStore | undefined;
  return {
    async open() {
      // One process holds the directory; every "client" is the same store.
      store ??= await openEmbeddedStore({ kind: 'embedded', path: dir, clock });
      return store;
    },
    async advance(ms) {
      clock.advance(ms);
      // Expiries fired by the clock are queued writes; let them commit.
      await store?.settle();
    },
    minLeaseTtlSeconds: 1,
    expiryGraceMs: 0,
    async close() {
      await store?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
