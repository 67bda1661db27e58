// Gateways with both listeners (mTLS services, human sessions) as replicas of one real etcd and
// one real nats-server, built in this process by buildApp as `gatehouse serve` builds them.
// People's sessions are written to the store as authenticate writes them (the login ceremony
// has its own tests): a user record, a primary session under a lease, its user-sessions entry.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { parseConfig } from '../../src/config/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { openBus, type Bus } from '../../src/bus/index.js';
import { buildApp, type GatehouseApp } from '../../src/app.js';
import { systemClock } from '../../src/lib/clock.js';
import { makeFixture, type Fixture } from '../proxy/fixture.js';

export const HUMAN_HOST = 'app.example.org';
export const HUMAN_ORIGIN = `https://${HUMAN_HOST}`;
/** Sign-in and the console (the admin APIs answer on the console host: login.origin's, no route's). */
export const CONSOLE_HOST = 'login.example.org';
export const CONSOLE_ORIGIN = `https://${CONSOLE_HOST}`;

export const PAYMENTS_WITH_PEOPLE = `namespace: payments
mode: enforce
rules:
  - name: frontend-reads
    from: [{ namespace: frontend }]
    to: { service: api, methods: [GET, POST], paths: ["/**"] }
  - name: ops-admins
    from: [{ role: ops-admin }]
    to: { service: api, paths: ["/**"] }
`;

export async function makeRevocationFixture(): Promise<Fixture> {
  const f = await makeFixture();
  await writeFile(path.join(f.dir, 'policies', 'payments.yaml'), PAYMENTS_WITH_PEOPLE);
  return f;
}

export interface Replica {
  id: string;
  app: GatehouseApp;
  store: Store;
  bus: Bus;
  servicePort: number;
  humanPort: number;
  close(): Promise<void>;
}

export async function startReplica(f: Fixture, o: { id: string; endpoints: string[]; nats: string; stream?: string }): Promise<Replica> {
  const text = [
    'trustDomain: example.org',
    `replicaId: ${o.id}`,
    `store: { kind: etcd, endpoints: [${o.endpoints.map((e) => `"${e}"`).join(', ')}] }`,
    'pki: { dir: ./certs }',
    'policies: { dir: ./policies }',
    'listeners:',
    '  service: { address: 127.0.0.1, port: 0 }',
    '  human: { address: 127.0.0.1, port: 0 }',
    '  admin: { address: 127.0.0.1, port: 0 }',
    `webauthn: { rpId: example.org, origins: ["${HUMAN_ORIGIN}", "${CONSOLE_ORIGIN}"] }`,
    `login: { origin: "${CONSOLE_ORIGIN}", rateLimit: { max: 10000, window: 1m } }`,
    'routes:',
    `  - { host: api.payments, namespace: payments, service: api, upstream: "${f.payments.url}" }`,
    `  - { host: ${HUMAN_HOST}, namespace: payments, service: api, upstream: "${f.payments.url}" }`,
    '',
  ].join('\n');
  const config = parseConfig(text, f.configFile, {});
  const store = await openStore(config.store.kind === 'embedded' ? { kind: 'embedded', path: config.store.path } : config.store);
  const bus = await openBus({ kind: 'nats', servers: [o.nats], stream: o.stream ?? 'REVTEST', timeoutMs: 1_000 });
  const app = await buildApp(config, { store, bus, clock: systemClock });
  const at = await app.listen();
  return {
    id: o.id,
    app,
    store,
    bus,
    servicePort: at.service!.port,
    humanPort: at.human!.port,
    async close() {
      await app.close();
      await bus.close().catch(() => undefined);
      await store.close();
    },
  };
}

export interface TestSession {
  cookie: string;
  hash: string;
  sid: string;
  userId: string;
}

/** A user (active) and a live session for app.example.org, as authenticate stores them. */
export async function createSession(store: Store, o: { userId: string; roles: Record<string, string[]>; lastWebAuthnAt?: number; absoluteMs?: number; host?: string; acr?: string }): Promise<TestSession> {
  const now = Date.now();
  await store.put(`/gatehouse/users/${o.userId}`, JSON.stringify({ format: 1, id: o.userId, roles: o.roles, status: 'active', createdAt: now }));
  const cookie = randomBytes(32).toString('base64url');
  const hash = createHash('sha256').update(cookie).digest('hex');
  const sid = randomBytes(16).toString('base64url');
  const lease = await store.grant(3600);
  const record = {
    format: 1,
    kind: 'primary',
    sid,
    userId: o.userId,
    roles: o.roles,
    amr: ['hwk', 'user', 'otp'],
    acr: o.acr ?? 'aal3',
    credentialId: 'test-credential',
    host: o.host ?? HUMAN_HOST,
    createdAt: now,
    lastSeen: now,
    lastWebAuthnAt: o.lastWebAuthnAt ?? now,
    expiresAt: now + (o.absoluteMs ?? 12 * 3600_000),
    ip: '127.0.0.1',
    userAgent: 'test',
    lease: lease.id,
  };
  await store.put(`/gatehouse/sessions/${hash}`, JSON.stringify(record), { lease: lease.id });
  await store.put(`/gatehouse/user-sessions/${o.userId}/${hash}`, lease.id, { lease: lease.id });
  return { cookie, hash, sid, userId: o.userId };
}

export interface HumanReply {
  status: number;
  body: string;
}

/** One HTTPS request to the human listener as app.example.org (or `host`) with the session cookie. */
export function humanCall(port: number, ca: string, o: { cookie?: string; method?: string; path?: string; origin?: string; body?: unknown; agent?: https.Agent | false; host?: string }): Promise<HumanReply> {
  return new Promise((resolve, reject) => {
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: o.method ?? (body !== undefined ? 'POST' : 'GET'),
        path: o.path ?? '/v1/charges/1',
        ca,
        servername: o.host ?? HUMAN_HOST,
        headers: {
          host: o.host ?? HUMAN_HOST,
          accept: 'application/json',
          ...(o.cookie !== undefined ? { cookie: `__Host-gatehouse=${o.cookie}` } : {}),
          ...(o.origin !== undefined ? { origin: o.origin } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        agent: o.agent ?? false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function codeOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
