// buildApp composes the concrete parts into listeners without binding sockets; main.ts (through
// the CLI) is the only place that touches process. No request logic lives here: that is the
// pipeline's (src/gateway/). Parts meet here and in compose.ts, nowhere else.
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { configWarnings, type GatehouseConfig } from './config/index.js';
import type { Store } from './store/index.js';
import type { Bus } from './bus/index.js';
import type { Clock } from './lib/clock.js';
import { createMetrics, gaugeOf, type GatewayMetrics } from './lib/metrics.js';
import type { AuditWriter } from './audit/index.js';
import { loadCa, CertRevocationList, crlPublisher } from './pki/index.js';
import { PolicyEngine } from './authorize/index.js';
import { SessionManager } from './authenticate/index.js';
import { openTokenService, type TokenService } from './tokens/index.js';
import { RevocationSet } from './revocation/index.js';
import { RouteTable } from './gateway/exchange.js';
import { UpstreamClients } from './gateway/upstream.js';
import { serviceListener } from './gateway/service.js';
import { humanListener } from './gateway/human.js';
import { applyRevocations, endChannels } from './gateway/endings.js';
import type { Pipeline } from './gateway/listener.js';
import { Closers, connectionLimits, adminListener, followerReporter, listenerCertificates, openAudit, readKek, startPolicies } from './compose.js';

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
  const { service: serviceCfg, human: humanCfg } = config.listeners;
  const metrics = createMetrics();
  const closers = new Closers();
  const policy = new PolicyEngine();
  let tokens: TokenService | undefined;
  const listeners: Pipeline[] = [];
  try {
    const kek = await readKek(config, deps.env);
    const { audit, logTo } = await openAudit({ config, store, clock, kek: kek.found, closers });
    const admin = await adminListener({ config, store, bus, clock, audit, metrics, logger, closers, tokens: () => tokens });
    const log = admin.app.log;
    logTo(log);
    for (const warning of configWarnings(config)) log.warn(warning);
    const parts = { config, admin: admin.app, service: undefined, human: undefined, sessions: undefined, metrics, audit, policy, revocations: undefined, revocationSet: undefined, tokens: undefined };
    const app: GatehouseApp = {
      ...parts,
      async listen() {
        const out: ListeningAddresses = { admin: await admin.listen(config.listeners.admin.address, config.listeners.admin.port) };
        if (app.service !== undefined && serviceCfg !== undefined) out.service = await app.service.listen(serviceCfg.address, serviceCfg.port);
        if (app.human !== undefined && humanCfg !== undefined) out.human = await app.human.listen(humanCfg.address, humanCfg.port);
        return out;
      },
      close: () => closers.closeAll(),
    };
    if (serviceCfg !== undefined || humanCfg !== undefined) {
      const follower = followerReporter({ audit, metrics, clock, log });
      await startPolicies({ config, store, policy, audit, clock, log, closers, follower });
      const ca = await loadCa(config.pki.dir);
      const onError = (what: string) => (e: Error) => log.warn({ err: e.message }, what);
      const list = closers.add((app.revocations = await CertRevocationList.open(store, { clock, onError: onError('certificate revocation list'), follower })));
      const rset = closers.add((app.revocationSet = await RevocationSet.open({ store, bus, clock, onError: onError('revocations'), follower })));
      const crl = closers.add(crlPublisher({ ca, list, clock }));
      const certs = await listenerCertificates({ config, ca, clock, log, closers });
      const upstreams = closers.add(new UpstreamClients(certs.upstream()));
      certs.onRenew((c) => upstreams.rotate({ ca: ca.certPem, cert: c.cert, key: c.key }));
      tokens = app.tokens = closers.add(
        await openTokenService({
          store, clock, kek: await kek.required(), follower, issuer: config.tokens.issuer ?? `https://gatehouse.${config.trustDomain}`,
          ttlSeconds: Math.round(config.tokens.ttl / 1000), rotateAfterMs: config.tokens.rotateAfter,
          isRevoked: (claims) => rset.isTokenRevoked(claims), onError: (e) => log.error({ code: e.code }, `tokens: ${e.message}`),
        }),
      );
      const common = { routes: new RouteTable(config.routes), trustDomain: config.trustDomain, upstreams, audit, metrics, clock, logger, tokens, withoutTokens: deps.withoutTokens };
      const svc = serviceCfg === undefined ? undefined : await serviceListener({
        ...common, tls: { ...certs.service(), ca: ca.certPem, requestCert: true }, limits: connectionLimits(serviceCfg.connections), authorizer: policy,
        revocations: rset, tokenTtlMs: config.tokens.ttl, crlPem: () => crl.pem(),
      });
      if (svc !== undefined) listeners.push((app.service = svc.pipeline));
      if (humanCfg !== undefined) {
        const sessions = closers.add((app.sessions = await SessionManager.open({
          store, clock, idleMs: config.sessions.idleTimeout, absoluteMs: config.sessions.absoluteTimeout, follower,
          onError: onError('sessions'),
          // logout, expiry and `user disable` end the person's channels, on every replica
          onEnded: (end) => void endChannels(listeners, end),
        })));
        gaugeOf(metrics, 'gatehouse_sessions_cached', "People's sessions (and their per-host aliases) this replica holds in memory", () => sessions.size);
        listeners.push((app.human = await humanListener({
          ...common, config, limits: connectionLimits(humanCfg.connections), store, policy, sessions, creds: certs.human(), kek: await kek.required(), revocations: rset, bus, onError,
        })));
      }
      for (const l of listeners) closers.add(l);
      certs.onRenew((c) => {
        if (serviceCfg?.cert === undefined) app.service?.setCertificate(c.cert, c.key);
        if (humanCfg?.cert === undefined) app.human?.setCertificate(c.cert, c.key);
      });
      // a revocation from any replica: tokens re-minted, the identity's channels closed, audited
      closers.add({ close: applyRevocations({ revocations: rset, tokens, invalidate: () => svc?.credentials.invalidate(), listeners, audit, clock }) });
    }
    await admin.app.ready();
    return app;
  } catch (err) {
    await closers.closeAll();
    throw err;
  }
}
