// The attacker's bench: a real gateway (both listeners, built by buildApp as `gatehouse serve`
// builds it) on a ManualClock, in front of one programmable hostile upstream, plus raw-socket
// clients for what Node's own client would never send. Everything a test starts is stopped by
// close(), even when an assertion failed half-way.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import { initCa, issueCertificate, type CertificateAuthority, type IssuedCertificate } from '../../src/pki/index.js';
import { ManualClock } from '../../src/lib/clock.js';
import { parseConfig } from '../../src/config/index.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { openBus, type Bus } from '../../src/bus/index.js';
import { buildApp, type GatehouseApp } from '../../src/app.js';
import { text } from '../../src/store/index.js';
import type { AuditEvent } from '../../src/contracts/audit.js';

export const TD = 'example.org';
/** Human route hosts. */
export const APP = 'app.example.org';
export const OTHER = 'other.example.org';
/** Service route hosts. */
export const API = 'api.payments';
export const LEDGER = 'ledger.payments';
export const SESSION_COOKIE = '__Host-gatehouse';

/**
 * frontend services may GET and POST anything but /admin/**, and only on payments/api (not on
 * payments/ledger); people with ops-admin may do anything on api; viewers may only GET api.
 */
export const POLICY = `namespace: payments
mode: enforce
rules:
  - name: frontend-get-post
    from: [{ namespace: frontend }]
    to: { service: api, methods: [GET, POST], paths: ["/**"] }
  - name: no-admin-from-frontend
    effect: deny
    from: [{ namespace: frontend }]
    to: { service: api, paths: ["/admin/**"] }
  - name: ops-admins
    from: [{ role: ops-admin }]
    to: { service: api, paths: ["/**"] }
  - name: viewers-read
    from: [{ role: viewer }]
    to: { service: api, methods: [GET], paths: ["/**"] }
  - name: viewers-no-admin
    effect: deny
    from: [{ role: viewer }]
    to: { service: api, paths: ["/admin/**"] }
  - name: posters-post-only
    from: [{ role: poster }]
    to: { service: api, methods: [POST], paths: ["/**"] }
`;

/** What the upstream parsed, one entry per request (a smuggled request shows up as one more). */
export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  trailers: NodeJS.Dict<string>;
  upgrade: boolean;
}

export type UpstreamHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;
export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface Upstream {
  url: string;
  /** Every request the upstream's (strict, Node) parser saw. */
  seen: SeenRequest[];
  /** Every byte the upstream received, per TCP connection. */
  raw: string[];
  /** How plain requests are answered (default: echo as JSON). */
  onRequest: UpstreamHandler;
  /** How upgrades are answered (default: an echoing WebSocket whose 101 tries to set the gateway's cookies). */
  onUpgrade: UpgradeHandler;
  reset(): void;
  close(): Promise<void>;
}

export const HOSTILE_COOKIES = ['__Host-gatehouse=planted; Path=/; Secure; HttpOnly', '__Host-gatehouse-state=planted; Path=/; Secure', '__Host-gatehouse-login=planted; Path=/; Secure'];

export const echoJson: UpstreamHandler = (req, res, body) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
};

export async function startUpstream(): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const wss = new WebSocketServer({ noServer: true });
  wss.on('headers', (headers) => {
    for (const line of HOSTILE_COOKIES) headers.push(`Set-Cookie: ${line}`);
  });
  wss.on('connection', (ws) => ws.on('message', (m: Buffer) => ws.send(`echo:${m.toString()}`)));
  const defaultUpgrade: UpgradeHandler = (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  const u: Upstream = {
    url: '',
    seen: [],
    raw: [],
    onRequest: echoJson,
    onUpgrade: defaultUpgrade,
    reset() {
      u.seen.length = 0;
      u.raw.length = 0;
      u.onRequest = echoJson;
      u.onUpgrade = defaultUpgrade;
    },
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      u.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body, trailers: req.trailers, upgrade: false });
      u.onRequest(req, res, body);
    });
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    const i = u.raw.push('') - 1;
    s.on('data', (d: Buffer) => (u.raw[i] += d.toString('latin1')));
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    u.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: '', trailers: {}, upgrade: true });
    u.onUpgrade(req, socket, head);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  u.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  u.close = async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return u;
}

export interface TestSession {
  cookie: string;
  sid: string;
  userId: string;
  hash: string;
  /** The session's store lease (its aliases share it). */
  lease: string;
}

export interface Bench {
  dir: string;
  ca: CertificateAuthority;
  /** spiffe://example.org/ns/frontend/sa/web */
  web: IssuedCertificate;
  upstream: Upstream;
  clock: ManualClock;
  store: EmbeddedStore;
  bus: Bus;
  app: GatehouseApp;
  servicePort: number;
  humanPort: number;
  adminPort: number;
  /**
   * A user and a primary session stored as authenticate stores them (lease: idle timeout plus
   * one writeback interval plus 1 s, as SessionManager grants it), on the gateway's clock.
   */
  session(o?: { userId?: string; roles?: Record<string, string[]>; host?: string; absoluteMs?: number }): Promise<TestSession>;
  events(): Promise<AuditEvent[]>;
  /** Lets store watches, the bus and the pipeline catch up. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export interface BenchOptions {
  /** Extra top-level YAML (sessions, login...). */
  extra?: string;
  /** Replaces the listeners' connections section. */
  connections?: string;
  /** Session idle timeout the config and the stored leases use (ms; default 15 min). */
  idleMs?: number;
  /** Address both proxy listeners bind (default 127.0.0.1). */
  address?: string;
  /** Replaces the login section. */
  login?: string;
}

export async function startBench(o: BenchOptions = {}): Promise<Bench> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gh-attacks-'));
  const closers: (() => Promise<unknown>)[] = [async () => rm(dir, { recursive: true, force: true })];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    await mkdir(path.join(dir, 'policies'));
    await writeFile(path.join(dir, 'policies', 'payments.yaml'), POLICY);
    const ca = await initCa({ dir: path.join(dir, 'certs'), trustDomain: TD });
    const web = await issueCertificate(ca, { namespace: 'frontend', service: 'web' });
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const clock = new ManualClock(Date.now());
    const store = await openEmbeddedStore({ kind: 'embedded', path: path.join(dir, 'data'), clock });
    closers.push(() => store.close());
    const bus = await openBus({ kind: 'memory' });
    closers.push(() => bus.close());
    const idleMs = o.idleMs ?? 900_000;
    const conn = o.connections ?? '';
    const configText = [
      `trustDomain: ${TD}`,
      'replicaId: gw-attacks',
      'store: { kind: embedded, path: ./data }',
      'pki: { dir: ./certs }',
      'policies: { dir: ./policies }',
      'listeners:',
      `  service: { address: "${o.address ?? '127.0.0.1'}", port: 0${conn} }`,
      `  human: { address: "${o.address ?? '127.0.0.1'}", port: 0${conn} }`,
      '  admin: { address: 127.0.0.1, port: 0 }',
      `webauthn: { rpId: ${TD}, origins: ["https://${APP}", "https://${OTHER}"] }`,
      o.login ?? "login: { rateLimit: { max: 10000, window: 1m }, forwardAuth: { trustedProxies: ['127.0.0.1'] } }",
      `sessions: { idleTimeout: ${idleMs}ms }`,
      o.extra ?? '',
      'routes:',
      `  - { host: ${API}, namespace: payments, service: api, upstream: "${upstream.url}" }`,
      `  - { host: ${LEDGER}, namespace: payments, service: ledger, upstream: "${upstream.url}" }`,
      `  - { host: ${APP}, namespace: payments, service: api, upstream: "${upstream.url}" }`,
      `  - { host: ${OTHER}, namespace: payments, service: api, upstream: "${upstream.url}" }`,
      '',
    ].join('\n');
    const configFile = path.join(dir, 'gatehouse.yaml');
    await writeFile(configFile, configText);
    const config = parseConfig(configText, configFile);
    const app = await buildApp(config, { store, bus, clock });
    closers.push(() => app.close());
    const at = await app.listen();
    const writebackMs = Math.min(60_000, Math.floor(idleMs / 4));
    const bench: Bench = {
      dir,
      ca,
      web,
      upstream,
      clock,
      store,
      bus,
      app,
      servicePort: at.service!.port,
      humanPort: at.human!.port,
      adminPort: at.admin.port,
      async session(s = {}) {
        const userId = s.userId ?? 'alice';
        const now = clock.now();
        await store.put(`/gatehouse/users/${userId}`, JSON.stringify({ format: 1, id: userId, roles: s.roles ?? { payments: ['ops-admin'] }, status: 'active', createdAt: now }));
        const cookie = randomBytes(32).toString('base64url');
        const hash = createHash('sha256').update(cookie).digest('hex');
        const sid = randomBytes(16).toString('base64url');
        const lease = await store.grant(Math.ceil((idleMs + writebackMs + 1_000) / 1000));
        const record = {
          format: 1,
          kind: 'primary',
          sid,
          userId,
          roles: s.roles ?? { payments: ['ops-admin'] },
          amr: ['hwk', 'user', 'otp'],
          acr: 'aal3',
          credentialId: 'attack-credential',
          host: s.host ?? APP,
          createdAt: now,
          lastSeen: now,
          lastWebAuthnAt: now,
          expiresAt: now + (s.absoluteMs ?? 12 * 3600_000),
          ip: '127.0.0.1',
          userAgent: 'attacks',
          lease: lease.id,
        };
        await store.put(`/gatehouse/sessions/${hash}`, JSON.stringify(record), { lease: lease.id });
        await store.put(`/gatehouse/user-sessions/${userId}/${hash}`, lease.id, { lease: lease.id });
        await bench.settle();
        return { cookie, sid, userId, hash, lease: lease.id };
      },
      async events() {
        await app.audit.flush();
        const r = await store.range({ prefix: '/gatehouse/audit/' });
        return r.kvs.map((kv) => (JSON.parse(text(kv.value)) as { event: AuditEvent }).event);
      },
      async settle() {
        for (let i = 0; i < 6; i++) {
          await store.settle();
          await new Promise<void>((r) => setImmediate(r));
        }
      },
      close: closeAll,
    };
    return bench;
  } catch (err) {
    await closeAll();
    throw err;
  }
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface CallOptions {
  listener: 'service' | 'human';
  host?: string;
  path?: string;
  method?: string;
  headers?: Record<string, string | string[]>;
  cert?: IssuedCertificate;
  cookie?: string;
  agent?: https.Agent | false;
  servername?: string;
  body?: string;
}

/** One HTTPS request through either listener (Node's client: only well-formed requests). */
export function call(b: Bench, o: CallOptions): Promise<Answer> {
  const cert = o.listener === 'service' ? (o.cert ?? b.web) : undefined;
  const host = o.host ?? (o.listener === 'service' ? API : APP);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: o.listener === 'service' ? b.servicePort : b.humanPort,
        method: o.method ?? 'GET',
        path: o.path ?? '/v1/things',
        ca: b.ca.certPem,
        servername: o.servername ?? host,
        ...(cert !== undefined ? { cert: cert.certPem, key: cert.keyPem } : {}),
        headers: { host, accept: 'application/json', ...(o.cookie !== undefined ? { cookie: `${SESSION_COOKIE}=${o.cookie}` } : {}), ...o.headers },
        agent: o.agent ?? false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

export interface RawOptions {
  listener: 'service' | 'human';
  cert?: IssuedCertificate;
  servername?: string;
  /** Give up waiting for the gateway to close after this long (ms). */
  waitMs?: number;
  localAddress?: string;
}

export interface RawConnection {
  socket: tls.TLSSocket;
  /** Everything received so far. */
  received(): string;
  /** Resolves once the gateway closed the connection (or waitMs passed: then false). */
  closed(ms?: number): Promise<boolean>;
  /** Resolves when `needle` has been received (or ms passed: false). */
  waitFor(needle: string | RegExp, ms?: number): Promise<boolean>;
}

/** A raw TLS connection to a listener (for bytes Node's client would refuse to send). */
export async function rawConnect(b: Bench, o: RawOptions): Promise<RawConnection> {
  const cert = o.listener === 'service' ? (o.cert ?? b.web) : undefined;
  const socket = tls.connect({
    host: '127.0.0.1',
    port: o.listener === 'service' ? b.servicePort : b.humanPort,
    ca: b.ca.certPem,
    servername: o.servername ?? (o.listener === 'service' ? API : APP),
    ...(cert !== undefined ? { cert: cert.certPem, key: cert.keyPem } : {}),
    ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}),
  });
  let got = '';
  let isClosed = false;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of [...waiters]) w();
  };
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => {
    got += d;
    wake();
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    isClosed = true;
    wake();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  const until = (done: () => boolean, ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (done()) return resolve(true);
      const timer = setTimeout(() => {
        waiters.delete(check);
        resolve(done());
      }, ms);
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(true);
      };
      waiters.add(check);
    });
  return {
    socket,
    received: () => got,
    closed: (ms = o.waitMs ?? 3_000) => until(() => isClosed, ms),
    waitFor: (needle, ms = o.waitMs ?? 3_000) => until(() => (typeof needle === 'string' ? got.includes(needle) : needle.test(got)), ms),
  };
}

/** Sends raw bytes on a fresh connection and returns what came back once the gateway closed it (or waitMs passed). */
export async function rawExchange(b: Bench, bytes: string, o: RawOptions): Promise<string> {
  const c = await rawConnect(b, o);
  try {
    c.socket.write(bytes, 'latin1');
    await c.closed();
    return c.received();
  } finally {
    c.socket.destroy();
  }
}

/** Parses the responses in a raw HTTP/1.1 byte stream: status line, headers, and bodies by content-length or chunked. */
export function parseResponses(raw: string): { status: number; head: string; headers: [string, string][]; body: string }[] {
  const out: { status: number; head: string; headers: [string, string][]; body: string }[] = [];
  let rest = raw;
  while (rest.startsWith('HTTP/')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = rest.slice(0, end);
    const lines = head.split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers = lines.slice(1).map((l): [string, string] => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]);
    rest = rest.slice(end + 4);
    let body = '';
    const cl = headers.find(([k]) => k === 'content-length');
    const chunked = headers.some(([k, v]) => k === 'transfer-encoding' && v.toLowerCase().includes('chunked'));
    if (status === 101 || (status >= 100 && status < 200) || status === 204 || status === 304) {
      // no body
    } else if (chunked) {
      for (;;) {
        const lineEnd = rest.indexOf('\r\n');
        if (lineEnd < 0) break;
        const size = parseInt(rest.slice(0, lineEnd), 16);
        rest = rest.slice(lineEnd + 2);
        if (!(size > 0)) {
          const trailerEnd = rest.indexOf('\r\n');
          rest = trailerEnd < 0 ? '' : rest.slice(trailerEnd + 2);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    } else if (cl !== undefined) {
      body = rest.slice(0, Number(cl[1]));
      rest = rest.slice(Number(cl[1]));
    } else {
      body = rest;
      rest = '';
    }
    out.push({ status, head, headers, body });
  }
  return out;
}

export function codeOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

export function requestIdOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { requestId?: string }).requestId;
  } catch {
    return undefined;
  }
}

export interface OpenSocket {
  ws: WebSocket;
  upgradeHeaders: http.IncomingHttpHeaders;
  closed: Promise<void>;
}

/** A WebSocket through either listener; rejects with the refusal's status when refused. */
export function openWebSocket(b: Bench, o: { listener: 'service' | 'human'; host?: string; cookie?: string; cert?: IssuedCertificate; path?: string; headers?: Record<string, string> }): Promise<OpenSocket> {
  const cert = o.listener === 'service' ? (o.cert ?? b.web) : undefined;
  const host = o.host ?? (o.listener === 'service' ? API : APP);
  const port = o.listener === 'service' ? b.servicePort : b.humanPort;
  return new Promise((resolve, reject) => {
    const options: ClientOptions & { servername: string } = {
      ca: b.ca.certPem,
      servername: host,
      ...(cert !== undefined ? { cert: cert.certPem, key: cert.keyPem } : {}),
      headers: { host, ...(o.cookie !== undefined ? { cookie: `${SESSION_COOKIE}=${o.cookie}` } : {}), ...o.headers },
    };
    const ws = new WebSocket(`wss://127.0.0.1:${port}${o.path ?? '/ws'}`, options);
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    let upgradeHeaders: http.IncomingHttpHeaders = {};
    ws.once('upgrade', (res) => (upgradeHeaders = res.headers));
    ws.once('open', () => resolve({ ws, upgradeHeaders, closed }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode ?? 0} ${body}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
}

export function echo(s: OpenSocket, message: string, ms = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no echo')), ms);
    s.ws.once('message', (m: Buffer) => {
      clearTimeout(timer);
      resolve(m.toString());
    });
    s.ws.once('close', () => {
      clearTimeout(timer);
      reject(new Error('closed'));
    });
    s.ws.send(message);
  });
}

/** True when p settles within ms. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A request head for the raw helpers. */
export function head(method: string, target: string, headers: [string, string][], httpVersion = 'HTTP/1.1'): string {
  return `${method} ${target} ${httpVersion}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

/** Reads /metrics from the admin listener. */
export function metrics(b: Bench): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: b.adminPort, path: '/metrics' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}
