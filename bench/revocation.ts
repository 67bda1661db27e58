// Revocation across replicas (npm run bench:revocation): see bench/lib/revocation.ts for the
// setup and the definition of the latency. One JSON line per figure.
//   BENCH_REVOCATIONS (default 200, with the bus), BENCH_REVOCATIONS_NO_BUS (default 30),
//   BENCH_REVOCATIONS_RESTART (default 30)
import { runRevocationBench } from './lib/revocation.js';

const started = performance.now();
const result = await runRevocationBench({
  withBus: Number(process.env.BENCH_REVOCATIONS ?? 200),
  withoutBus: Number(process.env.BENCH_REVOCATIONS_NO_BUS ?? 30),
  duringRestart: Number(process.env.BENCH_REVOCATIONS_RESTART ?? 30),
  afterMs: 50,
  trafficClients: 2,
  log: (line) => console.error(`# ${line}`),
});
if ('skip' in result) {
  console.log(JSON.stringify({ bench: 'revocation', skipped: result.skip }));
} else {
  for (const p of result.phases) console.log(JSON.stringify({ bench: 'revocation', figure: 'revoke-to-refusal-on-other-replica', ...p }));
  console.log(JSON.stringify({ bench: 'revocation', figure: 'integrity', revoked: result.revoked, lost: result.lost, allowedAfterRefusal: result.phases.reduce((s, p) => s + p.allowedAfterRefusal, 0), backgroundOk: result.backgroundRequests.ok, backgroundFailed: result.backgroundRequests.failed, setupMs: result.setupMs, totalMs: Math.round(performance.now() - started) }));
}
