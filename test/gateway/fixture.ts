// A gateway with both listeners on real sockets in front of a hostile upstream: one that tries
// to set the gateway's own cookies (on plain answers and on the 101 of a WebSocket) and echoes
// what it was sent, so tests see exactly what crossed the gateway. The clock is a ManualClock
// (certificate expiry without sleeping); people's sessions are written as authenticate writes them.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type ClientOptions } from 'ws';
import { initCa, issueCertificate, type CertificateAuthority, type IssuedCertificate } from '../../src/pki/index.js';
import { ManualClock } from '../../src/lib/clock.js';
import { parseConfig } from '../../src/config/index.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { openBus, type Bus } from '../../src/bus/index.js';
import { buildApp, type GatehouseApp } from '../../src/app.js';
import { text } from '../../src/store/index.js';
import type { AuditEvent } from '../../src/contracts/audit.js';
import { PAYMENTS_WITH_PEOPLE, createSession, type TestSession } from '../revocation/fixture.js';

export const TD = 'example.org';
export const APP_HOST = 'app.example.org';
export const DROP_HOST = 'drop.example.org';
export const AAL3_HOST = 'aal3.example.org';
/** A route whose upstream ignores case and reads every refused-by-default path form literally. */
export const LENIENT_HOST = 'lenient.payments';
export const GATEWAY_COOKIE_LINES = ['__Host-gatehouse=stolen-session; Path=/; Secure; HttpOnly; SameSite=Lax', '__Host-gatehouse-state=evil; Path=/; Secure', ' __HOST-GATEHOUSE-LOGIN=evil; Path=/'];
export const APP_COOKIE_LINE = 'app=1; Path=/';

export interface HostileUpstream {
  url: string;
  /** Headers of the last plain request and of the last WebSocket upgrade, as the upstream read them. */
  last: { http?: http.IncomingHttpHeaders; ws?: http.IncomingHttpHeaders };
  close(): Promise<void>;
}

/** Echoes request headers, tries to set gateway cookies, serves an echoing WebSocket on /ws. */
export async function startHostileUpstream(): Promise<HostileUpstream> {
  const last: HostileUpstream['last'] = {};
  const server = http.createServer((req, res) => {
    last.http = req.headers;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': [...GATEWAY_COOKIE_LINES, APP_COOKIE_LINE], 'x-gatehouse-user': 'forged' });
      res.end(JSON.stringify({ headers: req.headers, url: req.url }));
    });
  });
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('headers', (headers) => {
    for (const line of [...GATEWAY_COOKIE_LINES, APP_COOKIE_LINE]) headers.push(`Set-Cookie: ${line}`);
  });
  wss.on('connection', (ws, req) => {
    last.ws = req.headers;
    ws.on('message', (m: Buffer) => ws.send(`echo:${m.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    last,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface GatewayFixture {
  dir: string;
  ca: CertificateAuthority;
  web: IssuedCertificate;
  upstream: HostileUpstream;
  clock: ManualClock;
  store: EmbeddedStore;
  bus: Bus;
  app: GatehouseApp;
  servicePort: number;
  humanPort: number;
  adminPort: number;
  session(userId?: string, roles?: Record<string, string[]>, host?: string, acr?: string): Promise<TestSession>;
  /** Issues a certificate for frontend/web valid for ttlMs from now (real time: the handshake checks it). */
  shortLived(ttlMs: number): Promise<IssuedCertificate>;
  events(): Promise<AuditEvent[]>;
  close(): Promise<void>;
}

/** `login` replaces the login section (rate limits); `extra` is appended at the top level. */
export async function startGatewayFixture(o: { login?: string; extra?: string } = {}): Promise<GatewayFixture> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gh-gateway-'));
  await mkdir(path.join(dir, 'policies'));
  await writeFile(path.join(dir, 'policies', 'payments.yaml'), PAYMENTS_WITH_PEOPLE);
  const ca = await initCa({ dir: path.join(dir, 'certs'), trustDomain: TD });
  const web = await issueCertificate(ca, { namespace: 'frontend', service: 'web' });
  const upstream = await startHostileUpstream();
  const clock = new ManualClock(Date.now());
  const store = await openEmbeddedStore({ kind: 'embedded', path: path.join(dir, 'data'), clock });
  const bus = await openBus({ kind: 'memory' });
  const configText = [
    `trustDomain: ${TD}`,
    'replicaId: gw-test',
    'store: { kind: embedded, path: ./data }',
    'pki: { dir: ./certs }',
    'policies: { dir: ./policies }',
    'listeners:',
    '  service: { address: 127.0.0.1, port: 0 }',
    '  human: { address: 127.0.0.1, port: 0 }',
    '  admin: { address: 127.0.0.1, port: 0 }',
    `webauthn: { rpId: ${TD}, origins: ["https://${APP_HOST}", "https://${DROP_HOST}"] }`,
    o.login ?? 'login: { rateLimit: { max: 10000, window: 1m } }',
    o.extra ?? '',
    'routes:',
    `  - { host: api.payments, namespace: payments, service: api, upstream: "${upstream.url}" }`,
    `  - { host: drop.payments, namespace: payments, service: api, upstream: "${upstream.url}", headersWithUnderscores: drop }`,
    `  - { host: ${APP_HOST}, namespace: payments, service: api, upstream: "${upstream.url}" }`,
    `  - { host: ${DROP_HOST}, namespace: payments, service: api, upstream: "${upstream.url}", headersWithUnderscores: drop }`,
    `  - { host: ${AAL3_HOST}, namespace: payments, service: api, upstream: "${upstream.url}", acr: aal3 }`,
    `  - { host: ${LENIENT_HOST}, namespace: payments, service: api, upstream: "${upstream.url}", paths: case-insensitive, allowPathForms: [double-encoding, overlong-utf8, trailing-dot, encoded-space, encoded-semicolon] }`,
    '',
  ].join('\n');
  const configFile = path.join(dir, 'gatehouse.yaml');
  await writeFile(configFile, configText);
  const config = parseConfig(configText, configFile);
  const app = await buildApp(config, { store, bus, clock });
  const at = await app.listen();
  return {
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
    session: (userId = 'alice', roles = { payments: ['ops-admin'] }, host = APP_HOST, acr = 'aal3') => createSession(store, { userId, roles, host, acr }),
    shortLived: (ttlMs) => issueCertificate(ca, { namespace: 'frontend', service: 'web', ttlMs }),
    async events() {
      await app.audit.flush();
      const r = await store.range({ prefix: '/gatehouse/audit/' });
      return r.kvs.map((kv) => (JSON.parse(text(kv.value)) as { event: AuditEvent }).event);
    },
    async close() {
      await app.close();
      await bus.close();
      await store.close();
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
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
  headers?: Record<string, string>;
  /** Service listener: the client certificate (default: frontend/web). */
  cert?: IssuedCertificate;
  /** Human listener: the session cookie. */
  cookie?: string;
  agent?: https.Agent | false;
  /** TLS server name (default: the Host). */
  servername?: string;
}

/** One HTTPS request through either listener. */
export function call(f: GatewayFixture, o: CallOptions): Promise<Answer> {
  const cert = o.listener === 'service' ? (o.cert ?? f.web) : undefined;
  const host = o.host ?? (o.listener === 'service' ? 'api.payments' : APP_HOST);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: o.listener === 'service' ? f.servicePort : f.humanPort,
        method: o.method ?? 'GET',
        path: o.path ?? '/v1/things',
        ca: f.ca.certPem,
        servername: o.servername ?? host,
        ...(cert !== undefined ? { cert: cert.certPem, key: cert.keyPem } : {}),
        headers: { host, accept: 'application/json', ...(o.cookie !== undefined ? { cookie: `__Host-gatehouse=${o.cookie}; theme=dark` } : {}), ...o.headers },
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
    req.end();
  });
}

export interface OpenSocket {
  ws: WebSocket;
  /** The 101's headers as the client got them. */
  upgradeHeaders: http.IncomingHttpHeaders;
  /** Resolves when the socket closes (the gateway ended it, or the test did). */
  closed: Promise<void>;
}

/** A WebSocket through either listener; rejects with the refusal's status when the upgrade is refused. */
export function openWebSocket(f: GatewayFixture, o: Omit<CallOptions, 'path' | 'method' | 'agent'>): Promise<OpenSocket> {
  const cert = o.listener === 'service' ? (o.cert ?? f.web) : undefined;
  const host = o.host ?? (o.listener === 'service' ? 'api.payments' : APP_HOST);
  const port = o.listener === 'service' ? f.servicePort : f.humanPort;
  return new Promise((resolve, reject) => {
    const options: ClientOptions & { servername: string } = {
      ca: f.ca.certPem,
      servername: host,
      ...(cert !== undefined ? { cert: cert.certPem, key: cert.keyPem } : {}),
      headers: { host, ...(o.cookie !== undefined ? { cookie: `__Host-gatehouse=${o.cookie}` } : {}), ...o.headers },
    };
    const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, options);
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

/** Sends a message and waits for the echo (proves the WebSocket still carries traffic). */
export function echo(s: OpenSocket, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    s.ws.once('message', (m: Buffer) => resolve(m.toString()));
    s.ws.once('close', () => reject(new Error('closed')));
    s.ws.send(message);
  });
}

/** Resolves true when `p` settles within ms, false otherwise. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
