// Audit chain figures on the embedded store: append throughput (events until they are in the
// chain, checkpoints signed every 1,000) and `audit verify` over the whole chain.
// Run: node --import tsx bench/audit.ts   (BENCH_AUDIT_N events, default 1,000,000)
import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openEmbeddedStore } from '../src/store/embedded/index.js';
import { systemClock } from '../src/lib/clock.js';
import { AuditWriter, verifyAudit } from '../src/audit/index.js';

const N = Number(process.env.BENCH_AUDIT_N ?? 1_000_000);
const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-bench-audit-'));
const store = await openEmbeddedStore({ kind: 'embedded', path: dir });
try {
  const writer = await AuditWriter.open({ store, clock: systemClock, replica: 'bench', kek: createSecretKey(randomBytes(32)), batchSize: 127 });
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    writer.append({
      '@timestamp': new Date().toISOString(),
      'event.action': 'http.request',
      'event.outcome': i % 7 === 0 ? 'failure' : 'success',
      'source.ip': '10.0.0.7',
      'user.id': `user-${i % 100}`,
      'http.request.method': 'GET',
      'http.response.status_code': i % 7 === 0 ? 403 : 200,
      'url.path': `/v1/items/${i}`,
      'gatehouse.namespace': 'payments',
      'gatehouse.service': 'ledger',
      'gatehouse.subject': 'spiffe://gatehouse.test/ns/shop/sa/web',
      'gatehouse.rule': 'payments/allow-web',
      'gatehouse.request_id': `01J${i.toString(36).padStart(10, '0')}`,
    });
    // stay under the writer's in-memory bound, as a busy gateway would between flushes
    if (i % 50_000 === 49_999) await writer.flush();
  }
  await writer.close();
  const appendMs = performance.now() - t0;
  console.log(JSON.stringify({ figure: 'audit.append', impl: 'embedded', events: N, ms: Math.round(appendMs), perSecond: Math.round(N / (appendMs / 1000)), checkpoints: writer.stats.checkpoints }));

  const t1 = performance.now();
  const report = await verifyAudit(store);
  const verifyMs = performance.now() - t1;
  if (!report.ok || report.events !== N) throw new Error(`verify: ${JSON.stringify(report.chains)}`);
  console.log(JSON.stringify({ figure: 'audit.verify', impl: 'embedded', events: report.events, checkpoints: report.chains[0]?.checkpoints, ms: Math.round(verifyMs), perSecond: Math.round(N / (verifyMs / 1000)) }));
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
