// Connections as the resource: a body trickled to a gateway route by someone who never signed
// in, descriptor exhaustion from a handful of addresses each under its cap (child process under
// ulimit -n 256), and the per-address cap and its audit events under IPv6 and IPv4-mapped
// addresses (child process in a private network namespace holding a few /64s).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { API, APP, rawConnect, sleep, startBench, type Bench } from './fixture.js';

const CHILD = path.resolve(import.meta.dirname, 'fixtures/gateway-child.ts');

interface Ipv6Result {
  sameNetRefused: number;
  sameNetTried: number;
  otherNetClosed: boolean;
  ipv4MappedClosed: boolean;
  capEvents: string[];
  loginStatuses: number[];
}

/** Runs the IPv6 attacks in a child inside a private network namespace; a string says why it cannot run. */
async function runIpv6(): Promise<Ipv6Result | string> {
  const probe = spawnSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
  if (probe.status !== 0) return 'needs `unshare -n` (a private network namespace) to hold several IPv6 /64s';
  const addrs = [...Array.from({ length: 24 }, (_, i) => `2001:db8:0:1::${i + 1}/64`), '2001:db8:0:2::1/64'].map((a) => `ip -6 addr add ${a} dev lo nodad`).join(' && ');
  const child = spawn('unshare', ['-n', 'sh', '-c', `ip link set lo up && ${addrs} && exec node --import tsx ${JSON.stringify(CHILD)}`], {
    env: {
      ...process.env,
      ATTACK_MODE: 'ipv6',
      ATTACK_BENCH: JSON.stringify({ address: '::', connections: ', connections: { maxPerAddress: 2 }', login: 'login: { rateLimit: { max: 2, window: 1m } }' }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  clearTimeout(timer);
  children.delete(child);
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`the IPv6 child exited ${String(code)} without a result: ${err.slice(-2000)}`);
  return JSON.parse(line) as Ipv6Result;
}

const children = new Set<ChildProcess>();
let b: Bench;
let ipv6Run: Promise<Ipv6Result | string>;
let serveRun: Promise<{ child: ChildProcessWithoutNullStreams; info: ServeInfo }>;
before(async () => {
  // the children start at once and run beside the in-process bench
  ipv6Run = runIpv6();
  ipv6Run.catch(() => undefined);
  serveRun = serveUnderUlimit();
  serveRun.catch(() => undefined);
  b = await startBench();
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await b?.close();
});

describe('attack: a slow body to a gateway route, without signing in', () => {

  it('a trickled body on an unauthenticated proxied request is cut with the refusal (regression)', async () => {
    const c = await rawConnect(b, { listener: 'human' });
    try {
      c.socket.write(`POST /v1/things HTTP/1.1\r\nHost: ${APP}\r\nContent-Length: 100000\r\n\r\nab`);
      assert.ok(await c.waitFor('401'), `401 first, got ${c.received().slice(0, 60)}`);
      for (let i = 0; i < 3; i++) {
        b.clock.advance(20_000);
        c.socket.write('x');
        await sleep(20);
      }
      assert.ok(await c.closed(1_000), 'the connection of a refused request is closed within the idle timeout on the clock');
    } finally {
      c.socket.destroy();
    }
  });

  it(
    'a body trickled to POST /.gatehouse/login/start is cut by a deadline (bodyIdleTimeout / requestTimeout) like a proxied body',
    async () => {
      const c = await rawConnect(b, { listener: 'human' });
      try {
        c.socket.write(`POST /.gatehouse/login/start HTTP/1.1\r\nHost: ${APP}\r\nOrigin: https://${APP}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"username":`);
        await sleep(100);
        // an hour on the gateway's clock: past the idle (30 s), body idle (30 s) and request (5 min) deadlines
        for (let i = 0; i < 60; i++) {
          b.clock.advance(60_000);
          await sleep(5);
        }
        const closed = await c.closed(1_000);
        assert.ok(closed, `still open after an hour of silence, received ${JSON.stringify(c.received().slice(0, 80))}`);
      } finally {
        c.socket.destroy();
      }
    },
  );
});

describe('attack: slow read (a caller that stops reading its answer)', () => {

  it(
    'a caller that never reads a streamed answer loses its connection (and frees the upstream connection) at a deadline on the clock',
    async () => {
      let stalled = false;
      let upstreamClosed = false;
      b.upstream.onRequest = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 97);
        const pump = (): void => {
          while (res.write(chunk)) {
            // until the gateway stops reading
          }
          stalled = true;
        };
        res.on('drain', () => {
          stalled = false;
          pump();
        });
        res.on('close', () => (upstreamClosed = true));
        pump();
      };
      const s = tls.connect({ host: '127.0.0.1', port: b.servicePort, ca: b.ca.certPem, cert: b.web.certPem, key: b.web.keyPem, servername: API }, () => s.write(`GET /v1/export HTTP/1.1\r\nHost: ${API}\r\n\r\n`));
      s.on('error', () => undefined);
      s.pause();
      let closed = false;
      s.on('close', () => (closed = true));
      try {
        for (let i = 0; i < 150 && !stalled; i++) await sleep(20);
        await sleep(300);
        assert.ok(stalled, 'the upstream is blocked on backpressure from the gateway');
        const held = b.app.service!.connections.openConnections;
        // two hours on the gateway clock: past idle, request and body deadlines
        for (let i = 0; i < 120; i++) {
          b.clock.advance(60_000);
          await sleep(2);
        }
        await sleep(500);
        // the client is paused: it cannot notice a reset until it reads, so the gateway's side is what counts
        assert.equal(b.app.service!.connections.openConnections, held - 1, 'the gateway still holds the client connection two clock-hours later');
        void closed;
        assert.ok(upstreamClosed, 'the upstream connection is still held two clock-hours later');
      } finally {
        s.destroy();
      }
    },
  );
});

interface ServeInfo {
  pid: number;
  servicePort: number;
  ca: string;
  cert: string;
  key: string;
}

function getFrom(info: ServeInfo, localAddress: string): Promise<string> {
  return new Promise((resolve) => {
    const req = https.request(
      { host: '127.0.0.1', port: info.servicePort, localAddress, path: '/v1/things', ca: info.ca, cert: info.cert, key: info.key, servername: 'api.payments', headers: { host: 'api.payments' }, agent: false, timeout: 3_000 },
      (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.statusCode)));
      },
    );
    req.on('error', (e) => resolve(e.message));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** A bench gateway in a child under ulimit -n 256 (64 connections per address), serving until its stdin closes. */
async function serveUnderUlimit(): Promise<{ child: ChildProcessWithoutNullStreams; info: ServeInfo }> {
  const child = spawn('sh', ['-c', `ulimit -n 256; exec node --import tsx ${JSON.stringify(CHILD)}`], {
    env: { ...process.env, ATTACK_MODE: 'serve', ATTACK_BENCH: JSON.stringify({ connections: ', connections: { maxPerAddress: 64 }' }) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const info = await new Promise<ServeInfo>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as ServeInfo);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited ${String(code)}: ${stderr}`)));
  });
  return { child, info };
}

describe('attack: descriptor exhaustion from a few addresses, each within its cap', () => {
  it(
    'five addresses holding 64 pre-TLS connections each (the cap) under a 256-descriptor limit: a legitimate caller from a sixth address is still served',
    async (t) => {
      const { child, info } = await serveRun;
      const sockets: net.Socket[] = [];
      t.after(async () => {
        for (const s of sockets) s.destroy();
        child.stdin.end();
        const exited = new Promise((r) => child.once('exit', r));
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
        children.delete(child);
      });
      assert.equal(await getFrom(info, '127.0.0.2'), '200', 'served before the attack');
      for (let a = 10; a < 15; a++) {
        for (let i = 0; i < 64; i++) {
          const s = net.connect({ host: '127.0.0.1', port: info.servicePort, localAddress: `127.0.0.${a}` });
          s.on('error', () => undefined);
          sockets.push(s);
        }
      }
      await sleep(1_000);
      const during = await getFrom(info, '127.0.0.2');
      for (const s of sockets.splice(0)) s.destroy();
      await sleep(300);
      const afterwards = await getFrom(info, '127.0.0.2');
      assert.equal(afterwards, '200', 'served again once the attacker let go');
      assert.equal(during, '200', `a legitimate caller during the attack got: ${during}`);
    },
  );
});

describe('attack: per-address cap evasion with IPv6 and IPv4-mapped addresses', () => {
  let result: Ipv6Result | undefined;
  let skip: string | undefined;
  before(async () => {
    const r = await ipv6Run;
    if (typeof r === 'string') skip = r;
    else result = r;
  });

  it('addresses of one /64 share its cap; another /64 is another client; an IPv4-mapped address counts as its IPv4 address', (t) => {
    if (skip !== undefined) return t.skip(skip);
    const r = result!;
    assert.equal(r.sameNetRefused, r.sameNetTried, `all ${r.sameNetTried} addresses of the capped /64 refused: ${JSON.stringify(r)}`);
    assert.equal(r.otherNetClosed, false, 'a connection from another /64 is accepted');
    assert.equal(r.ipv4MappedClosed, true, '::ffff:127.0.0.1 is refused once 127.0.0.1 holds the cap');
  });

  it('the login rate limit counts a /64 as one client (no evasion by rotating addresses)', (t) => {
    if (skip !== undefined) return t.skip(skip);
    assert.deepEqual(result!.loginStatuses, [200, 200, 429, 429, 429, 429]);
  });

  it(
    'refusals at the cap are audited once a minute per client (/64), not once per rotated address',
    (t) => {
      if (skip !== undefined) return t.skip(skip);
      const v6 = result!.capEvents.filter((a) => a.startsWith('2001:db8:0:1:'));
      assert.ok(v6.length <= 1, `${v6.length} cap events for one /64 within a minute: ${JSON.stringify(v6)}`);
    },
  );
});
