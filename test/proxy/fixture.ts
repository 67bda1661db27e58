// A real gateway on real sockets: a CA, service certificates, TLS upstreams, policies in a
// folder, and the service listener built by buildApp exactly as `gatehouse serve` builds it.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import https from 'node:https';
import http from 'node:http';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { initCa, issueCertificate, type CertificateAuthority, type IssuedCertificate } from '../../src/pki/index.js';
import { ManualClock, systemClock } from '../../src/lib/clock.js';
import { parseConfig } from '../../src/config/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { openBus, type Bus } from '../../src/bus/index.js';
import { buildApp, type GatehouseApp } from '../../src/app.js';
import { freePort } from '../helpers/programs.js';

export const TD = 'example.org';

export const PAYMENTS_POLICY = `namespace: payments
mode: enforce
rules:
  - name: web-creates-charges
    from: [{ namespace: frontend, service: web }]
    to: { service: api, methods: [POST], paths: ["/v1/charges", "/v1/charges/*", "/upload"] }
  - name: frontend-reads
    from: [{ namespace: frontend }]
    to: { service: api, methods: [GET], paths: ["/**"] }
  - name: no-admin-from-frontend
    effect: deny
    from: [{ namespace: frontend }]
    to: { service: api, paths: ["/admin/**"] }
`;

export const REPORTS_POLICY = `namespace: reports
mode: dry-run
rules:
  - name: web-reads-reports
    from: [{ namespace: frontend, service: web }]
    to: { service: api, methods: [GET], paths: ["/reports/*"] }
`;

export interface Upstream {
  url: string;
  server: http.Server | https.Server;
  /** Bytes of request bodies received, by request id header. */
  received: Map<string, number>;
  close(): Promise<void>;
}

/** Echoes what it got as JSON; counts streamed body bytes without keeping them. */
function echoHandler(received: Map<string, number>) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      const id = String(req.headers['x-gatehouse-request-id'] ?? '');
      received.set(id, bytes);
      const peer = (req.socket as tls.TLSSocket).getPeerX509Certificate?.();
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bytes, peer: peer?.subjectAltName ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes', connection: 'keep-alive', 'keep-alive': 'timeout=5' });
      res.end(body);
    });
  };
}

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** An https upstream that requires the gateway's client certificate and serves WebSockets on /ws. */
export async function startTlsUpstream(ca: CertificateAuthority, cert: IssuedCertificate): Promise<Upstream> {
  const received = new Map<string, number>();
  const server = https.createServer({ key: cert.keyPem, cert: cert.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, echoHandler(received));
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (ws, req) => {
    ws.send(JSON.stringify({ hello: req.headers['x-gatehouse-subject'] }));
    ws.on('message', (m: Buffer) => ws.send(`echo:${m.toString()}`));
  });
  return upstream('https', server, received, () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
}

export async function startPlainUpstream(): Promise<Upstream> {
  const received = new Map<string, number>();
  const server = http.createServer(echoHandler(received));
  return upstream('http', server, received);
}

/** Listens on a free port; close() runs `before`, then drops open connections and stops the server. */
async function upstream(scheme: 'http' | 'https', server: http.Server | https.Server, received: Map<string, number>, before?: () => void): Promise<Upstream> {
  const port = await listen(server);
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    server,
    received,
    close: async () => {
      before?.();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface Fixture {
  dir: string;
  ca: CertificateAuthority;
  foreignCa: CertificateAuthority;
  certs: Record<'web' | 'cms' | 'batch' | 'api' | 'reportsApi' | 'expired' | 'foreign' | 'revoked', IssuedCertificate>;
  payments: Upstream;
  reports: Upstream;
  deadPort: number;
  configText: string;
  configFile: string;
}

export async function makeFixture(): Promise<Fixture> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gh-proxy-'));
  const certsDir = path.join(dir, 'certs');
  const policiesDir = path.join(dir, 'policies');
  await mkdir(policiesDir);
  await writeFile(path.join(policiesDir, 'payments.yaml'), PAYMENTS_POLICY);
  await writeFile(path.join(policiesDir, 'reports.yaml'), REPORTS_POLICY);
  // The CA dates from 30 days ago so it can issue a certificate that has already expired.
  const ca = await initCa({ dir: certsDir, trustDomain: TD, clock: new ManualClock(Date.now() - 30 * 24 * 3600_000) });
  const foreignCa = await initCa({ dir: path.join(dir, 'foreign'), trustDomain: TD });
  const past = new ManualClock(Date.now() - 10 * 24 * 3600_000);
  const [web, cms, batch, api, reportsApi, expired, foreign, revoked] = await Promise.all([
    issueCertificate(ca, { namespace: 'frontend', service: 'web' }),
    issueCertificate(ca, { namespace: 'frontend', service: 'cms' }),
    issueCertificate(ca, { namespace: 'jobs', service: 'batch' }),
    issueCertificate(ca, { namespace: 'payments', service: 'api' }),
    issueCertificate(ca, { namespace: 'reports', service: 'api' }),
    issueCertificate(ca, { namespace: 'frontend', service: 'web', ttlMs: 3600_000, clock: past }),
    issueCertificate(foreignCa, { namespace: 'frontend', service: 'web' }),
    issueCertificate(ca, { namespace: 'frontend', service: 'web' }),
  ]);
  const payments = await startTlsUpstream(ca, api);
  const reports = await startPlainUpstream();
  const deadPort = await freePort();
  const configText = [
    `trustDomain: ${TD}`,
    'replicaId: test-a',
    'store: { kind: embedded, path: ./data }',
    'bus: { kind: memory }',
    'pki: { dir: ./certs }',
    'policies: { dir: ./policies }',
    'listeners:',
    `  service: { address: 127.0.0.1, port: 0 }`,
    `  admin: { address: 127.0.0.1, port: 0 }`,
    'routes:',
    `  - { host: api.payments, namespace: payments, service: api, upstream: "${payments.url}" }`,
    `  - { host: api.reports, namespace: reports, service: api, upstream: "${reports.url}" }`,
    `  - { host: dead.payments, namespace: payments, service: api, upstream: "https://127.0.0.1:${deadPort}" }`,
    `  - { host: plain.payments, namespace: payments, service: api, upstream: "${reports.url}" }`,
    // an https upstream whose certificate names payments/api, routed as reports/api: must be refused
    `  - { host: wrongid.reports, namespace: reports, service: api, upstream: "${payments.url}" }`,
    '',
  ].join('\n');
  const configFile = path.join(dir, 'gatehouse.yaml');
  await writeFile(configFile, configText);
  return {
    dir,
    ca,
    foreignCa,
    certs: { web: web, cms: cms, batch: batch, api: api, reportsApi: reportsApi, expired: expired, foreign: foreign, revoked: revoked },
    payments,
    reports,
    deadPort,
    configText,
    configFile,
  };
}

export async function disposeFixture(f: Fixture): Promise<void> {
  await f.payments.close();
  await f.reports.close();
  await rm(f.dir, { recursive: true, force: true });
}

export interface RunningGateway {
  app: GatehouseApp;
  store: Store;
  bus: Bus;
  port: number;
  adminPort: number;
  close(): Promise<void>;
}

/**
 * Builds and starts the gateway in this process on the fixture's config: on its embedded
 * store, or as replica `replicaId` of a shared etcd cluster.
 */
export async function startGateway(f: Fixture, shared?: { endpoints: string[]; replicaId: string }): Promise<RunningGateway> {
  const env = shared ? { GATEHOUSE_STORE_KIND: 'etcd', GATEHOUSE_STORE_ENDPOINTS: shared.endpoints.join(',') } : {};
  const text = shared ? f.configText.replace('replicaId: test-a', `replicaId: ${shared.replicaId}`) : f.configText;
  const config = parseConfig(text, f.configFile, env);
  const store = await openStore(config.store.kind === 'embedded' ? { kind: 'embedded', path: config.store.path } : config.store);
  const bus = await openBus({ kind: 'memory' });
  const app = await buildApp(config, { store, bus, clock: systemClock });
  const addrs = await app.listen();
  return {
    app,
    store,
    bus,
    port: addrs.service!.port,
    adminPort: addrs.admin.port,
    close: async () => {
      await app.close();
      await bus.close();
      await store.close();
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface CallOptions {
  cert?: IssuedCertificate | undefined;
  host?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  agent?: https.Agent | false;
  /** TLS server name to verify (default: the Host header). */
  servername?: string;
}

/** One HTTPS request to the gateway presenting `cert` (none when undefined). */
export function call(port: number, ca: CertificateAuthority, o: CallOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: o.method ?? 'GET',
        path: o.path ?? '/',
        ca: ca.certPem,
        ...(o.cert ? { cert: o.cert.certPem, key: o.cert.keyPem } : {}),
        headers: { host: o.host ?? 'api.payments', ...o.headers },
        agent: o.agent ?? false,
        ...(o.servername !== undefined ? { servername: o.servername } : {}),
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

/** Sends bytes exactly as given (for request targets Node's client would refuse to send). */
export function rawCall(port: number, ca: CertificateAuthority, cert: IssuedCertificate, requestHead: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem, cert: cert.certPem, key: cert.keyPem }, () => {
      socket.write(Buffer.from(requestHead, 'latin1'));
    });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    });
  });
}
