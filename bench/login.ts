// Login and session figures (npm run bench:login): server-side time of each login step, the
// whole login, session lookup per proxied request, and memory with 100,000 live sessions.
// The gateway runs in this process (fastify inject: no network), on the embedded store, with
// a software authenticator (ES256) from the tests.
import { SoftAuthenticator } from '../test/authenticate/soft-authenticator.js';
import { makeEnv, startGateway, enroll, jar, totp, type Enrolled } from '../test/authenticate/harness.js';
import { SESSION_COOKIE } from '../src/authenticate/types.js';
import { loginFloor } from './lib/login-floor.js';
import { memoryStatus, percentileOf } from './lib/stats.js';

const USERS = Number(process.env.BENCH_LOGIN_USERS ?? 200);
/** Logins run first and not counted: V8 compiles the hot paths during these. */
const WARMUP = Number(process.env.BENCH_LOGIN_WARMUP ?? 50);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 100_000);
const print = (o: Record<string, unknown>): void => console.log(JSON.stringify({ bench: 'login', ...o }));
const pct = percentileOf;
const r2 = (x: number): number => Math.round(x * 100) / 100;
const mb = (): number => Math.round((process.memoryUsage().rss / 1024 / 1024) * 10) / 10;
/** RSS split: anonymous (heap, buffers) vs file-backed (LMDB's memory map, code). */
function rssSplit(): { rssAnonMB: number; rssFileMB: number } {
  const s = memoryStatus();
  return { rssAnonMB: Math.round(s.RssAnon / 104857.6) / 10, rssFileMB: Math.round(s.RssFile / 104857.6) / 10 };
}

const env = await makeEnv();
const gw = await startGateway(env);
try {
  const users: Enrolled[] = [];
  for (let i = 0; i < WARMUP + USERS; i++) users.push(await enroll(env, gw, `user${i}`, ['payments:ops-admin'], new SoftAuthenticator()));

  const t: Record<'start' | 'webauthn' | 'totp' | 'total', number[]> = { start: [], webauthn: [], totp: [], total: [] };
  const timed = async <T>(bucket: number[], fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const out = await fn();
    bucket.push((performance.now() - t0) * 1000);
    return out;
  };
  // the reference: three requests each doing one durable write, timed between the logins
  const floor = await loginFloor(env.store);
  const floorUs: number[] = [];
  let cookie = '';
  for (const [i, u] of users.entries()) {
    if (i === WARMUP) for (const xs of [...Object.values(t), floorUs]) xs.length = 0;
    floorUs.push(await floor.triple());
    const cookies = jar();
    const host = 'login.example.org';
    const start = await timed(t.start, () => gw.request({ url: '/.gatehouse/login/start', host, cookies, body: { username: u.id, rd: '/' } }));
    if (start.status !== 200) throw new Error(start.body);
    const { options } = start.json<{ options: { challenge: string; rpId: string } }>();
    const response = u.key.authenticate(options, `https://${host}`); // the authenticator's work is the client's, not timed
    const w = await timed(t.webauthn, () => gw.request({ url: '/.gatehouse/login/webauthn', host, cookies, body: { response } }));
    if (w.status !== 200) throw new Error(w.body);
    const code = totp(u.seed, env.clock.now() + 30_000);
    const done = await timed(t.totp, () => gw.request({ url: '/.gatehouse/login/totp', host, cookies, body: { code } }));
    if (done.status !== 200) throw new Error(done.body);
    t.total.push(t.start.at(-1)! + t.webauthn.at(-1)! + t.totp.at(-1)!);
    cookie = cookies.jar.get(SESSION_COOKIE) ?? cookie;
  }
  await floor.close();
  for (const [step, xs] of Object.entries(t)) print({ op: `login-${step}`, n: xs.length, warmup: WARMUP, p50us: r2(pct(xs, 50)), p99us: r2(pct(xs, 99)), ...(step === 'total' ? { targetP99us: 10_000 } : {}) });
  print({ op: 'floor-3-durable-requests', n: floorUs.length, p50us: r2(pct(floorUs, 50)), p99us: r2(pct(floorUs, 99)) });
  print({ op: 'login-total/floor', p50ratio: r2(pct(t.total, 50) / pct(floorUs, 50)), p99ratio: r2(pct(t.total, 99) / pct(floorUs, 99)) });

  const sessions = gw.app.sessions!;
  const lookup = (n: number): number[] => {
    const xs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      const v = sessions.lookup(cookie, 'login.example.org');
      xs.push(Number(process.hrtime.bigint() - t0) / 1000);
      if (v instanceof Error) throw v;
    }
    return xs;
  };
  lookup(10_000);
  const small = lookup(200_000);
  print({ op: 'session-lookup', liveSessions: WARMUP + USERS, n: small.length, p50us: r2(pct(small, 50)), p99us: r2(pct(small, 99)), targetP99us: 20 });

  // one session created at a time: its lease grant and its guarded write, each durable
  const newSession = (i: number) => ({ userId: `user${i % (WARMUP + USERS)}`, roles: { payments: ['ops-admin'] }, amr: ['hwk', 'user', 'otp'], acr: 'aal3', credentialId: 'bench', lastWebAuthnAt: env.clock.now(), host: 'login.example.org', ip: '127.0.0.1', userAgent: 'bench/1' });
  const one: number[] = [];
  for (let i = 0; i < 50 + USERS; i++) {
    const t1 = performance.now();
    await sessions.create(newSession(i));
    if (i >= 50) one.push((performance.now() - t1) * 1000);
  }
  print({ op: 'session-create-one', n: one.length, p50us: r2(pct(one, 50)), p99us: r2(pct(one, 99)) });

  // 100,000 live sessions, created through the session manager (store + lease + cache)
  global.gc?.();
  const rssBefore = mb();
  const t0 = performance.now();
  for (let i = 0; i < SESSIONS; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, SESSIONS - i) }, (_, j) =>
        sessions.create(newSession(i + j)),
      ),
    );
  }
  const createMs = performance.now() - t0;
  global.gc?.();
  const big = lookup(200_000);
  print({ op: 'session-create-bulk', inFlight: 500, n: SESSIONS, perSecond: Math.round((SESSIONS / createMs) * 1000) });
  print({ op: 'session-lookup', liveSessions: SESSIONS + WARMUP + USERS, n: big.length, p50us: r2(pct(big, 50)), p99us: r2(pct(big, 99)), targetP99us: 20 });
  print({ op: 'memory', liveSessions: SESSIONS + WARMUP + USERS, rssMB: mb(), ...rssSplit(), rssBeforeSessionsMB: rssBefore, targetRssMB: 300, heapUsedMB: Math.round(process.memoryUsage().heapUsed / 1024 / 1024) });
} finally {
  await gw.close();
  await env.close();
}
