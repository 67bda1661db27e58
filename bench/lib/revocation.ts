// The multi-replica revocation measurement shared by `npm run bench:revocation` and
// test/revocation/processes.test.ts: a 3-member etcd cluster, nats-server with JetStream, TWO
// gateway processes (`node bin/gatehouse.js serve`), keep-alive traffic with several service
// certificates through both. Each iteration revokes one dedicated SPIFFE ID through replica A's
// admin API (POST /.gatehouse/admin/api/revoke, a security-admin session) and polls replica B
// with that identity's certificate until B refuses.
//
// Latency = from just before the revoke request is written to A, to the completion of the first
// request of that identity on B that is not a 200 (a 403, a closed connection, a refused
// handshake). After the first refusal B is polled for a further `afterMs` on new connections:
// any 200 there is a violation ("allowed after refusal").
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { initCa, issueCertificate, type CertificateAuthority, type IssuedCertificate } from '../../src/pki/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { startEtcdCluster, isSkip, type EtcdCluster } from '../../test/helpers/etcd.js';
import { startNats, type NatsServer } from '../../test/helpers/nats.js';
import { freePort, waitFor } from '../../test/helpers/programs.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HUMAN_HOST = 'app.example.org';
const REVOKE_PATH = '/.gatehouse/admin/api/revoke';

export interface BenchOptions {
  /** Revocations with the bus up. */
  withBus: number;
  /** Revocations with NATS stopped (store watch only). */
  withoutBus: number;
  /** Revocations while NATS restarts (restart triggered at the first of them). */
  duringRestart: number;
  /** How long B is polled after its first refusal. */
  afterMs: number;
  /** Background keep-alive clients per replica. */
  trafficClients: number;
  log?: (line: string) => void;
}

export interface PhaseFigure {
  phase: 'bus' | 'store-only' | 'nats-restart';
  n: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** From the record becoming visible in etcd (this process's watch) to B's first refusal: propagation alone. */
  commitToRefusalP50Ms: number;
  commitToRefusalP99Ms: number;
  /** Requests B allowed after the first refusal was observed (must be 0). */
  allowedAfterRefusal: number;
  /** Iterations in which B never refused within the timeout. */
  notRefused: number;
}

export interface BenchResult {
  phases: PhaseFigure[];
  /** Revoked identities that A or B still served at the end (must be 0). */
  lost: number;
  revoked: number;
  backgroundRequests: { ok: number; failed: number };
  setupMs: number;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Gateway {
  name: string;
  servicePort: number;
  humanPort: number | undefined;
  adminPort: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startGatewayProcess(dir: string, o: { name: string; endpoints: string[]; nats: string; upstream: string; human: boolean }): Promise<Gateway> {
  const servicePort = await freePort();
  const humanPort = o.human ? await freePort() : undefined;
  const adminPort = await freePort();
  const config = [
    'trustDomain: example.org',
    `replicaId: ${o.name}`,
    `store: { kind: etcd, endpoints: [${o.endpoints.map((e) => `"${e}"`).join(', ')}] }`,
    `bus: { kind: nats, servers: ["${o.nats}"] }`,
    `pki: { dir: "${path.join(dir, 'certs')}" }`,
    `policies: { dir: "${path.join(dir, 'policies')}" }`,
    'listeners:',
    `  service: { address: 127.0.0.1, port: ${servicePort} }`,
    ...(humanPort !== undefined ? [`  human: { address: 127.0.0.1, port: ${humanPort} }`] : []),
    `  admin: { address: 127.0.0.1, port: ${adminPort} }`,
    `webauthn: { rpId: example.org, origins: ["https://${HUMAN_HOST}"] }`,
    'routes:',
    `  - { host: api.payments, namespace: payments, service: api, upstream: "${o.upstream}" }`,
    `  - { host: ${HUMAN_HOST}, namespace: payments, service: api, upstream: "${o.upstream}" }`,
    '',
  ].join('\n');
  const file = path.join(dir, `${o.name}.yaml`);
  await writeFile(file, config);
  const log = createWriteStream(path.join(dir, `${o.name}.log`));
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/gatehouse.js'), 'serve', '--config', file, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  process.once('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  try {
    await waitFor(`gateway ${o.name} ready (log: ${path.join(dir, `${o.name}.log`)})`, async () => {
      if (child.exitCode !== null) throw new Error(`gateway ${o.name} exited with ${child.exitCode}; see ${path.join(dir, `${o.name}.log`)}`);
      const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
      return res?.ok === true ? true : undefined;
    }, 60_000, 100);
  } catch (err) {
    await stop();
    throw err;
  }
  return { name: o.name, servicePort, humanPort, adminPort, child, stop };
}

/** GET through a gateway's service listener: 200, or the refusal (status, or 0 for a failed connection). */
function probe(port: number, ca: CertificateAuthority, cert: IssuedCertificate, agent: https.Agent | false): Promise<number> {
  return new Promise((resolve) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: '/v1/charges/1', ca: ca.certPem, cert: cert.certPem, key: cert.keyPem, headers: { host: 'api.payments' }, agent, servername: 'localhost' },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.setTimeout(5_000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

async function writeAdminSession(store: Store): Promise<string> {
  const now = Date.now();
  const roles = { gatehouse: ['security-admin'] };
  await store.put('/gatehouse/users/bench-admin', JSON.stringify({ format: 1, id: 'bench-admin', roles, status: 'active', createdAt: now }));
  const cookie = randomBytes(32).toString('base64url');
  const hash = createHash('sha256').update(cookie).digest('hex');
  const lease = await store.grant(3600);
  const record = { format: 1, kind: 'primary', sid: randomBytes(16).toString('base64url'), userId: 'bench-admin', roles, amr: ['hwk', 'user', 'otp'], acr: 'aal3', credentialId: 'bench', host: HUMAN_HOST, createdAt: now, lastSeen: now, lastWebAuthnAt: now, expiresAt: now + 3600_000, ip: '127.0.0.1', userAgent: 'bench', lease: lease.id };
  await store.put(`/gatehouse/sessions/${hash}`, JSON.stringify(record), { lease: lease.id });
  await store.put(`/gatehouse/user-sessions/bench-admin/${hash}`, lease.id, { lease: lease.id });
  return cookie;
}

/** Revokes a service through A's admin API; resolves when A answers. */
function revokeThroughA(port: number, ca: CertificateAuthority, cookie: string, spiffeId: string, agent: https.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const body = JSON.stringify({ kind: 'service', id: spiffeId, reason: 'bench' });
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: REVOKE_PATH,
        ca: ca.certPem,
        servername: HUMAN_HOST,
        agent,
        headers: { host: HUMAN_HOST, origin: `https://${HUMAN_HOST}`, cookie: `__Host-gatehouse=${cookie}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.end(body);
  });
}

export async function runRevocationBench(o: BenchOptions): Promise<BenchResult | { skip: string }> {
  const log = o.log ?? (() => undefined);
  const t0 = performance.now();
  const etcd = await startEtcdCluster({ members: 3 });
  if (isSkip(etcd)) return { skip: etcd.skip };
  const cluster: EtcdCluster = etcd;
  const natsStarted = await startNats();
  if ('skip' in natsStarted) {
    await cluster.stop();
    return { skip: natsStarted.skip };
  }
  const nats: NatsServer = natsStarted;
  const dir = await mkdtemp(path.join(tmpdir(), 'gh-bench-revocation-'));
  const upstream = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const gateways: Gateway[] = [];
  let store: Store | undefined;
  let trafficOn = true;
  const traffic: Promise<void>[] = [];
  const bg = { ok: 0, failed: 0 };
  try {
    await mkdir(path.join(dir, 'policies'));
    await writeFile(path.join(dir, 'policies', 'payments.yaml'), 'namespace: payments\nmode: enforce\nrules:\n  - name: frontend-reads\n    from: [{ namespace: frontend }]\n    to: { service: api, methods: [GET], paths: ["/**"] }\n');
    const ca = await initCa({ dir: path.join(dir, 'certs'), trustDomain: 'example.org' });
    const WARMUP = 3;
    const total = WARMUP + o.withBus + o.withoutBus + o.duringRestart;
    log(`issuing ${total} + ${o.trafficClients * 2} certificates`);
    const issue = (name: string): Promise<IssuedCertificate> => issueCertificate(ca, { namespace: 'frontend', service: name });
    const [targets, trafficCerts] = await Promise.all([
      Promise.all(Array.from({ length: total }, (_, i) => issue(`revoked-${i}`))),
      Promise.all(Array.from({ length: o.trafficClients * 2 }, (_, i) => issue(`traffic-${i}`))),
    ]);
    store = await openStore({ kind: 'etcd', endpoints: cluster.endpoints });
    const cookie = await writeAdminSession(store);
    log('starting two gateway processes');
    // one after the other: the first start writes the policies and the first signing key
    gateways.push(await startGatewayProcess(dir, { name: 'bench-a', endpoints: cluster.endpoints, nats: nats.url, upstream: upstreamUrl, human: true }));
    gateways.push(await startGatewayProcess(dir, { name: 'bench-b', endpoints: cluster.endpoints, nats: nats.url, upstream: upstreamUrl, human: false }));
    const [a, b] = gateways as [Gateway, Gateway];
    const setupMs = performance.now() - t0;

    // background traffic: keep-alive clients with their own certificates through both replicas
    for (let i = 0; i < o.trafficClients * 2; i++) {
      const gw = i % 2 === 0 ? a : b;
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      const cert = trafficCerts[i]!;
      traffic.push(
        (async () => {
          while (trafficOn) {
            if ((await probe(gw.servicePort, ca, cert, agent)) === 200) bg.ok++;
            else bg.failed++;
            await sleep(2);
          }
          agent.destroy();
        })(),
      );
    }

    // enough sockets that a revoke still waiting on a down bus never queues the next one
    const adminAgent = new https.Agent({ keepAlive: true, maxSockets: 256 });
    // when each revocation record became visible in etcd (seen by this process's watch): splits the latency
    const seenInStore = new Map<string, number>();
    const watch = await store.watch({ prefix: '/gatehouse/revoked/service/' }, (e) => {
      if (e.type === 'put') seenInStore.set(decodeURIComponent(Buffer.from(e.kv.key).toString('utf8').slice('/gatehouse/revoked/service/'.length)), performance.now());
    });
    let next = 0;
    const phases: PhaseFigure[] = [];
    const pending: Promise<unknown>[] = [];

    const iteration = async (): Promise<{ ms: number | undefined; allowedAfter: number; storeMs: number | undefined }> => {
      const cert = targets[next++]!;
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const before = await probe(b.servicePort, ca, cert, agent);
        if (before !== 200) throw new Error(`replica B refused ${cert.spiffeId} before its revocation (${before})`);
        const start = performance.now();
        const call = revokeThroughA(a.humanPort!, ca, cookie, cert.spiffeId, adminAgent).then((r) => {
          if (r.status !== 200) throw new Error(`revoke through A answered ${r.status}: ${r.body.slice(0, 300)}`);
        });
        pending.push(call);
        let refusedAt: number | undefined;
        while (refusedAt === undefined && performance.now() - start < 10_000) {
          const s = await probe(b.servicePort, ca, cert, agent);
          if (s !== 200) refusedAt = performance.now();
        }
        let allowedAfter = 0;
        const until = performance.now() + o.afterMs;
        while (refusedAt !== undefined && performance.now() < until) {
          if ((await probe(b.servicePort, ca, cert, agent)) === 200) allowedAfter++;
        }
        const stored = seenInStore.get(cert.spiffeId);
        return { ms: refusedAt === undefined ? undefined : refusedAt - start, allowedAfter, storeMs: stored === undefined ? undefined : stored - start };
      } finally {
        agent.destroy();
      }
    };

    const runPhase = async (phase: PhaseFigure['phase'], n: number, during?: () => Promise<void>): Promise<void> => {
      const ms: number[] = [];
      const afterCommit: number[] = [];
      let allowedAfterRefusal = 0;
      let notRefused = 0;
      const side = during?.();
      for (let i = 0; i < n; i++) {
        const r = await iteration();
        if (r.ms === undefined) notRefused++;
        else ms.push(r.ms);
        if (r.ms !== undefined && r.storeMs !== undefined) afterCommit.push(Math.max(0, r.ms - r.storeMs));
        if (r.ms === undefined || r.ms > 50) log(`${phase} #${i}: ${r.ms === undefined ? 'not refused' : `${r1(r.ms)} ms`} (record visible in etcd after ${r.storeMs === undefined ? '?' : r1(r.storeMs)} ms)`);
        allowedAfterRefusal += r.allowedAfter;
      }
      await side;
      const fig: PhaseFigure = {
        phase,
        n,
        p50Ms: r1(pct(ms, 50)),
        p99Ms: r1(pct(ms, 99)),
        maxMs: r1(Math.max(0, ...ms)),
        commitToRefusalP50Ms: r1(pct(afterCommit, 50)),
        commitToRefusalP99Ms: r1(pct(afterCommit, 99)),
        allowedAfterRefusal,
        notRefused,
      };
      phases.push(fig);
      log(JSON.stringify(fig));
    };

    // warm-up (not measured): the first admin call, the first revocations on both replicas
    for (let i = 0; i < WARMUP; i++) await iteration();
    log(`phase bus: ${o.withBus} revocations`);
    await runPhase('bus', o.withBus);
    log(`phase store-only (NATS stopped): ${o.withoutBus} revocations`);
    await nats.kill('SIGKILL');
    await runPhase('store-only', o.withoutBus);
    await nats.restart();
    // let both replicas' bus clients reconnect before the restart phase
    await sleep(1_000);
    log(`phase nats-restart: ${o.duringRestart} revocations while NATS restarts`);
    await runPhase('nats-restart', o.duringRestart, async () => {
      await sleep(20);
      await nats.restart();
    });
    await Promise.all(pending);

    // nothing lost: every revoked identity is refused by both replicas, on a new connection
    let lost = 0;
    for (const cert of targets.slice(0, next)) {
      for (const gw of [a, b]) if ((await probe(gw.servicePort, ca, cert, false)) === 200) lost++;
    }
    trafficOn = false;
    await Promise.all(traffic);
    adminAgent.destroy();
    await watch.close();
    return { phases, lost, revoked: next, backgroundRequests: bg, setupMs: Math.round(setupMs) };
  } finally {
    trafficOn = false;
    await Promise.all(traffic).catch(() => undefined);
    for (const g of gateways.reverse()) await g.stop().catch(() => undefined);
    await store?.close().catch(() => undefined);
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream.close(() => r()));
    await nats.stop();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
