// Token work: sign/s and verify/s without caches and with them, on a realistic mix of
// BENCH_TOKENS_SUBJECTS callers x BENCH_TOKENS_AUDIENCES upstreams. One JSON line per figure:
//   figure=mint-nocache    every mint signs (a new subject each time)
//   figure=verify-nocache  every verify checks a signature (each token verified once)
//   figure=mint-cached     random (subject, audience) pairs: tokens reused until 1/3 of life is left
//   figure=verify-cached   random tokens of that mix, verified again and again
//   figure=ratio           cached / uncached, and the per-request microseconds token work costs
//   figure=proxy           requests/s through the gateway with tokens on vs off (needs the wiring in
//                          src/app.ts; until then a line says it was skipped)
// Run: npm run bench:tokens   (BENCH_TOKENS_SECONDS=2 BENCH_TOKENS_SUBJECTS=200 BENCH_TOKENS_AUDIENCES=20 to tune)
import { createSecretKey, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { systemClock } from '../src/lib/clock.js';
import { openStore } from '../src/store/index.js';
import { openTokenService, type MintInput, type TokenService } from '../src/tokens/index.js';

const SECONDS = Number(process.env.BENCH_TOKENS_SECONDS ?? 2);
const SUBJECTS = Number(process.env.BENCH_TOKENS_SUBJECTS ?? 200);
const AUDIENCES = Number(process.env.BENCH_TOKENS_AUDIENCES ?? 20);
const ISSUER = 'https://gatehouse.bench';

const round = (x: number): number => Math.round(x);
const print = (o: Record<string, unknown>): void => console.log(JSON.stringify({ bench: 'tokens', ...o }));

function inputFor(s: number, a: number): MintInput {
  return {
    subject: `spiffe://bench.test/ns/ns${s % 10}/sa/svc${s}`,
    audience: `spiffe://bench.test/ns/up${a % 5}/sa/api${a}`,
    namespace: `up${a % 5}`,
    roles: ['reader'],
    certThumbprint: Buffer.alloc(32, s).toString('base64url'),
  };
}

/** Runs op in a loop for SECONDS (after a short warm-up) and returns operations per second. */
async function rate(op: (i: number) => Promise<unknown>): Promise<{ opsPerSec: number; ops: number }> {
  for (let i = 0; i < 500; i++) await op(i);
  const start = performance.now();
  const end = start + SECONDS * 1000;
  let ops = 0;
  while (performance.now() < end) {
    for (let k = 0; k < 100; k++) await op(500 + ops++);
  }
  return { opsPerSec: ops / ((performance.now() - start) / 1000), ops };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-bench-tokens-'));
  const store = await openStore({ kind: 'embedded', path: dir, clock: systemClock });
  const kek = createSecretKey(randomBytes(32));
  // Caches large enough for the whole mix, as a gateway would size them.
  const tokens = await openTokenService({ store, clock: systemClock, kek, issuer: ISSUER, cacheSize: 100_000 });
  try {
    await benchTokens(tokens);
    await proxyFigure();
  } finally {
    await tokens.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchTokens(tokens: TokenService): Promise<void> {
  // Without caches: a subject never seen before, so every mint signs.
  const signedBefore = tokens.stats().mint.signed;
  const mintNo = await rate((i) => tokens.mint({ ...inputFor(i, 0), subject: `fresh-${i}` }));
  const signed = tokens.stats().mint.signed - signedBefore;
  print({ figure: 'mint-nocache', opsPerSec: round(mintNo.opsPerSec), ops: mintNo.ops, signed });

  // Tokens to verify once each (the mint cache is irrelevant here: every subject is new).
  const pool: { token: string; thumb: string }[] = [];
  const poolSize = Math.max(5_000, Math.ceil(mintNo.opsPerSec * SECONDS * 2.5));
  for (let i = 0; i < poolSize; i++) {
    const input = { ...inputFor(i, 1), subject: `pool-${i}` };
    pool.push({ token: (await tokens.mint(input)).token, thumb: input.certThumbprint! });
  }
  const aud = inputFor(0, 1).audience;
  const verifiedBefore = tokens.stats().verify.verified;
  let next = 0;
  const verifyNo = await rate(() => {
    const p = pool[next++];
    if (p === undefined) throw new Error('token pool too small for BENCH_TOKENS_SECONDS');
    return tokens.verify(p.token, { audience: aud, certThumbprint: p.thumb });
  });
  print({ figure: 'verify-nocache', opsPerSec: round(verifyNo.opsPerSec), ops: verifyNo.ops, verified: tokens.stats().verify.verified - verifiedBefore });

  // With caches: the mix a gateway sees, random pairs of SUBJECTS x AUDIENCES.
  const pairs = SUBJECTS * AUDIENCES;
  const draw = (i: number): [number, number] => {
    const x = (Math.imul(i, 2654435761) >>> 0) % pairs;
    return [Math.floor(x / AUDIENCES), x % AUDIENCES];
  };
  const m0 = tokens.stats().mint;
  const mintCached = await rate((i) => {
    const [s, a] = draw(i);
    return tokens.mint(inputFor(s, a));
  });
  const m1 = tokens.stats().mint;
  const mintHitRate = (m1.cacheHits - m0.cacheHits) / (m1.cacheHits - m0.cacheHits + m1.signed - m0.signed);
  print({ figure: 'mint-cached', opsPerSec: round(mintCached.opsPerSec), ops: mintCached.ops, subjects: SUBJECTS, audiences: AUDIENCES, hitRate: Math.round(mintHitRate * 1000) / 1000 });

  const mixed: { token: string; audience: string; thumb: string }[] = [];
  for (let i = 0; i < pairs; i++) {
    const [s, a] = draw(i);
    const input = inputFor(s, a);
    mixed.push({ token: (await tokens.mint(input)).token, audience: input.audience, thumb: input.certThumbprint! });
  }
  const v0 = tokens.stats().verify;
  const verifyCached = await rate((i) => {
    const m = mixed[i % mixed.length]!;
    return tokens.verify(m.token, { audience: m.audience, certThumbprint: m.thumb });
  });
  const v1 = tokens.stats().verify;
  const verifyHitRate = (v1.cacheHits - v0.cacheHits) / (v1.cacheHits - v0.cacheHits + v1.verified - v0.verified);
  print({ figure: 'verify-cached', opsPerSec: round(verifyCached.opsPerSec), ops: verifyCached.ops, hitRate: Math.round(verifyHitRate * 1000) / 1000 });

  print({
    figure: 'ratio',
    mintCachedOverNocache: Math.round((mintCached.opsPerSec / mintNo.opsPerSec) * 10) / 10,
    verifyCachedOverNocache: Math.round((verifyCached.opsPerSec / verifyNo.opsPerSec) * 10) / 10,
    // What the proxy pays per forwarded request for its token (mint), and what an inbound bearer check costs.
    mintUsNocache: Math.round((1e6 / mintNo.opsPerSec) * 10) / 10,
    mintUsCached: Math.round((1e6 / mintCached.opsPerSec) * 10) / 10,
    verifyUsNocache: Math.round((1e6 / verifyNo.opsPerSec) * 10) / 10,
    verifyUsCached: Math.round((1e6 / verifyCached.opsPerSec) * 10) / 10,
  });
}

/**
 * Requests/s through the real gateway with tokens on vs off (issue 4, "Measured"). It needs
 * src/app.ts to mint tokens on forwarded requests; until it does, the figure is skipped with a
 * line that says so. When the wiring lands: build the app twice (tokens on / off) with an
 * in-process upstream, drive it with concurrent keep-alive clients, print
 * { figure: 'proxy', tokensOn, tokensOff, costPercent } here.
 */
/**
 * Requests/s through the real gateway (mTLS listener, policy, audit, forwarding to a plain
 * http upstream in this process), tokens on versus off, alternating rounds in one run.
 * Client, gateway and upstream share the machine's 2 cores, so the absolute rate is low;
 * the ratio is the figure.
 */
async function proxyFigure(): Promise<void> {
  const { makeFixture, disposeFixture } = await import('../test/proxy/fixture.js');
  const { parseConfig } = await import('../src/config/index.js');
  const { openStore } = await import('../src/store/index.js');
  const { openBus } = await import('../src/bus/index.js');
  const { buildApp } = await import('../src/app.js');
  const { systemClock } = await import('../src/lib/clock.js');
  const { Agent, request } = await import('undici');
  const { spawn } = await import('node:child_process');
  const f = await makeFixture();
  // The upstream runs in its own process so its work (parsing the extra header) is not
  // counted on the gateway's event loop.
  const upstream = spawn(process.execPath, ['-e', "const s=require('http').createServer((q,r)=>{q.resume();q.on('end',()=>r.end('ok'))});s.listen(0,'127.0.0.1',()=>console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  const upstreamPort = await new Promise<number>((resolve) => upstream.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  const gateways: { close(): Promise<void>; port: number }[] = [];
  try {
    const start = async (withoutTokens: boolean, name: string) => {
      const text = f.configText
        .replace('./data', `./data-${name}`)
        .replace('replicaId: test-a', `replicaId: ${name}`)
        .replace(/host: plain\.payments, namespace: payments, service: api, upstream: "[^"]+"/, `host: plain.payments, namespace: payments, service: api, upstream: "http://127.0.0.1:${upstreamPort}"`);
      const config = parseConfig(text, f.configFile);
      const store = await openStore(config.store.kind === 'embedded' ? { kind: 'embedded', path: config.store.path } : config.store);
      const bus = await openBus({ kind: 'memory' });
      const app = await buildApp(config, { store, bus, clock: systemClock, withoutTokens });
      const at = await app.listen();
      const gw = { port: at.service!.port, close: async () => { await app.close(); await bus.close(); await store.close(); } };
      gateways.push(gw);
      return gw;
    };
    const off = await start(true, 'tokens-off');
    const on = await start(false, 'tokens-on');
    const agent = new Agent({ connections: 32, connect: { ca: f.ca.certPem, cert: f.certs.web.certPem, key: f.certs.web.keyPem, servername: 'localhost' } });
    const CONCURRENCY = 32;
    const round = async (port: number, ms: number): Promise<number> => {
      let n = 0;
      const end = performance.now() + ms;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (performance.now() < end) {
            const res = await request(`https://127.0.0.1:${port}/v1/charges/1?x=${n}`, { dispatcher: agent, headers: { host: 'plain.payments' } });
            await res.body.dump();
            if (res.statusCode !== 200) throw new Error(`proxy answered ${res.statusCode}`);
            n++;
          }
        }),
      );
      return (n / ms) * 1000;
    };
    await round(off.port, 1_000);
    await round(on.port, 1_000);
    const rates = { off: [] as number[], on: [] as number[] };
    for (let i = 0; i < 3; i++) {
      rates.off.push(await round(off.port, SECONDS * 1000));
      rates.on.push(await round(on.port, SECONDS * 1000));
    }
    await agent.close();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const offRps = mean(rates.off);
    const onRps = mean(rates.on);
    print({ figure: 'proxy', tokensOffRps: round1(offRps), tokensOnRps: round1(onRps), costPercent: round1(((offRps - onRps) / offRps) * 100), concurrency: CONCURRENCY, rounds: 3, targetPercent: 5 });
  } finally {
    for (const g of gateways) await g.close();
    upstream.kill();
    await disposeFixture(f);
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

await main();
