// Wiring of the human listener (part of app.ts's job, kept in its own file): sessions from
// authenticate, policy from authorize, the proxy listener from proxy, tokens for upstreams.
// People reach route hosts over TLS without client certificates; the session cookie is the
// identity, the same policy plane decides (roles for the target namespace only), and upstreams
// get a minted token with amr/acr/sid plus identity headers.
import { X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest, FastifyServerOptions } from 'fastify';
import type { GatehouseConfig } from './config/index.js';
import { GatehouseError } from './errors.js';
import type { Clock } from './lib/clock.js';
import { gaugeOf, type GatewayMetrics } from './lib/metrics.js';
import type { Store } from './store/index.js';
import type { AuditWriter } from './audit/writer.js';
import type { PolicyEngine } from './authorize/index.js';
import {
  SessionManager,
  Regulator,
  humanIdentity,
  humanRoutes,
  hostOnly,
  originCheck,
  readCookie,
  LOGIN_COOKIE,
  SESSION_COOKIE,
  STATE_COOKIE,
  type HumanRoutes,
  type SessionView,
} from './authenticate/index.js';
import { createProxyListener, type ProxyListener } from './proxy/listener.js';
import { RouteTable, admit, type Admission } from './proxy/admit.js';
import type { UpstreamClients } from './proxy/upstream.js';
import type { TokenService } from './tokens/index.js';
import type { Bus } from './bus/index.js';
import type { Principal } from './contracts/authz.js';
import { revocationApiRoutes, type RevocationSet } from './revocation/index.js';
import { auditApiRoutes } from './admin/audit-api.js';
import { consoleRoutes } from './admin/console/routes.js';

const JWKS_PATH = '/.well-known/jwks.json';
const GATEWAY_COOKIES = [SESSION_COOKIE, LOGIN_COOKIE, STATE_COOKIE];

type Admitted = Extract<Admission, { ok: true }>;

export interface HumanListenerDeps {
  config: GatehouseConfig;
  store: Store;
  clock: Clock;
  logger: FastifyServerOptions['logger'];
  admin: FastifyInstance;
  audit: AuditWriter;
  metrics: GatewayMetrics;
  policy: PolicyEngine;
  upstreams: UpstreamClients;
  /** Undefined: forward without a minted token (benchmarks). */
  tokenService: TokenService | undefined;
  creds: { cert: string; key: string };
  audienceOf(ns: string, svc: string): string;
  kek: KeyObject;
  /** Revocations: a revoked user or session is refused and its connections are closed. */
  revocations?: RevocationSet | undefined;
  /** For the admin API's revoke broadcast. */
  bus?: Bus | undefined;
}

async function loadRoots(files: readonly string[]): Promise<X509Certificate[]> {
  const out: X509Certificate[] = [];
  for (const file of files) {
    const pem = await readFile(file, 'utf8').catch((cause: unknown) => {
      throw new GatehouseError('ERR_CONFIG_INVALID', `webauthn.attestationRoots: cannot read ${file}`, { cause });
    });
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) throw new GatehouseError('ERR_CONFIG_INVALID', `webauthn.attestationRoots: ${file} holds no PEM certificate`);
    for (const b of blocks) out.push(new X509Certificate(b));
  }
  return out;
}

export async function buildHumanListener(d: HumanListenerDeps): Promise<{ listener: ProxyListener; sessions: SessionManager }> {
  const { config, store, clock, audit } = d;
  const w = config.webauthn;
  if (w === undefined) throw new GatehouseError('ERR_CONFIG_INVALID', `${config.source}: listeners.human needs webauthn (rpId, origins)`);
  const sessions = await SessionManager.open({
    store,
    clock,
    idleMs: config.sessions.idleTimeout,
    absoluteMs: config.sessions.absoluteTimeout,
    onError: (e) => d.admin.log.error({ err: e.message }, 'sessions'),
  });
  gaugeOf(d.metrics, 'gatehouse_sessions_cached', "People's sessions (and their per-host aliases) this replica holds in memory", () => sessions.size);
  try {
    const sessionIdentity = humanIdentity(sessions);
    const revoked = d.revocations;
    const tagger: { listener?: ProxyListener } = {};
    /** The session, then revocation (user, sid); admitted connections are labelled so a revocation can close them. */
    const identify = (req: IncomingMessage, host: string): Principal | GatehouseError => {
      const p = sessionIdentity.identify(req, host);
      if (p instanceof GatehouseError) return p;
      const view = sessionIdentity.viewOf(req);
      if (view !== undefined) {
        if (revoked?.has('user', view.userId)) return new GatehouseError('ERR_USER_REVOKED');
        if (revoked?.has('session', view.sid)) return new GatehouseError('ERR_SESSION_REVOKED');
        tagger.listener?.tagConnection(req.socket, `session:${view.sid}`);
        tagger.listener?.tagConnection(req.socket, `user:${view.userId}`);
      }
      return p;
    };
    const identity = { identify, viewOf: sessionIdentity.viewOf };
    /** The signed-in person behind a gateway API request (admin APIs, console). */
    const caller = (req: FastifyRequest): SessionView | GatehouseError => {
      const p = identify(req.raw, hostOnly(req.headers.host));
      if (p instanceof GatehouseError) return p;
      return identity.viewOf(req.raw) ?? new GatehouseError('ERR_SESSION_REQUIRED');
    };
    const publicPort = new URL(config.login.origin ?? w.origins[0]!).port;
    const routeHosts = config.routes.map((r) => r.host.toLowerCase());
    const routes = new RouteTable(config.routes);
    const regulator = new Regulator(store, clock, config.login.lockout);
    const roots = await loadRoots(w.attestationRoots);

    /** Step-up, the minted token and the identity headers for one admitted request. */
    const upstreamHeaders = async (a: Admitted, view: SessionView | undefined): Promise<Record<string, string>> => {
      if (view === undefined) throw new GatehouseError('ERR_SESSION_REQUIRED');
      const stepUp = a.route.stepUp;
      // a route with stepUp wants a WebAuthn assertion at most that old
      if (stepUp !== undefined && clock.now() - view.lastWebAuthnAt > stepUp) {
        throw new GatehouseError('ERR_STEP_UP_REQUIRED', `this application wants a security-key confirmation at most ${Math.round(stepUp / 1000)} s old`);
      }
      const roles = view.roles[a.route.namespace] ?? [];
      const headers: Record<string, string> = {
        'x-gatehouse-user': view.userId,
        'x-gatehouse-roles': roles.join(','),
        'x-gatehouse-amr': view.amr.join(','),
        'x-gatehouse-acr': view.acr,
        'x-gatehouse-sid': view.sid,
      };
      if (d.tokenService !== undefined) {
        const minted = await d.tokenService.mint({
          subject: view.userId,
          audience: d.audienceOf(a.route.namespace, a.route.service),
          namespace: a.route.namespace,
          roles,
          amr: view.amr,
          acr: view.acr,
          sid: view.sid,
        });
        const header = a.route.tokenHeader ?? 'authorization';
        headers[header] = header === 'authorization' ? `Bearer ${minted.token}` : minted.token;
      }
      return headers;
    };

    let handle: HumanRoutes | undefined;
    const admitDeps = { listener: 'human' as const, routes, identify: identity.identify, authorizer: d.policy, audit, clock };
    const listener = await createProxyListener({
      name: 'human',
      tls: { cert: d.creds.cert, key: d.creds.key, requestCert: false },
      routes,
      identify: identity.identify,
      authorizer: d.policy,
      audit,
      clock,
      metrics: d.metrics,
      upstreams: d.upstreams,
      logger: d.logger,
      trustDomain: config.trustDomain,
      gatewayPaths: [JWKS_PATH],
      gatewayPrefix: '/.gatehouse/',
      stripCookies: GATEWAY_COOKIES,
      registerGatewayRoutes: async (app) => {
        // a session created on another replica a moment ago may not have reached this one's watch yet
        app.addHook('onRequest', async (req) => sessions.ensure(readCookie(req.headers, SESSION_COOKIE)));
        // an upstream must not set (fixate) the gateway's own cookies
        app.addHook('onSend', async (req, reply, payload) => {
          if (req.url.startsWith('/.gatehouse/')) return payload;
          const set = reply.getHeader('set-cookie');
          if (set === undefined) return payload;
          const list = (Array.isArray(set) ? set : [String(set)]).filter((c) => !GATEWAY_COOKIES.some((n) => c.trimStart().startsWith(`${n}=`)));
          if (list.length === 0) reply.removeHeader('set-cookie');
          else void reply.header('set-cookie', list);
          return payload;
        });
        const tokenService = d.tokenService;
        if (tokenService !== undefined) app.get(JWKS_PATH, async (_req, reply) => reply.header('cache-control', tokenService.jwksCacheControl).send(tokenService.jwks()));
        if (revoked !== undefined) {
          // POST /.gatehouse/admin/api/revoke: security-admin with a fresh MFA session, Origin-checked, audited
          auditApiRoutes(app, { store, clock, audit, caller });
          // GET /.gatehouse/admin: the security console (audit, sessions, segmentation graph, explain)
          consoleRoutes(app, {
            store,
            clock,
            audit,
            policy: () => d.policy.state,
            caller,
            refuse: (err, req, reply) => handle?.refuse(err, req, reply, req.url),
          });
          await revocationApiRoutes(app, {
            store,
            bus: d.bus,
            clock,
            audit,
            onError: (e) => d.admin.log.warn({ err: e.message }, 'revocation'),
            checkOrigin: originCheck({ origins: w.origins, routeHosts, loginOrigin: config.login.origin, publicPort }),
            caller,
          });
        }
        handle = await humanRoutes(app, {
          store,
          clock,
          kek: d.kek,
          sessions,
          regulator,
          audit,
          rp: { id: w.rpId, name: w.rpName, origins: w.origins },
          attestation: { allowedAAGUIDs: w.allowedAAGUIDs?.map((a) => a.toLowerCase()), requireAttestation: w.requireAttestation, roots },
          challengeTtlMs: w.challengeTtl,
          mfa: { require: config.mfa.require, ...(config.mfa.roles !== undefined ? { roles: config.mfa.roles } : {}) },
          pendingTtlMs: config.login.pendingTtl,
          sessionAbsoluteMs: config.sessions.absoluteTimeout,
          rateLimit: { max: config.login.rateLimit.max, windowMs: config.login.rateLimit.window },
          loginOrigin: config.login.origin,
          routeHosts,
          publicPort,
          trustedProxies: config.login.forwardAuth?.trustedProxies,
          verifyForwarded: async (req, fwd) => {
            const a = admit(req.raw, fwd.target, req.id, admitDeps, { host: hostOnly(fwd.host), method: fwd.method });
            if (!a.ok) return { ok: false, error: a.error };
            try {
              const headers = await upstreamHeaders(a, identity.viewOf(req.raw));
              audit.append({ ...a.event, 'gatehouse.forward_auth': true });
              return { ok: true, headers: { ...headers, 'x-gatehouse-subject': a.subject, 'x-gatehouse-namespace': a.route.namespace, 'x-gatehouse-request-id': req.id } };
            } catch (err) {
              const ge = err instanceof GatehouseError ? err : new GatehouseError('ERR_INTERNAL', undefined, { cause: err });
              audit.append({ ...a.event, 'event.outcome': 'failure', 'gatehouse.forward_auth': true, 'gatehouse.error_code': ge.code, 'http.response.status_code': ge.status });
              return { ok: false, error: ge };
            }
          },
        });
      },
      onRefused: (error, request, reply, target) => handle?.refuse(error, request, reply, target),
      // a bearer token is not an identity here (the session is); it is dropped unless the route passes Authorization on
      checkBearer: async () => undefined,
      upstreamHeaders: async (a, req: IncomingMessage) => upstreamHeaders(a, identity.viewOf(req)),
    });
    tagger.listener = listener;
    return { listener, sessions };
  } catch (err) {
    await sessions.close();
    throw err;
  }
}
