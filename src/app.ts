// buildApp composes the concrete parts into listeners without binding sockets; main.ts (through
// the CLI) is the only place that touches process. No request logic lives here: that is the
// pipeline's (src/gateway/). Parts meet here and nowhere else.
import { hostname } from 'node:os';
import path from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { GatehouseConfig } from './config/index.js';
import { isGatehouseError } from './errors.js';
import type { Store } from './store/index.js';
import type { Bus } from './bus/index.js';
import type { Clock } from './lib/clock.js';
import { createMetrics, gaugeOf, type GatewayMetrics } from './lib/metrics.js';
import { AuditWriter } from './audit/index.js';
import { loadCa, CertRevocationList, crlPublisher } from './pki/index.js';
import { PolicyEngine } from './authorize/index.js';
import { SessionManager } from './authenticate/index.js';
import { loadKek, openTokenService, type TokenService } from './tokens/index.js';
import { RevocationSet } from './revocation/index.js';
import { RouteTable } from './gateway/routes.js';
import { UpstreamClients } from './gateway/upstream.js';
import { serviceListener } from './gateway/service.js';
import { humanListener } from './gateway/human.js';
import { endChannels } from './gateway/endings.js';
import type { Pipeline } from './gateway/listener.js';
import { adminListener, startPolicies, listenerCertificates, followerReporter } from './compose.js';

export { REDACT } from './compose.js';
export { CRL_PATH, JWKS_PATH, TOKEN_PATH } from './gateway/service.js';

export interface AppDeps {
  store: Store;
  bus: Bus;
  clock: Clock;
  /** Where GATEHOUSE_KEK may come from (main passes process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Benchmarks only: forward without minting tokens, to measure what tokens cost. */
  withoutTokens?: boolean;
  /** fastify logger options; false in tests. */
  logger?: FastifyServerOptions['logger'];
}

export interface ListeningAddresses {
  admin: { address: string; port: number };
  service?: { address: string; port: number };
  human?: { address: string; port: number };
}

export interface GatehouseApp {
  config: GatehouseConfig;
  /** /healthz, /readyz, /metrics, the local operator API. */
  admin: FastifyInstance;
  /** The mTLS service listener, when configured. */
  service: Pipeline | undefined;
  /** The human listener (sessions, login pages), when configured. */
  human: Pipeline | undefined;
  /** People's sessions, with the human listener. */
  sessions: SessionManager | undefined;
  metrics: GatewayMetrics;
  audit: AuditWriter;
  policy: PolicyEngine;
  revocations: CertRevocationList | undefined;
  /** Every kind of revocation (session, user, token, cert, service), from the store watch and the bus. */
  revocationSet: RevocationSet | undefined;
  tokens: TokenService | undefined;
  listen(): Promise<ListeningAddresses>;
  close(): Promise<void>;
}

export async function buildApp(config: GatehouseConfig, deps: AppDeps): Promise<GatehouseApp> {
  const { store, bus, clock } = deps;
  const logger = deps.logger ?? false;
  const metrics = createMetrics();
  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  };
  const replica = config.replicaId ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 128);
  // The KEK seals token and audit signing keys; a gateway without one signs no audit checkpoints.
  const kekFile = config.tokens.kekFile ?? path.join(config.pki.dir, 'kek');
  const kek = await loadKek({ file: kekFile, env: deps.env ?? {} }).catch((e: unknown) => (isGatehouseError(e, 'ERR_TOKEN_KEK_NOT_FOUND') ? undefined : Promise.reject(e)));
  let onAuditError: (e: unknown) => void = () => undefined;
  const audit = await AuditWriter.open({
    store, replica, clock, ...(kek !== undefined ? { kek } : {}),
    checkpointEvery: config.audit.checkpointEvery, checkpointIntervalMs: config.audit.checkpointInterval,
    ...(config.audit.spoolDir !== undefined ? { spoolDir: config.audit.spoolDir } : {}),
    onError: (e) => onAuditError(e),
  });
  closers.push(() => audit.close());
  const policy = new PolicyEngine();
  const app: GatehouseApp = {
    config, admin: undefined as unknown as FastifyInstance, service: undefined, human: undefined, sessions: undefined, metrics, audit, policy,
    revocations: undefined, revocationSet: undefined, tokens: undefined,
    async listen() {
      const a = config.listeners.admin;
      const out: ListeningAddresses = { admin: await listenAdmin(a.address, a.port) };
      if (app.service !== undefined && config.listeners.service !== undefined) out.service = await app.service.listen(config.listeners.service.address, config.listeners.service.port);
      if (app.human !== undefined && config.listeners.human !== undefined) out.human = await app.human.listen(config.listeners.human.address, config.listeners.human.port);
      return out;
    },
    close: closeAll,
  };
  let listenAdmin: (address: string, port: number) => Promise<{ address: string; port: number }>;
  try {
    const admin = await adminListener({ config, store, bus, clock, audit, metrics, logger, closers, tokens: () => app.tokens });
    app.admin = admin.app;
    listenAdmin = admin.listen;
    onAuditError = (e) => admin.app.log.error({ code: (e as { code?: string }).code }, `audit: ${e instanceof Error ? e.message : String(e)}`);
    const log = admin.app.log;
    const { service: serviceCfg, human: humanCfg } = config.listeners;
    if (serviceCfg !== undefined || humanCfg !== undefined) {
      const follower = followerReporter({ audit, metrics, clock, log });
      await startPolicies({ config, store, policy, audit, clock, log, closers, follower });
      const ca = await loadCa(config.pki.dir);
      const list = (app.revocations = await CertRevocationList.open(store, { clock, onError: (e) => log.warn({ err: e.message }, 'certificate revocation list'), follower }));
      closers.push(() => list.close());
      const rset = (app.revocationSet = await RevocationSet.open({ store, bus, clock, onError: (e) => log.warn({ err: e.message }, 'revocations'), follower }));
      closers.push(() => rset.close());
      const crl = crlPublisher({ ca, list, clock });
      closers.push(() => crl.close());
      const certs = await listenerCertificates({ config, ca, clock, log, closers });
      const upstreams = new UpstreamClients(certs.upstream());
      closers.push(() => upstreams.close());
      certs.onRenew((c) => upstreams.rotate({ ca: ca.certPem, cert: c.cert, key: c.key }));
      const tokens = (app.tokens = await openTokenService({
        store, clock, kek: kek ?? (await loadKek({ file: kekFile, env: deps.env ?? {} })),
        issuer: config.tokens.issuer ?? `https://gatehouse.${config.trustDomain}`,
        ttlSeconds: Math.round(config.tokens.ttl / 1000), rotateAfterMs: config.tokens.rotateAfter,
        isRevoked: (claims) => rset.isTokenRevoked(claims),
        onError: (e) => log.error({ code: e.code }, `tokens: ${e.message}`),
        follower,
      }));
      closers.push(() => tokens.close());
      const listeners: Pipeline[] = [];
      const common = { routes: new RouteTable(config.routes), trustDomain: config.trustDomain, revocations: rset, upstreams, audit, metrics, clock, logger };
      const svc = serviceCfg === undefined ? undefined : await serviceListener({
        ...common, tls: { ...certs.service(), ca: ca.certPem, requestCert: true }, limits: serviceCfg.connections, authorizer: policy,
        tokens, withoutTokens: deps.withoutTokens, tokenTtlMs: config.tokens.ttl, crlPem: () => crl.pem(),
      });
      if (svc !== undefined) listeners.push((app.service = svc.pipeline));
      if (humanCfg !== undefined) {
        const sessions = (app.sessions = await SessionManager.open({
          store, clock, idleMs: config.sessions.idleTimeout, absoluteMs: config.sessions.absoluteTimeout,
          onError: (e) => log.error({ err: e.message }, 'sessions'),
          // logout, expiry and `user disable` end the person's channels, on every replica
          onEnded: (end) => endChannels(listeners, end),
          follower,
        }));
        closers.push(() => sessions.close());
        gaugeOf(metrics, 'gatehouse_sessions_cached', "People's sessions (and their per-host aliases) this replica holds in memory", () => sessions.size);
        listeners.push((app.human = await humanListener({
          config, limits: humanCfg.connections, store, clock, logger, audit, metrics, policy, sessions, upstreams, tokens, withoutTokens: deps.withoutTokens,
          creds: certs.human(), kek: kek ?? (await loadKek({ file: kekFile, env: deps.env ?? {} })), revocations: rset, bus,
          onError: (what, e) => log.warn({ err: e.message }, what),
        })));
      }
      for (const l of listeners) closers.push(() => l.close());
      certs.onRenew((c) => {
        if (app.service !== undefined && serviceCfg?.cert === undefined) app.service.setCertificate(c.cert, c.key);
        if (app.human !== undefined && humanCfg?.cert === undefined) app.human.setCertificate(c.cert, c.key);
      });
      // A revocation from any replica: tokens re-minted, the identity's channels closed, audited.
      const stop = rset.onRevoked((r, via) => {
        svc?.credentials.invalidate();
        if (r.kind === 'token') tokens.forgetToken(r.id);
        if (r.kind === 'user' || r.kind === 'service') tokens.forgetSubject(r.id);
        if (r.kind === 'session' && r.subject !== undefined) tokens.forgetSubject(r.subject);
        const closed = r.kind === 'token' ? 0 : endChannels(listeners, { kind: r.kind, id: r.id });
        audit.append({
          '@timestamp': new Date(clock.now()).toISOString(), 'event.action': 'revocation.applied', 'event.outcome': 'success',
          'gatehouse.revocation_kind': r.kind, 'gatehouse.revocation_id': r.id, 'gatehouse.revocation_via': via, 'gatehouse.channels_closed': closed,
        });
      });
      closers.push(() => stop());
    }
    await admin.app.ready();
  } catch (err) {
    await closeAll();
    throw err;
  }
  return app;
}
