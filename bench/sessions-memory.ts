// Memory of a gateway restarted on a store holding 100,000 live sessions (npm run
// bench:sessions-memory). The sessions are written through the real login path's
// SessionManager; then `gatehouse serve` starts as a process of its own on that store, and
// once /readyz answers its /proc status is read. Unlike the memory line of bench/login.ts, the
// figure carries no bench harness, soft authenticators or history of having written them.
//
// File-backed RSS is mostly the store's pages the process has mapped, and depends on the page
// cache, so the gateway runs twice: right after the sessions were written (all of data.mdb
// cached: the kernel maps the cached neighbours of each page read) and after data.mdb's pages
// were dropped from the cache (as after a reboot: only the pages it reads). Anonymous RSS
// falls once V8's memory reducer has run (some 40 s after start, when idle), so it is read 3 s
// after /readyz and again BENCH_SETTLE_S (60) seconds later.
//
// The gateway runs as `npm start` runs it: `node dist/main.js serve`, built first (`npm run
// build`). BENCH_GATEHOUSE_MAIN=bin/gatehouse.js runs the TypeScript sources through tsx instead,
// as the `gatehouse` CLI does in a clone.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { makeEnv, startGateway, configText, enroll, login, type Env } from '../test/authenticate/harness.js';
import { waitFor } from '../test/helpers/programs.js';
import { SESSION_COOKIE, USERS_PREFIX, type UserRecord } from '../src/authenticate/types.js';
import { json } from '../src/store/index.js';
import { memoryStatus } from './lib/stats.js';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 100_000);
/** Enrolled people the sessions belong to (each signs in many times). */
const USERS = Number(process.env.BENCH_SESSIONS_USERS ?? 20);
const SETTLE_S = Number(process.env.BENCH_SETTLE_S ?? 60);
const MAIN = path.resolve(import.meta.dirname, '..', process.env.BENCH_GATEHOUSE_MAIN ?? 'dist/main.js');
const HOST = 'login.example.org';
const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36';
const print = (o: Record<string, unknown>): void => console.log(JSON.stringify({ bench: 'sessions-memory', ...o }));
const mb = (bytes: number): number => Math.round(bytes / 1024 / 102.4) / 10;

/** Writes the sessions through an in-process gateway on env's store; returns a sample of their cookies. */
async function writeSessions(env: Env): Promise<string[]> {
  const gw = await startGateway(env);
  try {
    const users = [];
    for (let i = 0; i < USERS; i++) users.push(await enroll(env, gw, `person${i}`, ['payments:ops-admin']));
    const first = await login(env, gw, users[0]!);
    const sample = [first.cookies.jar.get(SESSION_COOKIE)!];
    const records = await Promise.all(users.map(async (u) => json<UserRecord>(await env.store.get(USERS_PREFIX + u.id))!));
    const sessions = gw.app.sessions!;
    const view = sessions.lookup(sample[0], HOST);
    if (view instanceof Error) throw view;
    for (let i = 1; i < SESSIONS; i += 500) {
      const drafts = await Promise.all(
        Array.from({ length: Math.min(500, SESSIONS - i) }, (_, j) => {
          const n = i + j;
          const user = records[n % records.length]!;
          return sessions.create({
            userId: user.id,
            roles: user.roles,
            amr: [...view.amr],
            acr: view.acr,
            credentialId: user.credentialIds![0]!,
            lastWebAuthnAt: env.clock.now(),
            host: HOST,
            ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
            userAgent: USER_AGENT,
          });
        }),
      );
      sample.push(drafts[0]!.id);
    }
    return sample;
  } finally {
    await gw.close();
    await env.store.close();
  }
}

/** Resident bytes of the process's mappings of the store file. */
function storeResident(pid: number): number {
  let total = 0;
  for (const block of readFileSync(`/proc/${pid}/smaps`, 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    if (!block.split('\n', 1)[0]!.endsWith('/data.mdb')) continue;
    total += Number(/^Rss:\s+(\d+) kB/m.exec(block)?.[1] ?? 0) * 1024;
  }
  return total;
}

function metric(text: string, name: string): number {
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** GET /.gatehouse/session with a cookie: the gateway looked the session up in what it loaded. */
function sessionStatus(port: number, cookie: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // the check is about the session, not TLS: the listener's certificate does not name login.example.org
    const req = https.get({ host: '127.0.0.1', port, path: '/.gatehouse/session', servername: HOST, rejectUnauthorized: false, headers: { host: HOST, cookie: `${SESSION_COOKIE}=${cookie}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

async function measure(configFile: string, sample: string[], pageCache: 'warm' | 'dropped'): Promise<void> {
  const t0 = performance.now();
  const child: ChildProcess = spawn(process.execPath, [MAIN, 'serve', '--config', configFile, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  try {
    const port = (re: RegExp): Promise<number> => waitFor('the gateway to print its ports', async () => (re.exec(output) ? Number(re.exec(output)![1]) : undefined), 120_000);
    const adminPort = await port(/admin on http:\/\/127\.0\.0\.1:(\d+)/);
    const humanPort = await port(/human listener on https:\/\/127\.0\.0\.1:(\d+)/);
    await waitFor('/readyz', async () => ((await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined))?.ok ? true : undefined), 120_000);
    const readyMs = performance.now() - t0;
    const pid = child.pid!;
    const codes = await Promise.all(sample.map((c) => sessionStatus(humanPort, c)));
    const served = codes.filter((c) => c === 200).length;
    if (served !== sample.length) throw new Error(`only ${served} of ${sample.length} sample cookies were served: ${codes.join(',')}`);
    const sleep = (ms: number): Promise<unknown> => new Promise((r) => setTimeout(r, ms));
    await sleep(3_000);
    const early = memoryStatus(pid);
    await sleep(SETTLE_S * 1000);
    const s = memoryStatus(pid);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    print({
      op: 'memory',
      pageCache,
      runs: path.relative(path.join(import.meta.dirname, '..'), MAIN),
      liveSessions: SESSIONS,
      sessionsCached: metric(metrics, 'gatehouse_sessions_cached'),
      sampleCookiesServed: served,
      readyMs: Math.round(readyMs),
      at3sRssMB: mb(early.VmRSS),
      at3sRssAnonMB: mb(early.RssAnon),
      settledAfterS: SETTLE_S + 3,
      rssMB: mb(s.VmRSS),
      rssAnonMB: mb(s.RssAnon),
      rssFileMB: mb(s.RssFile),
      storeMappedMB: mb(storeResident(pid)),
      heapUsedMB: mb(metric(metrics, 'gatehouse_nodejs_heap_size_used_bytes')),
      peakRssMB: mb(s.VmHWM),
      targetRssMB: 300,
    });
  } catch (err) {
    console.error(output);
    throw err;
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }
}

// the build runs what the sources say now, not whatever dist/ held
if (process.env.BENCH_GATEHOUSE_MAIN === undefined) execFileSync('npm', ['run', '-s', 'build'], { cwd: path.join(import.meta.dirname, '..'), stdio: 'inherit' });
const env = await makeEnv();
try {
  const t0 = performance.now();
  const sample = await writeSessions(env);
  const dataFile = path.join(env.dir, 'data', 'data.mdb');
  print({ op: 'write', liveSessions: SESSIONS, users: USERS, seconds: Math.round((performance.now() - t0) / 100) / 10, dataFileMB: mb(statSync(dataFile).size) });
  const configFile = path.join(env.dir, 'gatehouse.yaml');
  writeFileSync(configFile, configText(env));
  await measure(configFile, sample, 'warm');
  // drops this file's pages from the page cache (posix_fadvise DONTNEED), nothing else's
  execFileSync('dd', [`if=${dataFile}`, 'iflag=nocache', 'count=0', 'status=none']);
  await measure(configFile, sample, 'dropped');
} finally {
  await env.close();
}
