// buildApp wires the concrete parts into listeners without binding sockets; main.ts (through
// the CLI) is the only place that touches process. Parts meet here and nowhere else.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { GatehouseError, isGatehouseError } from './errors.js';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { GatehouseConfig, ListenerConfig } from './config/index.js';
import type { Store } from './store/index.js';
import type { Bus } from './bus/index.js';
import type { Clock } from './lib/clock.js';
import { installErrorHandlers } from './lib/http-errors.js';
import { createMetrics, type GatewayMetrics } from './lib/metrics.js';
import { healthRoutes } from './admin/health.js';
import { createAdminToken, localOpsRoutes, removeAdminToken } from './admin/local-api.js';
import { AuditWriter, auditKeysJwks, AUDIT_KEYS_PATH } from './audit/index.js';
import {
  loadCa,
  CertRevocationList,
  crlPublisher,
  startServerCertificateManager,
  listenerHosts,
  type CrlPublisher,
  type ServerCertificateManager,
} from './pki/index.js';
import { PolicyEngine, applyPolicies, watchPolicies, readPolicyDir, POLICY_PREFIX, type PolicyWatch } from './authorize/index.js';
import { serviceIdentity } from './authenticate/service.js';
import { createProxyListener, type ProxyListener } from './proxy/listener.js';
import { RouteTable } from './proxy/admit.js';
import { UpstreamClients } from './proxy/upstream.js';
import { certThumbprint, loadKek, openTokenService, tokenExchange, type TokenService } from './tokens/index.js';
import { parseSpiffeId } from './pki/index.js';
import type { Principal } from './contracts/authz.js';
import type { SessionManager } from './authenticate/index.js';
import { buildHumanListener } from './human-listener.js';
import { RevocationSet, type RevocationRecord } from './revocation/index.js';

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
  /** /healthz, /readyz, /metrics. */
  admin: FastifyInstance;
  /** The mTLS service listener, when configured. */
  service: ProxyListener | undefined;
  /** The human listener (sessions, login pages), when configured. */
  human: ProxyListener | undefined;
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

/** Headers that carry secrets never reach the logs. */
export const REDACT = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]', 'res.headers["set-cookie"]'];

export const CRL_PATH = '/.gatehouse/crl.pem';
export const JWKS_PATH = '/.well-known/jwks.json';
export const TOKEN_PATH = '/.gatehouse/token';
const MAX_FORM_BYTES = 8 * 1024;

/** Reads a small form body from a request whose body fastify left unread. */
async function readForm(req: IncomingMessage): Promise<Record<string, string> | GatehouseError> {
  const type = req.headers['content-type'] ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) return new GatehouseError('ERR_BAD_REQUEST', 'expected application/x-www-form-urlencoded');
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return new GatehouseError('ERR_BAD_REQUEST', 'form body too large');
    chunks.push(chunk);
  }
  const form: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
    // RFC 6749 §3.2: parameters must not repeat
    if (Object.hasOwn(form, k)) return new GatehouseError('ERR_BAD_REQUEST', `parameter ${k.slice(0, 40)} repeated`);
    form[k] = v;
  }
  return form;
}

/** What this app reads off a connection's client certificate, parsed once per connection. */
interface PeerFacts {
  /** Serial as Node prints it, lowercased (as the listener's peerSerial). */
  serial: string | undefined;
  /** cnf x5t#S256. */
  thumbprint: string | undefined;
  /** The SPIFFE ID (the one URI SAN). */
  spiffeUri: string | undefined;
}
const peerFacts = new WeakMap<TLSSocket, PeerFacts>();
function peerFactsOf(socket: TLSSocket): PeerFacts {
  let facts = peerFacts.get(socket);
  if (facts === undefined) {
    const cert = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
    const san = cert?.subjectAltName;
    facts = {
      serial: cert?.serialNumber.toLowerCase(),
      thumbprint: cert ? certThumbprint(cert) : undefined,
      spiffeUri: san !== undefined && san.startsWith('URI:spiffe://') && !san.includes(', ') ? san.slice(4) : undefined,
    };
    peerFacts.set(socket, facts);
  }
  return facts;
}
const connectionThumbprint = (req: IncomingMessage): string | undefined => peerFactsOf(req.socket as TLSSocket).thumbprint;
const spiffeUriOf = (socket: TLSSocket): string | undefined => peerFactsOf(socket).spiffeUri;

/** First start on an empty store: the policies folder becomes the stored policy (later changes: `policy apply`). */
async function bootstrapPolicies(store: Store, dir: string, log: (msg: string) => void): Promise<void> {
  const existing = await store.range({ prefix: POLICY_PREFIX }, { limit: 1, keysOnly: true });
  if (existing.count > 0) return;
  const { sources } = await readPolicyDir(dir).catch(() => ({ sources: [] }));
  if (sources.length === 0) return;
  const applied = await applyPolicies(store, dir);
  log(`policies: store was empty, applied ${applied.written.length} namespace(s) from ${dir}`);
}

export async function buildApp(config: GatehouseConfig, deps: AppDeps): Promise<GatehouseApp> {
  const { store, clock } = deps;
  const logger = deps.logger ?? false;
  const metrics = createMetrics();
  const closers: (() => Promise<void> | void)[] = [];
  const replica = config.replicaId ?? hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 128);

  // The KEK seals token and audit signing keys; a gateway without one signs no audit checkpoints.
  const kekFile = config.tokens.kekFile ?? path.join(config.pki.dir, 'kek');
  const foundKek = await loadKek({ file: kekFile, env: deps.env ?? {} }).catch((e: unknown) => {
    if (isGatehouseError(e, 'ERR_TOKEN_KEK_NOT_FOUND')) return undefined;
    throw e;
  });
  let auditLog: (e: unknown) => void = () => undefined;
  const audit = await AuditWriter.open({
    store,
    replica,
    clock,
    ...(foundKek !== undefined ? { kek: foundKek } : {}),
    checkpointEvery: config.audit.checkpointEvery,
    checkpointIntervalMs: config.audit.checkpointInterval,
    ...(config.audit.spoolDir !== undefined ? { spoolDir: config.audit.spoolDir } : {}),
    onError: (e) => auditLog(e),
  });
  closers.push(() => audit.close());

  const admin = Fastify({ logger, genReqId: () => randomUUID(), requestIdHeader: false, return503OnClosing: true });
  installErrorHandlers(admin);
  const log = (msg: string): void => admin.log.info(msg);
  auditLog = (e) => admin.log.error({ code: (e as { code?: string }).code }, `audit: ${e instanceof Error ? e.message : String(e)}`);
  admin.get(AUDIT_KEYS_PATH, async (_req, reply) => reply.header('cache-control', 'public, max-age=300').send(await auditKeysJwks(store)));
  await admin.register(healthRoutes, { store, bus: deps.bus });
  if (config.store.kind === 'embedded') {
    // the CLI reaches the locked embedded store through this API (see src/admin/local-api.ts)
    const dir = config.store.path;
    const token = await createAdminToken(dir);
    closers.push(() => removeAdminToken(dir));
    await admin.register(localOpsRoutes, { store, clock, token, audit, bus: deps.bus });
  }
  admin.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  const policy = new PolicyEngine();
  let policyWatch: PolicyWatch | undefined;
  let service: ProxyListener | undefined;
  let human: ProxyListener | undefined;
  let sessions: SessionManager | undefined;
  let revocations: CertRevocationList | undefined;
  let revocationSet: RevocationSet | undefined;
  let tokens: TokenService | undefined;
  let crl: CrlPublisher | undefined;

  try {
    const serviceCfg = config.listeners.service;
    const humanCfg = config.listeners.human;
    if (serviceCfg !== undefined || humanCfg !== undefined) {
      await bootstrapPolicies(store, config.policies.dir, log);
      policyWatch = await watchPolicies(store, policy, {
        onReload: (s) => {
          audit.append({ '@timestamp': new Date(clock.now()).toISOString(), 'event.action': 'policy.reload', 'event.outcome': 'success', 'gatehouse.policy_version': s.version });
          log(`policies: version ${s.version} in force`);
        },
        onError: (e) => {
          audit.append({ '@timestamp': new Date(clock.now()).toISOString(), 'event.action': 'policy.reload', 'event.outcome': 'failure', 'gatehouse.error_code': e.code, 'event.reason': e.message.slice(0, 500) });
          admin.log.error({ code: e.code }, `policies refused: ${e.message}`);
        },
      });
      closers.push(() => policyWatch?.close());

      const ca = await loadCa(config.pki.dir);
      revocations = await CertRevocationList.open(store, { clock, onError: (e) => admin.log.warn({ err: e.message }, 'certificate revocation list') });
      const list = revocations;
      closers.push(() => list.close());
      // Session, user, token, cert and service revocations: the store watch and the bus, whichever is first.
      const rset = await RevocationSet.open({ store, bus: deps.bus, clock, onError: (e) => admin.log.warn({ err: e.message }, 'revocations') });
      revocationSet = rset;
      closers.push(() => rset.close());
      /** What every replica does when a revocation reaches it (wired below, once the listeners exist). */
      const applyRevocation: ((r: RevocationRecord) => void)[] = [];
      const stopApply = rset.onRevoked((r, via) => {
        for (const fn of applyRevocation) {
          try {
            fn(r);
          } catch (err) {
            admin.log.error({ err: (err as Error).message }, 'applying a revocation');
          }
        }
        audit.append({
          '@timestamp': new Date(clock.now()).toISOString(),
          'event.action': 'revocation.applied',
          'event.outcome': 'success',
          'gatehouse.revocation_kind': r.kind,
          'gatehouse.revocation_id': r.id,
          'gatehouse.revocation_via': via,
        });
      });
      closers.push(() => stopApply());
      crl = crlPublisher({ ca, list, clock });
      closers.push(() => crl?.close());

      let certs: ServerCertificateManager | undefined;
      const operatorCreds = async (name: 'service' | 'human', l: ListenerConfig | undefined): Promise<{ cert: string; key: string } | undefined> => {
        if (l === undefined || (l.cert === undefined && l.key === undefined)) return undefined;
        // Operator-provided files: used as they are (renewal is then the operator's job).
        if (l.cert === undefined || l.key === undefined) {
          throw new GatehouseError('ERR_CONFIG_INVALID', `${config.source}: listeners.${name} needs both cert and key, or neither`);
        }
        return { cert: await readFile(path.resolve(path.dirname(config.source), l.cert), 'utf8'), key: await readFile(path.resolve(path.dirname(config.source), l.key), 'utf8') };
      };
      const serviceFiles = await operatorCreds('service', serviceCfg);
      const humanFiles = await operatorCreds('human', humanCfg);
      if ((serviceCfg !== undefined && serviceFiles === undefined) || (humanCfg !== undefined && humanFiles === undefined)) {
        // SANs: the listener addresses, localhost, every route host and the login host (clients dial those names).
        const hosts = [
          ...new Set([
            ...(serviceCfg !== undefined ? listenerHosts(serviceCfg.address) : []),
            ...(humanCfg !== undefined ? listenerHosts(humanCfg.address) : []),
            ...config.routes.map((r) => r.host.toLowerCase()),
            ...(humanCfg !== undefined && config.login.origin !== undefined ? [new URL(config.login.origin).hostname.toLowerCase()] : []),
          ]),
        ];
        const manager = await startServerCertificateManager({ ca, hosts, clock, onError: (e) => admin.log.error({ err: e.message }, 'listener certificate renewal failed') });
        certs = manager;
        closers.push(() => manager.close());
      }
      const managed = certs;
      const credsOf = (files: { cert: string; key: string } | undefined): { cert: string; key: string } => files ?? managed!.current();
      const upstreamCreds = certs !== undefined ? certs.current() : (serviceFiles ?? humanFiles)!;
      const upstreams = new UpstreamClients({ ca: ca.certPem, cert: upstreamCreds.cert, key: upstreamCreds.key });
      closers.push(() => upstreams.close());

      const publisher = crl;
      const kek = foundKek ?? (await loadKek({ file: kekFile, env: deps.env ?? {} }));
      const tokenService = await openTokenService({
        store,
        clock,
        kek,
        issuer: config.tokens.issuer ?? `https://gatehouse.${config.trustDomain}`,
        ttlSeconds: Math.round(config.tokens.ttl / 1000),
        rotateAfterMs: config.tokens.rotateAfter,
        isRevoked: (claims) => rset.isTokenRevoked(claims),
        onError: (e) => admin.log.error({ code: e.code }, `tokens: ${e.message}`),
      });
      tokens = tokenService;
      closers.push(() => tokenService.close());
      const audienceOf = (ns: string, svc: string): string => `spiffe://${config.trustDomain}/ns/${ns}/sa/${svc}`;
      // Bumped whenever a revocation (of any kind, certificates included) reaches this replica:
      // per-connection tokens are then re-minted.
      let tokenGeneration = 0;
      applyRevocation.push((r) => {
        tokenGeneration++;
        if (r.kind === 'token') tokenService.forgetToken(r.id);
        if (r.kind === 'user' || r.kind === 'service') tokenService.forgetSubject(r.id);
        if (r.kind === 'session' && r.subject !== undefined) tokenService.forgetSubject(r.subject);
      });

      if (serviceCfg !== undefined) {
      const creds = credsOf(serviceFiles);
      interface SocketToken {
        headers: Record<string, string>;
        refreshAt: number;
        generation: number;
      }
      const socketTokens = new WeakMap<TLSSocket, Map<string, SocketToken>>();
      const rolesOf = (p: Principal, ns: string): string[] => (p.kind === 'user' ? [...(p.roles[ns] ?? [])] : []);
      const certIdentity = serviceIdentity({ trustDomain: config.trustDomain, isRevoked: (s) => rset.isCertRevoked(s) });
      const identify = (req: IncomingMessage): Principal | GatehouseError => {
        const p = certIdentity(req);
        if (!(p instanceof GatehouseError) && p.kind === 'service' && rset.has('service', p.spiffeId)) return new GatehouseError('ERR_SERVICE_REVOKED');
        return p;
      };
      const listener = await createProxyListener({
        name: 'service',
        tls: { cert: creds.cert, key: creds.key, ca: ca.certPem, requestCert: true },
        routes: new RouteTable(config.routes),
        identify,
        authorizer: policy,
        audit,
        clock,
        metrics,
        upstreams,
        logger,
        trustDomain: config.trustDomain,
        gatewayPaths: [CRL_PATH, JWKS_PATH, TOKEN_PATH],
        registerGatewayRoutes: (app) => {
          app.get(CRL_PATH, async (_req, reply) => reply.type('application/pkix-crl').header('cache-control', 'max-age=60').send(publisher.pem()));
          app.get(JWKS_PATH, async (_req, reply) => reply.header('cache-control', tokenService.jwksCacheControl).send(tokenService.jwks()));
          // RFC 8693 token exchange: a token for an audience the caller may reach, bound to its certificate.
          app.post(TOKEN_PATH, async (request, reply) => {
            const who = identify(request.raw);
            const thumbprint = connectionThumbprint(request.raw);
            const event = {
              '@timestamp': new Date(clock.now()).toISOString(),
              'event.action': 'token.exchange',
              'source.ip': request.ip,
              'gatehouse.request_id': request.id,
            } as const;
            if (who instanceof GatehouseError || who.kind !== 'service' || thumbprint === undefined) {
              const err = who instanceof GatehouseError ? who : new GatehouseError('ERR_CERT_REQUIRED');
              audit.append({ ...event, 'event.outcome': 'failure', 'gatehouse.error_code': err.code });
              return reply.status(401).header('cache-control', 'no-store').send({ error: 'invalid_client', error_description: err.message });
            }
            const form = await readForm(request.raw);
            if (form instanceof GatehouseError) {
              audit.append({ ...event, 'event.outcome': 'failure', 'gatehouse.subject': who.spiffeId, 'gatehouse.error_code': form.code });
              return reply.status(400).header('cache-control', 'no-store').send({ error: 'invalid_request', error_description: form.message });
            }
            const result = await tokenExchange({
              form,
              caller: { spiffeId: who.spiffeId, namespace: who.namespace, service: who.service, certThumbprint: thumbprint },
              canReach: (aud) => {
                const target = parseSpiffeId(aud);
                return target.trustDomain === config.trustDomain && policy.canReach(who, target.namespace, target.service);
              },
              service: tokenService,
              trustDomain: config.trustDomain,
            });
            audit.append({
              ...event,
              'event.outcome': result.status === 200 ? 'success' : 'failure',
              'gatehouse.subject': who.spiffeId,
              ...(typeof form.audience === 'string' ? { 'gatehouse.audience': form.audience.slice(0, 300) } : {}),
              ...('error' in result.body ? { 'event.reason': result.body.error } : {}),
            });
            return reply.status(result.status).headers(result.headers).send(result.body);
          });
        },
        checkBearer: deps.withoutTokens
          ? undefined
          : async (token, a, req) => {
              const thumbprint = connectionThumbprint(req);
              // bound to this very connection's certificate, for exactly this upstream
              await tokenService.verify(token, { audience: audienceOf(a.route.namespace, a.route.service), requireBinding: true, ...(thumbprint !== undefined ? { certThumbprint: thumbprint } : {}) });
            },
        upstreamHeaders: deps.withoutTokens
          ? undefined
          : async (a, req) => {
              // A connection's identity is fixed, so its token per route is reused from here
              // without even a cache key computation, until a third of its life is left.
              const socket = req.socket as TLSSocket;
              const routeKey = `${a.route.namespace}/${a.route.service}`;
              const perRoute = socketTokens.get(socket);
              const hit = perRoute?.get(routeKey);
              if (hit !== undefined && clock.now() < hit.refreshAt && hit.generation === tokenGeneration) return hit.headers;
              const thumbprint = a.principal.kind === 'service' ? connectionThumbprint(req) : undefined;
              const minted = await tokenService.mint({
                subject: a.subject,
                audience: audienceOf(a.route.namespace, a.route.service),
                namespace: a.route.namespace,
                roles: rolesOf(a.principal, a.route.namespace),
                ...(thumbprint !== undefined ? { certThumbprint: thumbprint } : {}),
              });
              const header = a.route.tokenHeader ?? 'authorization';
              const headers = { [header]: header === 'authorization' ? `Bearer ${minted.token}` : minted.token };
              if (a.principal.kind === 'service') {
                const map = perRoute ?? new Map<string, SocketToken>();
                if (perRoute === undefined) socketTokens.set(socket, map);
                map.set(routeKey, { headers, refreshAt: minted.expiresAt - (config.tokens.ttl / 3), generation: tokenGeneration });
              }
              return headers;
            },
        admitConnection: (socket: TLSSocket) => {
          const { serial, spiffeUri } = peerFactsOf(socket);
          // rset watches every revoked/ key, the certificate list's included, and hears the bus too
          if (serial !== undefined && rset.isCertRevoked(serial)) return false;
          return spiffeUri === undefined || !rset.has('service', spiffeUri);
        },
        onConnectionRefused: (socket: TLSSocket) => {
          const { serial } = peerFactsOf(socket);
          metrics.tlsFailures.inc({ listener: 'service', reason: 'CERT_REVOKED' });
          audit.append({
            '@timestamp': new Date(clock.now()).toISOString(),
            'event.action': 'tls.handshake',
            'event.outcome': 'failure',
            'event.reason': 'CERT_REVOKED',
            'source.ip': socket.remoteAddress ?? 'unknown',
            'gatehouse.listener': 'service',
            'gatehouse.reasons': ['bad-certificate'],
            'gatehouse.error_code': 'ERR_CERT_REVOKED',
            ...(serial !== undefined ? { 'tls.client.x509.serial_number': serial } : {}),
          });
        },
      });
      service = listener;
      // A revocation from any replica closes this replica's open connections of that certificate or service.
      applyRevocation.push((r) => {
        const closed =
          r.kind === 'cert' ? listener.closeConnectionsOf(r.id) : r.kind === 'service' ? listener.closeConnectionsWhere((socket) => spiffeUriOf(socket) === r.id) : 0;
        if (closed > 0) log(`closed ${closed} service connection(s) of revoked ${r.kind}`);
      });
      if (certs !== undefined && serviceFiles === undefined) {
        const stopRenew = certs.onRenew((c) => listener.setCertificate(c.cert, c.key));
        closers.push(() => stopRenew());
      }
      closers.push(() => listener.close());
      }

      if (humanCfg !== undefined) {
        const h = await buildHumanListener({
          config,
          store,
          clock,
          logger,
          admin,
          audit,
          metrics,
          policy,
          upstreams,
          tokenService: deps.withoutTokens ? undefined : tokenService,
          creds: credsOf(humanFiles),
          audienceOf,
          kek,
          bus: deps.bus,
          revocations: rset,
        });
        applyRevocation.push((r) => {
          const closed = r.kind === 'session' || r.kind === 'user' ? h.listener.closeConnectionsTagged(`${r.kind}:${r.id}`) : 0;
          if (closed > 0) log(`closed ${closed} human connection(s) of revoked ${r.kind}`);
        });
        human = h.listener;
        sessions = h.sessions;
        closers.push(() => h.sessions.close());
        if (certs !== undefined && humanFiles === undefined) {
          const stopRenew = certs.onRenew((c) => h.listener.setCertificate(c.cert, c.key));
          closers.push(() => stopRenew());
        }
        closers.push(() => h.listener.close());
      }
      if (certs !== undefined) {
        const stopRenew = certs.onRenew((c) => upstreams.rotate({ ca: ca.certPem, cert: c.cert, key: c.key }));
        closers.push(() => stopRenew());
      }
    }
    const jwksSource = tokens;
    if (jwksSource !== undefined) {
      admin.get(JWKS_PATH, async (_req, reply) => reply.header('cache-control', jwksSource.jwksCacheControl).send(jwksSource.jwks()));
    }
    await admin.ready();
  } catch (err) {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    throw err;
  }
  closers.push(() => admin.close());

  return {
    config,
    admin,
    service,
    human,
    sessions,
    metrics,
    audit,
    policy,
    revocations,
    revocationSet,
    tokens,
    async listen() {
      const a = config.listeners.admin;
      await admin.listen({ host: a.address, port: a.port });
      const adminAddr = admin.server.address();
      const out: ListeningAddresses = {
        admin: typeof adminAddr === 'object' && adminAddr !== null ? { address: adminAddr.address, port: adminAddr.port } : { address: a.address, port: a.port },
      };
      if (service !== undefined && config.listeners.service !== undefined) {
        out.service = await service.listen(config.listeners.service.address, config.listeners.service.port);
      }
      if (human !== undefined && config.listeners.human !== undefined) {
        out.human = await human.listen(config.listeners.human.address, config.listeners.human.port);
      }
      return out;
    },
    async close() {
      // Listeners first (stop taking traffic), then what they use; audit flushes last.
      for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    },
  };
}
