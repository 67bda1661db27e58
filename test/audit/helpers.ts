// Audit test harness: an embedded store on a ManualClock, a KEK, and event builders.
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManualClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { AuditWriter, type AuditWriterOptions } from '../../src/audit/index.js';
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
