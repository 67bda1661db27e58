// Policy decision latency: the fast path (index) beside casbin's own enforce on the same lines.
// One JSON line per figure (microseconds):
//   engine=fast    decide() over BENCH_POLICY_CALLS random requests (hits, near misses, misses)
//   engine=fast-spellings  the same over a fleet whose patterns and paths mix case, escapes and
//                  letters that fold to ASCII, a third of the requests from case-insensitive
//                  routes (every path that needs folding is folded once)
//   engine=casbin  enforceSync() over a handful of the same requests (it scans every line)
//   engine=ratio   casbin / fast, and whether the targets hold
//                  (p99 <= 20 us at 10,000 rules, <= 50 us at 100,000)
// Rules here have one `from` and one path each, so rules = casbin lines.
// Run: npm run bench:policy   (BENCH_POLICY_SIZES=1000,10000 BENCH_POLICY_CALLS=200000 BENCH_POLICY_SEED=1 to tune)
import type { AccessRequest } from '../src/contracts/authz.js';
import { casbinAllows, casbinEnforcer } from '../src/authorize/casbin.js';
import { stateFromPolicies } from '../src/authorize/compile.js';
import type { PolicyState } from '../src/authorize/types.js';
import { decide } from '../src/authorize/decide.js';
import { Rng, randomPolicies, randomRequest, universe } from '../test/authorize/random.js';
import { percentile } from './lib/stats.js';

const SIZES = (process.env.BENCH_POLICY_SIZES ?? '1000,10000,100000').split(',').map(Number);
const CALLS = Number(process.env.BENCH_POLICY_CALLS ?? 200_000);
const SEED = Number(process.env.BENCH_POLICY_SEED ?? 20260101);
const TARGET_P99: Record<number, number> = { 10_000: 20, 100_000: 50 };

const nowNs = (): bigint => process.hrtime.bigint();

function stats(samplesUs: Float64Array): { p50us: number; p99us: number; meanUs: number; maxUs: number } {
  const sorted = Float64Array.from(samplesUs).sort();
  const round = (x: number): number => Math.round(x * 100) / 100;
  return {
    p50us: round(percentile(sorted, 50)),
    p99us: round(percentile(sorted, 99)),
    meanUs: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
    maxUs: round(sorted[sorted.length - 1] ?? 0),
  };
}

/** A seeded fleet of `rules` one-line rules (100 namespaces x 20 services, 10 roles, 40 path words), compiled, and 10,000 requests to it. */
function fleet(seed: number, rules: number, spellings: boolean): { state: PolicyState; requests: AccessRequest[]; compileMs: number } {
  const rng = new Rng(seed);
  const u = universe({ namespaces: 100, services: 20, roles: 10, segments: 40, spellings });
  const policies = randomPolicies(rng, u, rules, { oneLine: true, denyRate: 0.2 });
  const t0 = nowNs();
  const state = stateFromPolicies(policies, 1);
  const compileMs = Number(nowNs() - t0) / 1e6;
  return { state, requests: Array.from({ length: 10_000 }, () => randomRequest(rng, u, policies)), compileMs };
}

/** The fast path: warm up, then time every call; one JSON line. */
function timeFast(engine: string, rules: number, f: ReturnType<typeof fleet>): ReturnType<typeof stats> {
  const { state, requests } = f;
  for (let i = 0; i < 50_000; i++) decide(state, requests[i % requests.length]!);
  const samples = new Float64Array(CALLS);
  let allowed = 0;
  let folded = 0;
  for (let i = 0; i < CALLS; i++) {
    const req = requests[i % requests.length]!;
    const s = nowNs();
    const d = decide(state, req);
    samples[i] = Number(nowNs() - s) / 1000;
    if (d.allow) allowed++;
    if (d.comparison === 'case-folded') folded++;
  }
  const rate = (x: number): number => Math.round((x / CALLS) * 1000) / 1000;
  const st = stats(samples);
  console.log(JSON.stringify({ bench: 'policy', engine, rules, lines: state.lines.length, calls: CALLS, allowRate: rate(allowed), foldedRate: rate(folded), compileMs: Math.round(f.compileMs), ...st }));
  return st;
}

async function benchSize(rules: number): Promise<void> {
  const base = fleet(SEED + rules, rules, false);
  const { state, requests } = base;
  const f = timeFast('fast', rules, base);
  // paths that need folding: mixed case, escapes, a third from case-insensitive routes
  timeFast('fast-spellings', rules, fleet(SEED + rules + 1, rules, true));

  // casbin: the same requests, a handful at large sizes (each call scans every line).
  const e = await casbinEnforcer(state.lines);
  const n = Math.max(5, Math.min(300, Math.round(300_000 / rules)));
  casbinAllows(e, requests[0]!);
  const slow = new Float64Array(n);
  let agree = 0;
  for (let i = 0; i < n; i++) {
    const req = requests[i]!;
    const s = nowNs();
    const allow = casbinAllows(e, req);
    slow[i] = Number(nowNs() - s) / 1000;
    if (allow === decide(state, req).allow) agree++;
  }
  const c = stats(slow);
  console.log(JSON.stringify({ bench: 'policy', engine: 'casbin', rules, lines: state.lines.length, calls: n, agree: `${agree}/${n}`, ...c }));

  const target = TARGET_P99[rules];
  console.log(JSON.stringify({
    bench: 'policy', engine: 'ratio', rules,
    p50ratio: Math.round(c.p50us / f.p50us), p99ratio: Math.round(c.p99us / f.p99us),
    ...(target === undefined ? {} : { targetP99us: target, fastP99us: f.p99us, ok: f.p99us <= target }),
  }));
}

for (const size of SIZES) await benchSize(size);
