// The connection stage under the attacks it exists for: descriptor exhaustion by idle
// connections (in a child process under a low descriptor limit), half-open handshakes,
// slowloris, idle keep-alive, one address hogging connections, a handshake without a
// certificate, and a kept-alive connection outliving its certificate.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import Fastify, { type FastifyInstance } from 'fastify';
import { initCa, issueCertificate, issueServerCertificate, type CertificateAuthority, type IssuedCertificate } from '../../src/pki/index.js';
import { ManualClock } from '../../src/lib/clock.js';
import { GatehouseError } from '../../src/errors.js';
import { certThumbprint } from '../../src/tokens/cert-thumbprint.js';
import {
  addressKey,
  CLOSE_GRACE_MS,
  connectionServerOptions,
  installConnectionStage,
  type ConnectionFacts,
  type ConnectionLimits,
  type ConnectionRefusal,
  type ConnectionStage,
} from '../../src/gateway/connection.js';
import { uriSans } from '../../src/gateway/connection.js';
import { DeadlineQueue } from '../../src/lib/deadline-queue.js';

const ATTACKER = '127.0.0.3';
const LEGIT = '127.0.0.2';
// every assert.ok carries a message: without one, Node re-parses the transpiled one-line source
// to build it, which takes minutes on a file this size
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Pki {
  dir: string;
  ca: CertificateAuthority;
  server: IssuedCertificate;
  web: IssuedCertificate;
  /** Five minutes of life: expiry is reached by moving a ManualClock. */
  shortLived: IssuedCertificate;
  foreign: IssuedCertificate;
}

let pki: Pki;

before(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'gh-connection-'));
  const [ca, foreignCa] = await Promise.all([initCa({ dir: path.join(dir, 'ca'), trustDomain: 'example.org' }), initCa({ dir: path.join(dir, 'foreign'), trustDomain: 'example.org' })]);
  const [server, web, shortLived, foreign] = await Promise.all([
    issueServerCertificate(ca, { hosts: ['127.0.0.1'] }),
    issueCertificate(ca, { namespace: 'frontend', service: 'web' }),
    issueCertificate(ca, { namespace: 'frontend', service: 'cron', ttlMs: 5 * 60_000 }),
    issueCertificate(foreignCa, { namespace: 'frontend', service: 'web' }),
  ]);
  pki = { dir, ca, server, web, shortLived, foreign };
});

after(async () => {
  if (pki !== undefined) await rm(pki.dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// client helpers

/** Resolves true when the socket closes within ms. */
function closesWithin(socket: net.Socket, ms: number): Promise<boolean> {
  if (socket.destroyed && socket.closed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

const sockets = new Set<net.Socket>();
function track<T extends net.Socket>(s: T): T {
  sockets.add(s);
  s.on('error', () => undefined);
  s.once('close', () => sockets.delete(s));
  return s;
}
after(() => {
  for (const s of sockets) s.destroy();
});

/** tls.connect, with the local address to connect from (a net option its types leave out). */
function tlsConnect(o: tls.ConnectionOptions & Pick<net.TcpNetConnectOpts, 'localAddress'>): tls.TLSSocket {
  return tls.connect(o);
}

async function tcp(port: number, localAddress = ATTACKER): Promise<net.Socket> {
  const s = track(net.connect({ host: '127.0.0.1', port, localAddress }));
  s.resume(); // read, so the server's FIN is seen
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

interface TlsClient {
  socket: tls.TLSSocket;
  /** Everything received so far. */
  received(): string;
  /** Waits until the received text matches. */
  waitFor(re: RegExp, ms?: number): Promise<string>;
}

async function tlsClient(port: number, o: { cert?: IssuedCertificate; localAddress?: string } = {}): Promise<TlsClient> {
  const socket = track(
    tlsConnect({ host: '127.0.0.1', port, ca: pki.ca.certPem, localAddress: o.localAddress ?? LEGIT, ...(o.cert ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}) }),
  );
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (text += d));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed during the handshake')));
  });
  return {
    socket,
    received: () => text,
    async waitFor(re, ms = 3000) {
      const until = Date.now() + ms;
      while (!re.test(text)) {
        if (Date.now() > until) throw new Error(`no ${re} in ${JSON.stringify(text)}`);
        await sleep(10);
      }
      return text;
    },
  };
}

/** The bytes a TLS client sends first (a real ClientHello), captured from a listener that never answers. */
async function clientHello(): Promise<Buffer> {
  const server = net.createServer();
  const got = new Promise<Buffer>((resolve) => server.once('connection', (s) => s.once('data', (d: Buffer) => (resolve(d), s.destroy()))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const c = track(tlsConnect({ host: '127.0.0.1', port, ca: pki.ca.certPem, cert: pki.web.certPem, key: pki.web.keyPem }));
  const hello = await got;
  c.destroy();
  server.close();
  return hello;
}

function get(port: number, o: { path?: string; cert?: IssuedCertificate; localAddress?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: o.path ?? '/',
        ca: pki.ca.certPem,
        agent: false,
        localAddress: o.localAddress ?? LEGIT,
        ...(o.cert !== undefined ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// an in-process listener with only the connection stage

interface Listener {
  app: FastifyInstance;
  stage: ConnectionStage;
  port: number;
  clock: ManualClock;
  refusals: ConnectionRefusal[];
  expired: ConnectionFacts[];
  /** Holds GET /hold open until release(). */
  release(): void;
}

const DEFAULT_TEST_LIMITS: ConnectionLimits = { handshakeTimeout: 10_000, headersTimeout: 15_000, idleTimeout: 60_000, maxPerAddress: 256, maxConnections: 10_000 };

async function listener(t: { after(fn: () => Promise<void> | void): void }, o: { limits?: Partial<ConnectionLimits>; admit?: (f: ConnectionFacts) => GatehouseError | undefined } = {}): Promise<Listener> {
  const limits = { ...DEFAULT_TEST_LIMITS, ...o.limits };
  const clock = new ManualClock(Date.now());
  const refusals: ConnectionRefusal[] = [];
  const expired: ConnectionFacts[] = [];
  const onRefused = (r: ConnectionRefusal): void => void refusals.push(r);
  const app = Fastify({
    https: { cert: pki.server.certPem, key: pki.server.keyPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
    ...connectionServerOptions(limits, { onRefused, now: () => clock.now() }),
  });
  const stage = installConnectionStage(app.server, { limits, clock, onRefused, onExpired: (f) => void expired.push(f), ...(o.admit ? { admit: o.admit } : {}) });
  let release = (): void => undefined;
  app.get('/', async () => ({ ok: true }));
  app.get('/hold', async () => {
    await new Promise<void>((r) => (release = r));
    return { held: true };
  });
  app.get('/facts', async (req) => {
    const f = stage.factsOf(req.raw.socket);
    if (f?.serial !== undefined) stage.tag(req.raw.socket, `cert:${f.serial}`);
    return f === undefined ? null : { ...f, cert: f.cert?.subject ?? null };
  });
  app.server.on('upgrade', (_req, socket: net.Socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: test\r\nconnection: upgrade\r\n\r\n');
    stage.markUpgraded(socket);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(async () => {
    stage.close();
    await app.close();
  });
  return { app, stage, port: (app.server.address() as net.AddressInfo).port, clock, refusals, expired, release: () => release() };
}

const REQUEST = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

/** Waits for the event loop to deliver what a clock move set off. */
const settle = (): Promise<void> => sleep(50);

// ---------------------------------------------------------------------------------------------

describe('descriptor exhaustion: idle connections that never start TLS', () => {
  it('holding and dropping hundreds of idle connections, round after round, leaves no descriptor behind and legitimate requests keep working', async (t) => {
    const limits: ConnectionLimits = { handshakeTimeout: 400, headersTimeout: 1000, idleTimeout: 2000, maxPerAddress: 150, maxConnections: 10_000 };
    const certsFile = path.join(pki.dir, 'server.json');
    await writeFile(certsFile, JSON.stringify({ ca: pki.ca.certPem, cert: pki.server.certPem, key: pki.server.keyPem }));
    const fixture = path.resolve(import.meta.dirname, '../fixtures/connection/server.ts');
    const child: ChildProcess = spawn('sh', ['-c', `ulimit -n 256; exec node --import tsx ${JSON.stringify(fixture)}`], {
      env: { ...process.env, CONNECTION_CERTS: certsFile, CONNECTION_LIMITS: JSON.stringify(limits) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const { pid, port } = await new Promise<{ pid: number; port: number }>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as { pid: number; port: number });
      });
      child.once('exit', (code) => reject(new Error(`fixture exited ${String(code)}: ${stderr}`)));
    });
    const fds = (): number => readdirSync(`/proc/${pid}/fd`).length;
    const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    const closeWait = (): number =>
      readFileSync('/proc/net/tcp', 'utf8')
        .split('\n')
        .slice(1)
        .filter((l) => {
          const f = l.trim().split(/\s+/);
          return f[1]?.endsWith(hexPort) === true && f[3] === '08';
        }).length;
    const stats = async (): Promise<{ refusals: Record<string, number>; open: number }> => JSON.parse((await get(port, { cert: pki.web, path: '/stats' })).body) as { refusals: Record<string, number>; open: number };

    // warm up (TLS contexts, lazy modules), then the baseline
    assert.equal((await get(port, { cert: pki.web })).status, 200);
    await sleep(200);
    const baseline = fds();

    // legitimate requests from another address, all through the attack
    const statuses: (number | string)[] = [];
    let attacking = true;
    t.after(() => {
      attacking = false;
    });
    const legit = (async () => {
      while (attacking) {
        statuses.push(await get(port, { cert: pki.web }).then((r) => r.status, (e: Error) => e.message));
        await sleep(25);
      }
    })();

    const ROUNDS = 4;
    const PER_ROUND = 300;
    let connected = 0;
    const peaks: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const idle: net.Socket[] = [];
      await Promise.all(
        Array.from({ length: PER_ROUND }, async () => {
          const s = await tcp(port).catch(() => undefined);
          if (s !== undefined) {
            idle.push(s);
            connected++;
          }
        }),
      );
      // even rounds outlast the handshake timeout (the server reaps them while the client is
      // still there: the old CLOSE-WAIT path); odd rounds leave first (abandoned handshakes)
      await sleep(round % 2 === 0 ? 2 * limits.handshakeTimeout : limits.handshakeTimeout / 4);
      peaks.push(fds());
      for (const s of idle) s.destroy();
      const back = Date.now() + 3000;
      while ((fds() > baseline + 4 || closeWait() > 0) && Date.now() < back) await sleep(50);
      assert.ok(fds() <= baseline + 4, `round ${round}: ${fds()} descriptors after dropping, baseline ${baseline}`);
      assert.equal(closeWait(), 0, `round ${round}: sockets left in CLOSE-WAIT`);
    }
    attacking = false;
    await legit;

    // the cap held the attacker to maxPerAddress descriptors (plus legitimate traffic)
    for (const peak of peaks) assert.ok(peak <= baseline + limits.maxPerAddress + 10, `peak ${peak} descriptors`);
    assert.ok(statuses.length >= 10, `only ${statuses.length} legitimate requests ran`);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every legitimate request during the attack got 200',
    );
    assert.equal((await get(port, { cert: pki.web })).status, 200);
    // every idle connection was refused exactly once: at the cap, at the handshake deadline, or when its client left
    const s = await stats();
    const reported = (s.refusals['per-address-limit'] ?? 0) + (s.refusals['handshake-timeout'] ?? 0) + (s.refusals['handshake-abandoned'] ?? 0);
    assert.equal(reported, connected, JSON.stringify(s.refusals));
    // how many fall to each depends on how fast a loaded machine accepts (the peaks above prove the
    // cap held); each kind must have happened
    assert.ok((s.refusals['per-address-limit'] ?? 0) > 0, JSON.stringify(s.refusals));
    assert.ok((s.refusals['handshake-timeout'] ?? 0) > 0, JSON.stringify(s.refusals));
    t.diagnostic(`baseline ${baseline} fds, peaks ${peaks.join('/')}, after ${fds()}; ${statuses.length} legitimate requests; refusals ${JSON.stringify(s.refusals)}`);
  });
});

describe('half-open and slow connections', () => {
  it('a ClientHello followed by silence is destroyed when the handshake deadline passes, and reported once', async (t) => {
    const l = await listener(t, { limits: { handshakeTimeout: 5000 } });
    const hello = await clientHello();
    const s = await tcp(l.port);
    s.write(hello);
    await sleep(200); // the server has answered its ServerHello and waits
    assert.equal(s.closed, false);
    assert.equal(l.stage.openConnections, 1, 'a handshake in progress counts');
    l.clock.advance(4999);
    assert.equal(await closesWithin(s, 200), false, 'still within the deadline');
    l.clock.advance(1);
    assert.ok(await closesWithin(s, 2000), 'destroyed at the deadline');
    await settle();
    assert.deepEqual(
      l.refusals.map((r) => [r.reason, r.code, r.remoteAddress]),
      [['handshake-timeout', 'ERR_TLS_HANDSHAKE_TIMEOUT', ATTACKER]],
    );
    assert.equal(l.stage.openConnections, 0);
  });

  it('a TCP connection that never sends a byte is destroyed at the handshake deadline too', async (t) => {
    const l = await listener(t, { limits: { handshakeTimeout: 1000 } });
    const s = await tcp(l.port);
    await sleep(50);
    l.clock.advance(1000);
    assert.ok(await closesWithin(s, 2000), 'the connection is closed');
    await settle();
    assert.deepEqual(l.refusals.map((r) => r.reason), ['handshake-timeout']);
  });

  it('slowloris: headers trickled after TLS are cut at headersTimeout with a coded 408', async (t) => {
    const headersTimeout = 400;
    const l = await listener(t, { limits: { headersTimeout } });
    const c = await tlsClient(l.port, { cert: pki.web });
    const started = Date.now();
    c.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    const drip = setInterval(() => c.socket.writable && c.socket.write('a'), 50);
    t.after(() => clearInterval(drip));
    assert.ok(await closesWithin(c.socket, 3000), 'closed');
    clearInterval(drip);
    const took = Date.now() - started;
    // Node checks every headersTimeout/4 (at most 1 s); the stage sets that
    assert.ok(took >= headersTimeout - 20 && took < headersTimeout + 400, `closed after ${took} ms`);
    assert.match(c.received(), /^HTTP\/1\.1 408 /);
    assert.equal((JSON.parse(c.received().split('\r\n\r\n')[1]!) as { error: { code: string } }).error.code, 'ERR_HEADERS_TIMEOUT');
    assert.deepEqual(l.refusals.map((r) => [r.reason, r.code]), [['headers-timeout', 'ERR_HEADERS_TIMEOUT']]);
    assert.equal(l.refusals[0]!.facts?.serial, pki.web.serial);
  });

  it('a TLS connection that sends nothing is closed as idle, without an answer or a refusal', async (t) => {
    const l = await listener(t, { limits: { headersTimeout: 300 } });
    const c = await tlsClient(l.port, { cert: pki.web });
    assert.ok(await closesWithin(c.socket, 3000), 'the connection is closed');
    assert.equal(c.received(), '');
    await settle();
    assert.deepEqual(l.refusals, []);
  });

  it('an idle keep-alive connection is closed at idleTimeout on the clock; a request in flight is never idle', async (t) => {
    const idleTimeout = 60_000;
    const l = await listener(t, { limits: { idleTimeout } });
    const c = await tlsClient(l.port, { cert: pki.web });
    c.socket.write(REQUEST);
    await c.waitFor(/\{"ok":true\}/);
    l.clock.advance(idleTimeout - 1);
    assert.equal(await closesWithin(c.socket, 100), false, 'kept alive until the deadline');
    // a slow request holds the connection however long it takes
    c.socket.write('GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await sleep(100);
    l.clock.advance(10 * idleTimeout);
    assert.equal(await closesWithin(c.socket, 100), false, 'busy, not idle');
    l.release();
    await c.waitFor(/\{"held":true\}/);
    l.clock.advance(idleTimeout - 1);
    assert.equal(await closesWithin(c.socket, 100), false);
    l.clock.advance(1);
    assert.ok(await closesWithin(c.socket, 2000), 'closed once idle for idleTimeout');
    await settle();
    assert.deepEqual(l.refusals, [], 'an idle close is not a refusal');
    assert.equal(l.stage.openConnections, 0);
  });

  it('an upgraded connection is not idle: it lives until the caller (or its certificate) ends it', async (t) => {
    const idleTimeout = 60_000;
    const l = await listener(t, { limits: { idleTimeout } });
    const c = await tlsClient(l.port, { cert: pki.web });
    c.socket.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n');
    await c.waitFor(/^HTTP\/1\.1 101 /);
    l.clock.advance(5 * idleTimeout);
    assert.equal(await closesWithin(c.socket, 100), false);
    l.clock.advance(24 * 3600_000);
    assert.ok(await closesWithin(c.socket, 2000), 'closed when the certificate expired');
    assert.equal(l.expired.length, 1);
  });

  it('one address holding maxPerAddress connections gets its next one closed at once; other addresses still connect', async (t) => {
    const l = await listener(t, { limits: { maxPerAddress: 3 } });
    const held = [await tcp(l.port), await tcp(l.port), await tcp(l.port)];
    await sleep(50);
    const extra = await tcp(l.port);
    assert.ok(await closesWithin(extra, 1000), 'the 4th from the same address is closed');
    assert.equal(l.stage.openConnections, 3);
    assert.equal((await get(l.port, { cert: pki.web, localAddress: LEGIT })).status, 200);
    held[0]!.destroy();
    await sleep(100);
    const again = await tcp(l.port);
    assert.equal(await closesWithin(again, 200), false, 'a freed slot is usable');
    await settle();
    assert.deepEqual(
      l.refusals.map((r) => [r.reason, r.code, r.remoteAddress]),
      [
        ['per-address-limit', 'ERR_TOO_MANY_CONNECTIONS', ATTACKER],
        ['handshake-abandoned', 'ERR_TLS_HANDSHAKE_FAILED', ATTACKER], // the one that left
      ],
    );
  });
});

describe('refused handshakes are reported exactly once', () => {
  it('a handshake without a client certificate is one handshake-failed refusal, never also a malformed request', async (t) => {
    const l = await listener(t);
    const s = track(tlsConnect({ host: '127.0.0.1', port: l.port, ca: pki.ca.certPem, localAddress: ATTACKER }));
    assert.ok(await closesWithin(s, 3000), 'the connection is closed');
    await sleep(300);
    assert.deepEqual(
      l.refusals.map((r) => [r.reason, r.code, r.tlsReason, r.remoteAddress]),
      [['handshake-failed', 'ERR_CERT_REQUIRED', 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', ATTACKER]],
    );
    assert.equal(l.stage.openConnections, 0);
  });

  it('a certificate from another CA is one handshake-failed refusal naming the verification error', async (t) => {
    const l = await listener(t);
    const s = track(tlsConnect({ host: '127.0.0.1', port: l.port, ca: pki.ca.certPem, cert: pki.foreign.certPem, key: pki.foreign.keyPem, localAddress: ATTACKER }));
    assert.ok(await closesWithin(s, 3000), 'the connection is closed');
    await sleep(300);
    assert.deepEqual(l.refusals.map((r) => [r.reason, r.code, r.tlsReason]), [['handshake-failed', 'ERR_TLS_HANDSHAKE_FAILED', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']]);
  });

  it('plain HTTP on the TLS port is one handshake-failed refusal', async (t) => {
    const l = await listener(t);
    const s = await tcp(l.port);
    s.write(REQUEST);
    assert.ok(await closesWithin(s, 3000), 'the connection is closed');
    await sleep(100);
    assert.deepEqual(l.refusals.map((r) => r.reason), ['handshake-failed']);
  });

  it('admit() refusing at the handshake (a revoked certificate) is one refused-at-handshake with the facts', async (t) => {
    const l = await listener(t, { admit: (f) => (f.serial === pki.web.serial ? new GatehouseError('ERR_CERT_REVOKED') : undefined) });
    const s = track(tlsConnect({ host: '127.0.0.1', port: l.port, ca: pki.ca.certPem, cert: pki.web.certPem, key: pki.web.keyPem }));
    s.on('secureConnect', () => s.write(REQUEST));
    assert.ok(await closesWithin(s, 3000), 'the connection is closed');
    await sleep(100);
    assert.deepEqual(l.refusals.map((r) => [r.reason, r.code, r.facts?.serial]), [['refused-at-handshake', 'ERR_CERT_REVOKED', pki.web.serial]]);
    assert.equal((await get(l.port, { cert: pki.shortLived })).status, 200, 'another certificate is admitted');
  });

  it('a malformed request is answered with a coded 400 and closed, once, even if the client never closes', async (t) => {
    const l = await listener(t);
    const c = await tlsClient(l.port, { cert: pki.web });
    c.socket.allowHalfOpen = true; // a client that never closes its side
    c.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\nmore garbage\r\n\r\n');
    await c.waitFor(/ERR_BAD_REQUEST/);
    assert.match(c.received(), /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(c.received(), /connection: close/);
    const body = JSON.parse(c.received().split('\r\n\r\n')[1]!) as { error: { code: string }; requestId: string };
    await sleep(100);
    assert.equal(l.stage.openConnections, 1, 'held through the grace');
    l.clock.advance(CLOSE_GRACE_MS);
    await settle();
    assert.equal(l.stage.openConnections, 0, 'destroyed after the grace');
    assert.deepEqual(l.refusals.map((r) => [r.reason, r.code, r.requestId]), [['malformed-request', 'ERR_BAD_REQUEST', body.requestId]]);
  });

  it('oversized headers are answered with a coded 431', async (t) => {
    const l = await listener(t);
    const c = await tlsClient(l.port, { cert: pki.web });
    c.socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    await c.waitFor(/ERR_HEADERS_TOO_LARGE/);
    assert.match(c.received(), /^HTTP\/1\.1 431 /);
    assert.deepEqual(l.refusals.map((r) => r.reason), ['headers-too-large']);
  });
});

describe('connection facts and certificate expiry', () => {
  it('facts are read once at the handshake: serial, thumbprint, SPIFFE ID, notAfter', async (t) => {
    const l = await listener(t);
    const r = await get(l.port, { cert: pki.web, path: '/facts' });
    const f = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(f.remoteAddress, LEGIT);
    assert.equal(f.serial, pki.web.serial);
    assert.equal(f.thumbprint, certThumbprint(pki.web.certPem));
    assert.equal(f.spiffeId, 'spiffe://example.org/ns/frontend/sa/web');
    assert.equal(f.notAfter, pki.web.notAfter.getTime());
  });

  it('a kept-alive connection is destroyed when its certificate expires, by the clock', async (t) => {
    const l = await listener(t, { limits: { idleTimeout: 3600_000 } });
    const c = await tlsClient(l.port, { cert: pki.shortLived });
    c.socket.write(REQUEST);
    await c.waitFor(/\{"ok":true\}/);
    const left = pki.shortLived.notAfter.getTime() - l.clock.now();
    assert.ok(left > 0 && left <= 5 * 60_000, `${left} ms left`);
    l.clock.advance(left - 1);
    assert.equal(await closesWithin(c.socket, 100), false, 'valid one millisecond more');
    l.clock.advance(1);
    assert.ok(await closesWithin(c.socket, 2000), 'closed at notAfter');
    assert.deepEqual(l.expired.map((f) => f.serial), [pki.shortLived.serial]);
    assert.deepEqual(l.refusals, [], 'an expiry ends an identity; it refuses nothing');
  });

  it('a certificate expired by the clock at the handshake is refused there', async (t) => {
    const l = await listener(t);
    l.clock.advance(pki.shortLived.notAfter.getTime() - l.clock.now());
    const s = track(tlsConnect({ host: '127.0.0.1', port: l.port, ca: pki.ca.certPem, cert: pki.shortLived.certPem, key: pki.shortLived.keyPem }));
    assert.ok(await closesWithin(s, 3000), 'the connection is closed');
    await sleep(100);
    assert.deepEqual(l.refusals.map((r) => [r.reason, r.code]), [['refused-at-handshake', 'ERR_CERT_EXPIRED']]);
  });

  it('closeTagged and closeWhere end the connections carrying an identity, counted once', async (t) => {
    const l = await listener(t);
    const a = await tlsClient(l.port, { cert: pki.web });
    a.socket.write('GET /facts HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await a.waitFor(/"serial"/);
    const b = await tlsClient(l.port, { cert: pki.web }); // no request yet: no label, but the facts say who
    const other = await tlsClient(l.port, { cert: pki.shortLived });
    assert.equal(l.stage.openConnections, 3);
    assert.equal(l.stage.closeTagged(`cert:${pki.web.serial}`), 1);
    assert.equal(l.stage.closeWhere((f) => f.serial === pki.web.serial), 1, 'the tagged one is not counted twice');
    assert.ok(await closesWithin(a.socket, 2000), 'the connection is closed');
    assert.ok(await closesWithin(b.socket, 2000), 'the connection is closed');
    assert.equal(await closesWithin(other.socket, 100), false);
    assert.equal(l.stage.closeTagged(`cert:${pki.web.serial}`), 0);
    l.stage.close();
    assert.ok(await closesWithin(other.socket, 2000), 'close() ends everything');
    await settle();
    assert.equal(l.stage.openConnections, 0);
    assert.deepEqual(l.refusals, []);
  });
});

describe('helpers', () => {
  it('the SPIFFE ID is the one URI SAN; quoted or repeated URIs give none', () => {
    assert.deepEqual(uriSans('IP Address:127.0.0.1, DNS:localhost, URI:spiffe://td/ns/a/sa/b'), ['spiffe://td/ns/a/sa/b']);
    assert.deepEqual(uriSans('URI:spiffe://td/a, URI:spiffe://td/b'), ['spiffe://td/a', 'spiffe://td/b']);
    assert.deepEqual(uriSans('URI:"spiffe://td/a, URI:spiffe://td/b", DNS:x'), ['"spiffe://td/a, URI:spiffe://td/b"']);
    assert.deepEqual(uriSans(undefined), []);
    const cert = new X509Certificate(pki.server.certPem);
    assert.deepEqual(uriSans(cert.subjectAltName), ['spiffe://example.org/ns/gatehouse/sa/gateway']);
  });

  it('addresses count per IPv4 address, per IPv6 /64', () => {
    assert.equal(addressKey('10.1.2.3'), '10.1.2.3');
    assert.equal(addressKey('2001:db8:0:1::5'), addressKey('2001:0db8:0000:0001:ffff::9'));
    assert.notEqual(addressKey('2001:db8:0:1::5'), addressKey('2001:db8:0:2::5'));
  });

  it('the deadline queue fires in order on one timer, re-queues deadlines that moved later, and compacts', () => {
    const clock = new ManualClock(0);
    type Item = { name: string; at: number | undefined; queuedAt: number | undefined };
    const fired: string[] = [];
    const q = new DeadlineQueue<Item>(clock, (i) => i.at, (i, now) => {
      fired.push(`${i.name}@${now}`);
      i.at = undefined;
    });
    const a: Item = { name: 'a', at: 300, queuedAt: undefined };
    const b: Item = { name: 'b', at: 100, queuedAt: undefined };
    const c: Item = { name: 'c', at: 200, queuedAt: undefined };
    for (const i of [a, b, c]) q.update(i);
    b.at = 250; // moved later: no call needed
    c.at = 50; // moved earlier
    q.update(c);
    clock.advance(1000);
    assert.deepEqual(fired, ['c@50', 'b@250', 'a@300']);
    const many = Array.from({ length: 5000 }, (_, k): Item => ({ name: String(k), at: 10_000 + k, queuedAt: undefined }));
    for (const i of many) q.update(i);
    for (const i of many.slice(0, 4990)) q.delete(i);
    assert.equal(q.size, 10);
    clock.advance(20_000);
    assert.equal(fired.length, 13);
  });
});
