// Audit test harness: an embedded store on a ManualClock, a KEK, and event builders.
import { createSecretKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManualClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import type { Store } from '../../src/store/index.js';
import { AUDIT_KEY_PREFIX, AuditWriter, type AuditWriterOptions } from '../../src/audit/index.js';
import type { AuditSigningKey } from '../../src/audit/audit-key.js';
import { jwkThumbprint } from '../../src/tokens/lib/key-record.js';
import { runCli } from '../../src/cli/index.js';
import type { AuditEvent } from '../../src/contracts/audit.js';

export const START = Date.UTC(2026, 0, 1);

export interface AuditHarness {
  clock: ManualClock;
  store: EmbeddedStore;
  kek: KeyObject;
  dir: string;
  errors: unknown[];
  open(o?: Partial<AuditWriterOptions>): Promise<AuditWriter>;
  close(): Promise<void>;
}

export function event(i: number, clock: ManualClock, extra: Partial<AuditEvent> = {}): AuditEvent {
  return {
    '@timestamp': new Date(clock.now()).toISOString(),
    'event.action': 'http.request',
    'event.outcome': i % 3 === 0 ? 'failure' : 'success',
    'user.id': `user-${i % 5}`,
    'gatehouse.namespace': i % 2 === 0 ? 'payments' : 'shop',
    'gatehouse.service': 'ledger',
    'gatehouse.request_id': `req-${i}`,
    'http.response.status_code': i % 3 === 0 ? 403 : 200,
    ...extra,
  };
}

export async function harness(): Promise<AuditHarness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-audit-'));
  const clock = new ManualClock(START);
  const store = await openEmbeddedStore({ kind: 'embedded', path: path.join(dir, 'store'), clock });
  const kek = createSecretKey(randomBytes(32));
  const writers: AuditWriter[] = [];
  const errors: unknown[] = [];
  return {
    clock,
    store,
    kek,
    dir,
    errors,
    async open(o = {}) {
      const w = await AuditWriter.open({ store, clock, kek, replica: 'r1', onError: (e) => errors.push(e), ...o });
      writers.push(w);
      return w;
    },
    async close() {
      for (const w of writers) await w.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An audit key record added to the store by someone who can write it (its private half is theirs, not sealed). */
export async function plantAuditKey(store: Store): Promise<AuditSigningKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x!;
  const kid = jwkThumbprint(x);
  await store.put(AUDIT_KEY_PREFIX + kid, JSON.stringify({ format: 1, kid, publicJwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' }, sealedPrivateKey: 'v1.x', createdAt: 1 }));
  return { kid, privateKey };
}

export interface VerifyCli {
  /** `gatehouse audit verify --config <dir>/gatehouse.yaml ...args` */
  run(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }>;
  /** The stopped gateway's store, opened for a tamper. */
  tamper(fn: (s: Store) => Promise<void>): Promise<void>;
  dir: string;
  remove(): Promise<void>;
}

/** r1 with `events` events checkpointed every 10, then the store closed, as a stopped gateway leaves it for the CLI. */
export async function verifyCli(events: number): Promise<VerifyCli> {
  const h = await harness();
  const w = await h.open({ checkpointEvery: 10, batchSize: 10 });
  for (let i = 1; i <= events; i++) w.append(event(i, h.clock));
  await w.close();
  await h.store.close();
  const config = path.join(h.dir, 'gatehouse.yaml');
  await writeFile(config, 'store: { kind: embedded, path: ./store }\nbus: { kind: memory }\n');
  return {
    dir: h.dir,
    async run(...args) {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(['audit', 'verify', '--config', config, ...args], { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, stopSignal: new Promise(() => undefined) });
      return { code, out, err };
    },
    async tamper(fn) {
      const s = await openEmbeddedStore({ kind: 'embedded', path: path.join(h.dir, 'store') });
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    },
    remove: () => rm(h.dir, { recursive: true, force: true }),
  };
}
