// Pieces of buildApp's composition that are not the pipeline: the admin listener, the policy
// plane's start, the listeners' certificates, and the one reporter every store follower uses.
// Wiring only, like app.ts: no request logic.
import { randomUUID, type KeyObject } from 'node:crypto';
import { hostname } from 'node:os';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { GatehouseConfig, ListenerConfig } from './config/index.js';
import { GatehouseError, isGatehouseError } from './errors.js';
import type { Store } from './store/index.js';
import type { Bus } from './bus/index.js';
import type { Clock } from './lib/clock.js';
import { installErrorHandlers } from './lib/http-errors.js';
import type { GatewayMetrics } from './lib/metrics.js';
import type { AuditSink } from './contracts/audit.js';
import { healthRoutes } from './admin/health.js';
import { createAdminToken, localOpsRoutes, removeAdminToken } from './admin/local-api.js';
import { AuditWriter, auditKeysJwks, AUDIT_KEYS_PATH } from './audit/index.js';
import { applyPolicies, readPolicyDir, watchPolicies, POLICY_PREFIX, type PolicyEngine } from './authorize/index.js';
import { listenerHosts, startServerCertificateManager, type CertificateAuthority, type ServerCredentials } from './pki/index.js';
import type { FollowerReporter } from './store/mirror.js';
import { loadKek, type TokenService } from './tokens/index.js';
import { JWKS_PATH } from './gateway/paths.js';
import type { ConnectionLimits } from './gateway/connection.js';
import { defaultMaxConnections } from './lib/descriptors.js';

/** A listener's connection limits, its descriptor budget resolved from the process's limit when the config leaves it out. */
export function connectionLimits(c: ListenerConfig['connections']): ConnectionLimits {
  return { ...c, maxConnections: c.maxConnections ?? defaultMaxConnections() };
}

/** Headers that carry secrets never reach the logs. */
export const REDACT = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]', 'res.headers["set-cookie"]'];

/** What buildApp opened, closed in reverse order (listeners first, the audit writer last). */
export class Closers {
  readonly #list: (() => Promise<void> | void)[] = [];
  /** Registers something with close() (or a close function); returns it. */
  add<T extends { close(): Promise<void> | void } | (() => Promise<void> | void)>(x: T): T {
    this.#list.push(typeof x === 'function' ? x : () => x.close());
    return x;
  }
  async closeAll(): Promise<void> {
    for (const c of this.#list.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  }
}

/** The KEK seals token and audit signing keys; a gateway without one signs no audit checkpoints (and has no listeners). */
export async function readKek(config: GatehouseConfig, env: Readonly<Record<string, string | undefined>> | undefined): Promise<{ found: KeyObject | undefined; required(): Promise<KeyObject> }> {
  const file = config.tokens.kekFile ?? path.join(config.pki.dir, 'kek');
  const read = (): Promise<KeyObject> => loadKek({ file, env: env ?? {} });
  const found = await read().catch((e: unknown) => {
    if (isGatehouseError(e, 'ERR_TOKEN_KEK_NOT_FOUND')) return undefined;
    throw e;
  });
  return { found, required: async () => found ?? read() };
}

/** This replica's audit writer (the replica id, or the host name); its errors go to the log once one exists. */
export async function openAudit(o: { config: GatehouseConfig; store: Store; clock: Clock; kek: KeyObject | undefined; closers: Closers }): Promise<{ audit: AuditWriter; logTo: (log: FastifyBaseLogger) => void }> {
  const { config } = o;
  const holder: { log?: FastifyBaseLogger } = {};
  const audit = await AuditWriter.open({
    store: o.store,
    replica: config.replicaId ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 128),
    clock: o.clock,
    ...(o.kek !== undefined ? { kek: o.kek } : {}),
    checkpointEvery: config.audit.checkpointEvery,
    checkpointIntervalMs: config.audit.checkpointInterval,
    ...(config.audit.spoolDir !== undefined ? { spoolDir: config.audit.spoolDir } : {}),
    onError: (e) => holder.log?.error({ code: (e as { code?: string }).code }, `audit: ${e instanceof Error ? e.message : String(e)}`),
  });
  o.closers.add(audit);
  return { audit, logTo: (log) => void (holder.log = log) };
}

/** /healthz, /readyz, /metrics, the audit keys, the JWKS and (embedded store) the local operator API. */
export async function adminListener(o: {
  config: GatehouseConfig;
  store: Store;
  bus: Bus;
  clock: Clock;
  audit: AuditWriter;
  metrics: GatewayMetrics;
  logger: FastifyServerOptions['logger'];
  closers: Closers;
  tokens(): TokenService | undefined;
}): Promise<{ app: FastifyInstance; listen(address: string, port: number): Promise<{ address: string; port: number }> }> {
  const app = Fastify({ logger: o.logger ?? false, genReqId: () => randomUUID(), requestIdHeader: false, return503OnClosing: true });
  installErrorHandlers(app);
  o.closers.add(() => app.close());
  app.get(AUDIT_KEYS_PATH, async (_req, reply) => reply.header('cache-control', 'public, max-age=300').send(await auditKeysJwks(o.store)));
  await app.register(healthRoutes, { store: o.store, bus: o.bus });
  if (o.config.store.kind === 'embedded') {
    // the CLI reaches the locked embedded store through this API (see src/admin/local-api.ts)
    const dir = o.config.store.path;
    const token = await createAdminToken(dir);
    o.closers.add(() => removeAdminToken(dir));
    await app.register(localOpsRoutes, { store: o.store, clock: o.clock, token, audit: o.audit, bus: o.bus });
  }
  app.get('/metrics', async (_req, reply) => reply.type(o.metrics.registry.contentType).send(await o.metrics.registry.metrics()));
  app.get(JWKS_PATH, async (_req, reply) => {
    const tokens = o.tokens();
    if (tokens === undefined) throw new GatehouseError('ERR_NOT_FOUND', 'no token service on this gateway');
    return reply.header('cache-control', tokens.jwksCacheControl).send(tokens.jwks());
  });
  return {
    app,
    async listen(address, port) {
      await app.listen({ host: address, port });
      const a = app.server.address();
      return typeof a === 'object' && a !== null ? { address: a.address, port: a.port } : { address, port };
    },
  };
}

/** Every follower's bad record and lost watch: counted, logged, and an audit alert — one place for all of them. */
export function followerReporter(o: { audit: AuditSink; metrics: GatewayMetrics; clock: Clock; log: FastifyBaseLogger }): FollowerReporter {
  const bad = o.metrics.counter('gatehouse_store_records_invalid_total', 'Store records a follower could not decode and skipped', ['prefix']);
  const lost = o.metrics.counter('gatehouse_store_watch_lost_total', 'Store watches a follower lost and resynced', ['prefix']);
  return {
    badRecord(info) {
      bad.inc({ prefix: info.prefix });
      o.log.error({ prefix: info.prefix, key: info.key, revision: info.revision, code: info.error.code }, `store record skipped: ${info.error.message}`);
      o.audit.append({
        '@timestamp': new Date(o.clock.now()).toISOString(),
        'event.action': 'store.record.invalid',
        'event.outcome': 'failure',
        'event.kind': 'alert',
        'event.severity': 7,
        'event.reason': info.error.message.slice(0, 300),
        'gatehouse.error_code': info.error.code,
        'gatehouse.store_key': info.key.slice(0, 300),
        'gatehouse.store_revision': info.revision,
      });
    },
    watchLost(prefix, err) {
      lost.inc({ prefix });
      o.log.warn({ prefix, err: err.message }, 'store watch lost; resyncing');
    },
    resynced(prefix, revision) {
      o.log.info({ prefix, revision }, 'store follower resynced');
    },
  };
}

/** First start on an empty store takes the policies folder; then every change comes through the store watch. */
export async function startPolicies(o: {
  config: GatehouseConfig;
  store: Store;
  policy: PolicyEngine;
  audit: AuditSink;
  clock: Clock;
  log: FastifyBaseLogger;
  closers: Closers;
  follower: FollowerReporter;
}): Promise<void> {
  const dir = o.config.policies.dir;
  const existing = await o.store.range({ prefix: POLICY_PREFIX }, { limit: 1, keysOnly: true });
  if (existing.count === 0) {
    const { sources } = await readPolicyDir(dir).catch(() => ({ sources: [] }));
    if (sources.length > 0) {
      const applied = await applyPolicies(o.store, dir);
      o.log.info(`policies: store was empty, applied ${applied.written.length} namespace(s) from ${dir}`);
    }
  }
  const now = (): string => new Date(o.clock.now()).toISOString();
  const watch = await watchPolicies(o.store, o.policy, {
    follower: o.follower,
    clock: o.clock,
    onReload: (s) => {
      o.audit.append({ '@timestamp': now(), 'event.action': 'policy.reload', 'event.outcome': 'success', 'gatehouse.policy_version': s.version });
      o.log.info(`policies: version ${s.version} in force`);
    },
    onError: (e) => {
      o.audit.append({ '@timestamp': now(), 'event.action': 'policy.reload', 'event.outcome': 'failure', 'gatehouse.error_code': e.code, 'event.reason': e.message.slice(0, 500) });
      o.log.error({ code: e.code }, `policies refused: ${e.message}`);
    },
  });
  o.closers.add(watch);
}

/** A listener's certificate and key (PEM). */
export interface ListenerCredentials {
  cert: string;
  key: string;
}

export interface ListenerCertificates {
  service(): ListenerCredentials;
  human(): ListenerCredentials;
  /** The gateway's client certificate towards https upstreams. */
  upstream(): { ca: string; cert: string; key: string };
  /** Called with each renewed managed certificate. */
  onRenew(fn: (c: ServerCredentials) => void): void;
}

/**
 * The listeners' certificates: operator files used as they are (their renewal is the
 * operator's), else one issued from the CA and renewed at 2/3 of its life, whose SANs are the
 * listener addresses, localhost, every route host and the login host.
 */
export async function listenerCertificates(o: { config: GatehouseConfig; ca: CertificateAuthority; clock: Clock; log: FastifyBaseLogger; closers: Closers }): Promise<ListenerCertificates> {
  const { config } = o;
  const files = async (name: 'service' | 'human', l: ListenerConfig | undefined): Promise<ListenerCredentials | undefined> => {
    if (l === undefined || (l.cert === undefined && l.key === undefined)) return undefined;
    if (l.cert === undefined || l.key === undefined) throw new GatehouseError('ERR_CONFIG_INVALID', `${config.source}: listeners.${name} needs both cert and key, or neither`);
    const at = (f: string): string => path.resolve(path.dirname(config.source), f);
    return { cert: await readFile(at(l.cert), 'utf8'), key: await readFile(at(l.key), 'utf8') };
  };
  const { service, human } = config.listeners;
  const serviceFiles = await files('service', service);
  const humanFiles = await files('human', human);
  const needsManaged = (service !== undefined && serviceFiles === undefined) || (human !== undefined && humanFiles === undefined);
  const hosts = [
    ...new Set([
      ...(service !== undefined ? listenerHosts(service.address) : []),
      ...(human !== undefined ? listenerHosts(human.address) : []),
      ...config.routes.map((r) => r.host.toLowerCase()),
      ...(human !== undefined && config.login.origin !== undefined ? [new URL(config.login.origin).hostname.toLowerCase()] : []),
    ]),
  ];
  const managed = needsManaged ? await startServerCertificateManager({ ca: o.ca, hosts, clock: o.clock, onError: (e) => o.log.error({ err: e.message }, 'listener certificate renewal failed') }) : undefined;
  if (managed !== undefined) o.closers.add(() => managed.close());
  const current = (files: ListenerCredentials | undefined): ListenerCredentials => files ?? managed!.current();
  return {
    service: () => current(serviceFiles),
    human: () => current(humanFiles),
    upstream: () => {
      const c = managed !== undefined ? managed.current() : (serviceFiles ?? humanFiles)!;
      return { ca: o.ca.certPem, cert: c.cert, key: c.key };
    },
    onRenew(fn) {
      if (managed === undefined) return;
      const stop = managed.onRenew(fn);
      o.closers.add(() => stop());
    },
  };
}
