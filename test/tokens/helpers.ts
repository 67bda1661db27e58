// A harness for the token tests: an embedded store on a ManualClock, a KEK, and helpers that
// advance time and wait for the store (and the watches it feeds) to catch up — never sleeping.
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManualClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { openTokenService, type TokenService, type TokenServiceOptions } from '../../src/tokens/index.js';

export const ISSUER = 'https://gatehouse.test';
export const AUDIENCE = 'spiffe://gatehouse.test/ns/payments/sa/ledger';
export const CALLER = 'spiffe://gatehouse.test/ns/shop/sa/web';
export const START = Date.UTC(2026, 0, 1);

export interface Harness {
  clock: ManualClock;
  store: EmbeddedStore;
  kek: KeyObject;
  dir: string;
  open(options?: Partial<TokenServiceOptions>): Promise<TokenService>;
  /** Advances the clock, lets queued writes (lease expiries) commit and watch events arrive. */
  advance(ms: number): Promise<void>;
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** Yields to the event loop until cond holds (at most `turns` times); no timers involved. */
export async function until(cond: () => boolean, turns = 2000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!cond()) throw new Error('condition not reached');
}

export async function harness(): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-tokens-'));
  const clock = new ManualClock(START);
  const store = await openEmbeddedStore({ kind: 'embedded', path: path.join(dir, 'store'), clock });
  const kek = createSecretKey(randomBytes(32));
  const services: TokenService[] = [];
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      await store.settle();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  return {
    clock,
    store,
    kek,
    dir,
    async open(options = {}) {
      const s = await openTokenService({ store, clock, kek, issuer: ISSUER, ...options });
      services.push(s);
      return s;
    },
    async advance(ms) {
      clock.advance(ms);
      await settle();
    },
    settle,
    async close() {
      for (const s of services) await s.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
