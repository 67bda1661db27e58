// The human listener: the pipeline configured for people. TLS without client certificates; the
// session cookie is the identity (fetched first when another replica created it a moment ago),
// the same policy plane decides with the person's roles for the target namespace only, and
// upstreams get a minted token with amr/acr/sid plus identity headers. Everything under
// /.gatehouse/ is the gateway's own: sign-in, enrollment, step-up, forward-auth, the console
// and the admin APIs. Refused browser requests are answered with a redirect or a page.
import { X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { FastifyServerOptions } from 'fastify';
import type { GatehouseConfig } from '../config/index.js';
import { GatehouseError } from '../errors.js';
import type { Authorizer } from '../contracts/authz.js';
import type { AuditSink } from '../contracts/audit.js';
import type { Clock } from '../lib/clock.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import type { Store } from '../store/index.js';
import type { Bus } from '../bus/index.js';
import type { PolicyState } from '../authorize/index.js';
import type {
  SessionManager} from '../authenticate/index.js';
import {
  Regulator,
  humanRoutes,
  originCheck,
  readCookie,
  SESSION_COOKIE,
  acrSatisfies,
} from '../authenticate/index.js';
import { revocationApiRoutes, type RevocationSet } from '../revocation/index.js';
import { auditApiRoutes } from '../admin/audit-api.js';
import { consoleRoutes } from '../admin/console/routes.js';
import type { ConnectionLimits } from './connection.js';
import { humanCredentials, type TokenIssuer } from './credentials.js';
import type { SessionFacts } from './exchange.js';
import { sessionIdentity } from './identify.js';
import { createPipeline, type Pipeline } from './listener.js';
import type { RouteTable } from './exchange.js';
import { GATEWAY_COOKIES, HUMAN_GATEWAY_HEADERS, JWKS_PATH, OWN_ROUTE_DEADLINES } from './paths.js';
import type { UpstreamClients } from './upstream.js';

export interface HumanListenerOptions {
  config: GatehouseConfig;
  routes: RouteTable;
  trustDomain: string;
  limits: ConnectionLimits;
  store: Store;
  clock: Clock;
  logger: FastifyServerOptions['logger'];
  audit: AuditSink;
  metrics: GatewayMetrics;
  policy: Authorizer & { readonly state: PolicyState | undefined };
  sessions: SessionManager;
  upstreams: UpstreamClients;
  tokens: TokenIssuer & { jwks(): unknown; jwksCacheControl: string };
  /** Benchmarks only: forward without minting. */
  withoutTokens?: boolean | undefined;
  creds: { cert: string; key: string };
  kek: KeyObject;
  revocations: RevocationSet;
  bus: Bus;
  onError(what: string): (err: Error) => void;
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

export async function humanListener(o: HumanListenerOptions): Promise<Pipeline> {
  const { config, store, clock, audit, sessions } = o;
  const w = config.webauthn;
  if (w === undefined) throw new GatehouseError('ERR_CONFIG_INVALID', `${config.source}: listeners.human needs webauthn (rpId, origins)`);
  const publicPort = new URL(config.login.origin ?? w.origins[0]!).port;
  const routes = o.routes;
  const routeHosts = routes.hosts;
  const roots = await loadRoots(w.attestationRoots);
  const identifier = sessionIdentity({ sessions, revocations: o.revocations, readCookie: (req) => readCookie(req.headers, SESSION_COOKIE) });

  return createPipeline(
    {
      name: 'human',
      tls: { cert: o.creds.cert, key: o.creds.key, requestCert: false },
      limits: o.limits,
      routes,
      identifier,
      authorizer: o.policy,
      credentials: humanCredentials({ tokens: o.withoutTokens === true ? undefined : o.tokens, trustDomain: config.trustDomain, clock, acrSatisfies }),
      upstreams: o.upstreams,
      trustDomain: config.trustDomain,
      gatewayCookies: GATEWAY_COOKIES,
      ownRouteDeadlines: OWN_ROUTE_DEADLINES,
      gatewayHeaders: HUMAN_GATEWAY_HEADERS,
      audit,
      metrics: o.metrics,
      clock,
      logger: o.logger,
      gatewayPaths: [JWKS_PATH],
      gatewayPrefix: '/.gatehouse/',
    },
    async (app, pipeline) => {
      /** The signed-in person behind a gateway API request (admin APIs, console). */
      const caller = (req: Parameters<typeof pipeline.identify>[0]): SessionFacts | GatehouseError => {
        const who = pipeline.identify(req);
        if (who instanceof GatehouseError) return who;
        return who.session ?? new GatehouseError('ERR_SESSION_REQUIRED');
      };
      const tokens = o.tokens;
      app.get(JWKS_PATH, async (_req, reply) => reply.header('cache-control', tokens.jwksCacheControl).send(tokens.jwks()));
      const human = await humanRoutes(app, {
        store,
        clock,
        kek: o.kek,
        sessions,
        regulator: new Regulator(store, clock, config.login.lockout),
        audit,
        rp: { id: w.rpId, name: w.rpName, origins: w.origins },
        attestation: { allowedAAGUIDs: w.allowedAAGUIDs?.map((a) => a.toLowerCase()), requireAttestation: w.requireAttestation, roots },
        challengeTtlMs: w.challengeTtl,
        mfa: { require: config.mfa.require, ...(config.mfa.roles !== undefined ? { roles: config.mfa.roles } : {}) },
        allowSoftwareTotp: config.totp.allowSoftware,
        pendingTtlMs: config.login.pendingTtl,
        sessionAbsoluteMs: config.sessions.absoluteTimeout,
        rateLimit: { max: config.login.rateLimit.max, windowMs: config.login.rateLimit.window },
        loginOrigin: config.login.origin,
        routeHosts,
        publicPort,
        trustedProxies: config.login.forwardAuth?.trustedProxies,
        // forward-auth: the whole decision for a request a front proxy describes, audited once
        verifyForwarded: async (req, fwd) => pipeline.decide(req, fwd),
      });
      // POST /.gatehouse/admin/api/revoke: security-admin with a fresh MFA session, Origin-checked, audited
      auditApiRoutes(app, { store, clock, audit, caller });
      // GET /.gatehouse/admin: the security console (audit, sessions, segmentation graph, explain)
      consoleRoutes(app, { store, clock, audit, policy: () => o.policy.state, caller, refuse: (err, req, reply) => human.refuse(err, req, reply, req.url) });
      await revocationApiRoutes(app, {
        store,
        bus: o.bus,
        clock,
        audit,
        onError: o.onError('revocation'),
        checkOrigin: originCheck({ origins: w.origins, routeHosts, loginOrigin: config.login.origin, publicPort }),
        caller,
      });
      return (error, request, reply, target) => human.refuse(error, request, reply, target);
    },
  );
}
