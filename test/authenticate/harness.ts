// A gateway with the human listener, built by buildApp as `gatehouse serve` builds it, on an
// embedded store driven by a ManualClock (leases expire when the test says so), driven over
// HTTP with fastify's inject: cookies, Origin, Accept as a browser would send them.
import { randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { generateSync } from 'otplib';
import { NobleCryptoPlugin, ScureBase32Plugin } from 'otplib';
import { initCa } from '../../src/pki/index.js';
import { ManualClock } from '../../src/lib/clock.js';
import { parseConfig, type GatehouseConfig } from '../../src/config/index.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { openBus, type Bus } from '../../src/bus/index.js';
import { buildApp, type GatehouseApp } from '../../src/app.js';
import { GatehouseError } from '../../src/errors.js';
import { installErrorHandlers } from '../../src/lib/http-errors.js';
import { addUser, assignToken, humanRoutes, importTokens, parseRoles, readCookie, Regulator, sealSeed, SessionManager, SESSION_COOKIE } from '../../src/authenticate/index.js';
import { loadKek } from '../../src/tokens/index.js';
import { text } from '../../src/store/index.js';
import type { AuditEvent } from '../../src/contracts/audit.js';
import { startPlainUpstream, type Upstream } from '../proxy/fixture.js';
import { SoftAuthenticator } from './soft-authenticator.js';
import { makeAttestationPki, type AttestationPki } from './attestation-ca.js';

export const LOGIN = 'https://login.example.org';
export const APP = 'https://app.example.org';
export const ADMIN_APP = 'https://admin.example.org';

export const POLICY = `namespace: payments
mode: enforce
rules:
  - name: ops-admins
    from: [{ role: ops-admin }]
    to: { service: api, paths: ["/**"] }
`;

export interface Env {
  dir: string;
  upstream: Upstream;
  clock: ManualClock;
  store: EmbeddedStore;
  /** The authenticator vendor whose root the default config trusts (./roots.pem). */
  vendor: AttestationPki;
  kek(): Promise<KeyObject>;
  close(): Promise<void>;
}

/** A folder with a CA (and KEK), a policy, a trusted attestation root, and an upstream; one store shared by every gateway built on it. */
export async function makeEnv(): Promise<Env> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gh-human-'));
  await mkdir(path.join(dir, 'policies'));
  await writeFile(path.join(dir, 'policies', 'payments.yaml'), POLICY);
  await initCa({ dir: path.join(dir, 'certs'), trustDomain: 'example.org' });
  const vendor = makeAttestationPki('Trusted Vendor');
  await writeFile(path.join(dir, 'vendor-root.pem'), vendor.rootPem);
  const upstream = await startPlainUpstream();
  // real time, so certificate validity checks inside the WebAuthn library agree with the clock;
  // 5 s into a 30 s TOTP step so ±1 step is unambiguous
  const start = Math.floor(Date.now() / 30_000) * 30_000 + 5_000;
  const clock = new ManualClock(start);
  const store = await openEmbeddedStore({ kind: 'embedded', path: path.join(dir, 'data'), clock });
  return {
    dir,
    upstream,
    clock,
    store,
    vendor,
    kek: () => loadKek({ file: path.join(dir, 'certs', 'kek'), env: {} }),
    async close() {
      await store.close();
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface GatewayOptions {
  replicaId?: string;
  /** Extra YAML appended under the top level (webauthn/login/mfa overrides). */
  extra?: string;
  webauthn?: string;
  login?: string;
}

export interface Cookies {
  jar: Map<string, string>;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

export interface Gateway {
  app: GatehouseApp;
  config: GatehouseConfig;
  bus: Bus;
  request(o: { method?: string; url: string; host?: string; origin?: string | null; cookies?: Cookies; body?: unknown; accept?: string; headers?: Record<string, string> }): Promise<Reply>;
  close(): Promise<void>;
}

/** The gateway's config file text (listeners on port 0: the OS picks them). */
export function configText(env: Env, o: GatewayOptions = {}): string {
  return [
    'trustDomain: example.org',
    `replicaId: ${o.replicaId ?? 'h-a'}`,
    'store: { kind: embedded, path: ./data }',
    'pki: { dir: ./certs }',
    'policies: { dir: ./policies }',
    'listeners:',
    '  human: { address: 127.0.0.1, port: 0 }',
    '  admin: { address: 127.0.0.1, port: 0 }',
    o.webauthn ?? `webauthn: { rpId: example.org, origins: ["${LOGIN}", "${APP}", "${ADMIN_APP}"], attestationRoots: [./vendor-root.pem] }`,
    o.login ?? 'login: { rateLimit: { max: 10000, window: 1m } }',
    o.extra ?? '',
    'routes:',
    `  - { host: app.example.org, namespace: payments, service: api, upstream: "${env.upstream.url}" }`,
    `  - { host: admin.example.org, namespace: payments, service: api, upstream: "${env.upstream.url}", stepUp: 5m }`,
    `  - { host: login.example.org, namespace: payments, service: api, upstream: "${env.upstream.url}" }`,
    '',
  ].join('\n');
}

export async function startGateway(env: Env, o: GatewayOptions = {}): Promise<Gateway> {
  const config = parseConfig(configText(env, o), path.join(env.dir, 'gatehouse.yaml'));
  const bus = await openBus({ kind: 'memory' });
  const app = await buildApp(config, { store: env.store, bus, clock: env.clock });
  const human = app.human!.app;
  return {
    app,
    config,
    bus,
    async request(r) {
      const host = r.host ?? new URL(LOGIN).host;
      const headers: Record<string, string> = { host, 'user-agent': 'soft-browser/1', ...r.headers };
      if (r.origin !== null) headers.origin = r.origin ?? `https://${host}`;
      if (r.accept !== undefined) headers.accept = r.accept;
      if (r.cookies !== undefined && r.cookies.jar.size > 0) headers.cookie = [...r.cookies.jar].map(([k, v]) => `${k}=${v}`).join('; ');
      if (r.body !== undefined) headers['content-type'] = 'application/json';
      const res = await human.inject({ method: (r.method ?? (r.body !== undefined ? 'POST' : 'GET')) as 'GET', url: r.url, headers, ...(r.body !== undefined ? { payload: JSON.stringify(r.body) } : {}) });
      if (r.cookies !== undefined) absorb(r.cookies, res.headers['set-cookie']);
      return { status: res.statusCode, headers: res.headers, body: res.body, json: <T>() => JSON.parse(res.body) as T };
    },
    async close() {
      await app.close();
      await bus.close();
    },
  };
}

/** The error code of a refused request's JSON body ('' when there is none). */
export function errorCode(r: { body: string }): string {
  return (JSON.parse(r.body) as { error?: { code: string } }).error?.code ?? '';
}

export function jar(): Cookies {
  return { jar: new Map() };
}

function absorb(c: Cookies, set: string | string[] | undefined): void {
  for (const line of set === undefined ? [] : Array.isArray(set) ? set : [set]) {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim());
    const eq = pair!.indexOf('=');
    const name = pair!.slice(0, eq);
    const value = pair!.slice(eq + 1);
    if (value === '' || attrs.some((a) => a.toLowerCase() === 'max-age=0')) c.jar.delete(name);
    else c.jar.set(name, value);
  }
}

const crypto = new NobleCryptoPlugin();
const base32 = new ScureBase32Plugin();

/** The code of a (base32 or raw) seed at ms, computed independently of the gateway's code. */
export function totp(seed: string | Uint8Array, atMs: number, digits: 6 | 8 = 6, period = 30): string {
  return generateSync({ secret: seed, epoch: Math.floor(atMs / 1000), period, digits, crypto, base32 });
}

/** Lets queued store writes (lease expiries) commit and watch events arrive; no timers. */
export async function settle(env: Env): Promise<void> {
  for (let i = 0; i < 6; i++) {
    await env.store.settle();
    await new Promise<void>((r) => setImmediate(r));
  }
}

export async function advance(env: Env, ms: number): Promise<void> {
  env.clock.advance(ms);
  await settle(env);
}

export async function auditEvents(env: Env, gw: Gateway): Promise<AuditEvent[]> {
  await gw.app.audit.flush();
  const r = await env.store.range({ prefix: '/gatehouse/audit/' });
  // chain records: {seq, prev, hash, event}
  return r.kvs.map((kv) => (JSON.parse(text(kv.value)) as { event: AuditEvent }).event);
}

export interface Enrolled {
  id: string;
  key: SoftAuthenticator;
  /** The OTP seed, base32. */
  seed: string;
  serial: string;
}

/** A security key whose packed attestation chains to the root the default config trusts: proven hardware (hwk). */
export function attestedKey(env: Env, o: { aaguid?: string } = {}): SoftAuthenticator {
  return new SoftAuthenticator({ attestation: 'packed-x5c', x5c: { key: env.vendor.leafKey, chain: [env.vendor.leafDer] }, ...o });
}

/** Imports a hardware token (a vendor seed) and assigns it to the user, as `gatehouse totp import` and `assign` do. */
export async function giveHardwareToken(env: Env, userId: string): Promise<{ serial: string; seed: string }> {
  const serial = `HW-${userId}-${randomBytes(3).toString('hex')}`;
  const raw = randomBytes(20);
  await importTokens(env.store, [{ serial, sealedSeed: sealSeed(await env.kek(), serial, raw), digits: 6, period: 30, algorithm: 'sha1' }], env.clock);
  await assignToken(env.store, serial, userId, env.clock);
  return { serial, seed: new ScureBase32Plugin().encode(raw).replace(/=+$/, '') };
}

/** What enroll and login need of a gateway. */
export type Client = Pick<Gateway, 'request'>;

/** Follows an enrollment link through the pages' HTTP endpoints: a security key, then the OTP token's two codes. */
export async function completeEnrollment(env: Env, gw: Client, token: string, key: SoftAuthenticator, seed?: string): Promise<{ seed: string; serial: string }> {
  const start = await gw.request({ url: '/.gatehouse/enroll/start', body: { token } });
  if (start.status !== 200) throw new Error(`enroll/start: ${start.body}`);
  const opts = await gw.request({ url: '/.gatehouse/enroll/webauthn/options', body: { token } });
  if (opts.status !== 200) throw new Error(`enroll/webauthn/options: ${opts.body}`);
  const options = opts.json<{ options: { challenge: string; rp: { id: string }; user: { id: string } } }>().options;
  const reg = await gw.request({ url: '/.gatehouse/enroll/webauthn', body: { token, response: key.register(options, LOGIN) } });
  if (reg.status !== 200) throw new Error(`enroll/webauthn: ${reg.body}`);
  if (reg.json<{ complete: boolean }>().complete) return { seed: seed ?? '', serial: '' };
  const t = await gw.request({ url: '/.gatehouse/enroll/totp/options', body: { token } });
  if (t.status !== 200) throw new Error(`enroll/totp/options: ${t.body}`);
  const offered = t.json<{ secret?: string; serial: string }>();
  const secret = offered.secret ?? seed;
  if (secret === undefined) throw new Error('enroll: an assigned token and no seed given');
  const now = env.clock.now();
  const done = await gw.request({ url: '/.gatehouse/enroll/totp', body: { token, code1: totp(secret, now - 30_000), code2: totp(secret, now) } });
  if (done.status !== 200) throw new Error(`enroll/totp: ${done.body}`);
  return { seed: secret, serial: offered.serial };
}

/**
 * Adds a user and enrolls a security key and an OTP token through the pages' HTTP endpoints.
 * otp 'hardware' (default): an imported token is assigned first; 'software': the page's phone-app seed (needs totp.allowSoftware).
 */
export async function enroll(env: Env, gw: Client, id: string, roles: string[], key = new SoftAuthenticator(), o: { otp?: 'hardware' | 'software' } = {}): Promise<Enrolled> {
  const { enrollment } = await addUser(env.store, { id, roles: parseRoles(roles), enrollmentTtlMs: 86_400_000 }, env.clock);
  const hw = o.otp === 'software' ? undefined : await giveHardwareToken(env, id);
  const done = await completeEnrollment(env, gw, enrollment.token, key, hw?.seed);
  return { id, key, seed: done.seed, serial: done.serial };
}

/** Signs in with both factors on `host`; returns the cookie jar holding the session. */
export async function login(env: Env, gw: Client, u: Pick<Enrolled, 'id' | 'key' | 'seed'>, o: { host?: string; cookies?: Cookies; rd?: string; state?: string; totpAt?: number } = {}): Promise<{ cookies: Cookies; redirect: string }> {
  const cookies = o.cookies ?? jar();
  const host = o.host ?? 'login.example.org';
  const start = await gw.request({ url: '/.gatehouse/login/start', host, cookies, body: { username: u.id, rd: o.rd ?? '/', ...(o.state !== undefined ? { state: o.state } : {}) } });
  if (start.status !== 200) throw new Error(`login/start: ${start.body}`);
  const { options } = start.json<{ options: { challenge: string; rpId: string } }>();
  const w = await gw.request({ url: '/.gatehouse/login/webauthn', host, cookies, body: { response: u.key.authenticate(options, `https://${host}`) } });
  if (w.status !== 200) throw new Error(`login/webauthn: ${w.body}`);
  // a later step than any used before (enrollment used the current one)
  const t = await gw.request({ url: '/.gatehouse/login/totp', host, cookies, body: { code: totp(u.seed, o.totpAt ?? env.clock.now() + 30_000) } });
  if (t.status !== 200) throw new Error(`login/totp: ${t.body}`);
  return { cookies, redirect: t.json<{ redirect: string }>().redirect };
}

/**
 * The human routes alone (humanRoutes on a plain fastify, sessions on the env's store), for
 * options the config does not reach yet or tests that set them directly (allowSoftwareTotp).
 */
export async function startRoutes(env: Env, o: { allowSoftwareTotp?: boolean } = {}): Promise<Client & { events: AuditEvent[]; sessions: SessionManager; close(): Promise<void> }> {
  const app = Fastify();
  installErrorHandlers(app);
  const { store, clock } = env;
  const sessions = await SessionManager.open({ store, clock, idleMs: 900_000, absoluteMs: 43_200_000 });
  app.addHook('onRequest', async (req) => sessions.ensure(readCookie(req.headers, SESSION_COOKIE)));
  const events: AuditEvent[] = [];
  await humanRoutes(app, {
    store,
    clock,
    kek: await env.kek(),
    sessions,
    regulator: new Regulator(store, clock, { maxFailures: 5, window: 600_000, duration: 900_000 }),
    audit: { append: (e) => void events.push(e) },
    rp: { id: 'example.org', name: 'Gatehouse', origins: [LOGIN, APP, ADMIN_APP] },
    attestation: { allowedAAGUIDs: undefined, requireAttestation: false, roots: [new X509Certificate(env.vendor.rootPem)] },
    challengeTtlMs: 120_000,
    mfa: { require: ['webauthn-uv', 'totp'] },
    ...(o.allowSoftwareTotp !== undefined ? { allowSoftwareTotp: o.allowSoftwareTotp } : {}),
    pendingTtlMs: 300_000,
    sessionAbsoluteMs: 43_200_000,
    rateLimit: { max: 10_000, windowMs: 60_000 },
    loginOrigin: undefined,
    routeHosts: ['app.example.org', 'admin.example.org', 'login.example.org'],
    publicPort: '',
    trustedProxies: undefined,
    verifyForwarded: async () => ({ ok: false, error: new GatehouseError('ERR_FORWARD_AUTH_REFUSED') }),
  });
  await app.ready();
  return {
    events,
    sessions,
    async request(r) {
      const host = r.host ?? new URL(LOGIN).host;
      const headers: Record<string, string> = { host, 'user-agent': 'soft-browser/1', ...r.headers };
      if (r.origin !== null) headers.origin = r.origin ?? `https://${host}`;
      if (r.accept !== undefined) headers.accept = r.accept;
      if (r.cookies !== undefined && r.cookies.jar.size > 0) headers.cookie = [...r.cookies.jar].map(([k, v]) => `${k}=${v}`).join('; ');
      if (r.body !== undefined) headers['content-type'] = 'application/json';
      const res = await app.inject({ method: (r.method ?? (r.body !== undefined ? 'POST' : 'GET')) as 'GET', url: r.url, headers, ...(r.body !== undefined ? { payload: JSON.stringify(r.body) } : {}) });
      if (r.cookies !== undefined) absorb(r.cookies, res.headers['set-cookie']);
      return { status: res.statusCode, headers: res.headers, body: res.body, json: <T>() => JSON.parse(res.body) as T };
    },
    async close() {
      await app.close();
      await sessions.close();
    },
  };
}

/** The session a cookie jar holds, as /.gatehouse/session reports it. */
export async function whoAmI(gw: Client, cookies: Cookies, host = 'login.example.org'): Promise<{ status: number; user?: string; amr?: string[]; acr?: string; roles?: Record<string, string[]> }> {
  const r = await gw.request({ url: '/.gatehouse/session', host, cookies, body: undefined, method: 'GET' });
  return r.status === 200 ? { status: r.status, ...r.json<{ user: string; amr: string[]; acr: string; roles: Record<string, string[]> }>() } : { status: r.status };
}
