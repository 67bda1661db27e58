// The service listener: the pipeline configured for services. mTLS with the Gatehouse CA,
// identity from the client certificate, a revoked certificate or service refused at the
// handshake, bearer tokens bound to the connection, a token minted per upstream and
// connection. Its own paths: the CRL, the JWKS and RFC 8693 token exchange.
import { GatehouseError } from '../errors.js';
import type { Authorizer, Principal } from '../contracts/authz.js';
import type { AuditSink } from '../contracts/audit.js';
import type { Clock } from '../lib/clock.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import { tokenExchangeRoute, TOKEN_PATH } from '../tokens/token-exchange-route.js';
import type { MintInput, MintedToken } from '../tokens/types.js';
import type { ConnectionLimits } from './connection.js';
import { serviceCredentials, type ServiceCredentials, type TokenIssuer } from './credentials.js';
import { certificateIdentity, type RevocationView } from './identify.js';
import { createPipeline, type ListenerTls, type Pipeline } from './listener.js';
import type { RouteTable } from './exchange.js';
import type { UpstreamClients } from './upstream.js';
import { CRL_PATH, GATEWAY_COOKIES, JWKS_PATH, OWN_ROUTE_DEADLINES } from './paths.js';
import type { FastifyServerOptions } from 'fastify';

export { CRL_PATH, JWKS_PATH, TOKEN_PATH };

export interface ServiceListenerOptions {
  tls: ListenerTls;
  limits: ConnectionLimits;
  routes: RouteTable;
  trustDomain: string;
  authorizer: Authorizer & { canReach(principal: Principal, namespace: string, service: string): boolean };
  revocations: RevocationView;
  tokens: TokenIssuer & { mint(input: MintInput): Promise<MintedToken>; jwks(): unknown; jwksCacheControl: string };
  /** Benchmarks only: forward without minting, and refuse bearer tokens. */
  withoutTokens?: boolean | undefined;
  tokenTtlMs: number;
  crlPem(): string;
  upstreams: UpstreamClients;
  audit: AuditSink;
  metrics: GatewayMetrics;
  clock: Clock;
  logger?: FastifyServerOptions['logger'];
}

export interface ServiceListener {
  pipeline: Pipeline;
  /** Drop every per-connection token (a revocation reached this replica). */
  credentials: ServiceCredentials;
}

export async function serviceListener(o: ServiceListenerOptions): Promise<ServiceListener> {
  const identifier = certificateIdentity({ trustDomain: o.trustDomain, clock: o.clock, revocations: o.revocations });
  const creds = serviceCredentials({ tokens: o.withoutTokens === true ? undefined : o.tokens, trustDomain: o.trustDomain, ttlMs: o.tokenTtlMs, clock: o.clock });
  const pipeline = await createPipeline(
    {
      name: 'service',
      tls: o.tls,
      limits: o.limits,
      routes: o.routes,
      identifier,
      authorizer: o.authorizer,
      credentials: creds,
      upstreams: o.upstreams,
      trustDomain: o.trustDomain,
      gatewayCookies: GATEWAY_COOKIES,
      ownRouteDeadlines: OWN_ROUTE_DEADLINES,
      audit: o.audit,
      metrics: o.metrics,
      clock: o.clock,
      logger: o.logger,
      gatewayPaths: [CRL_PATH, JWKS_PATH, TOKEN_PATH],
      // a revoked certificate or service never gets as far as a request
      admitConnection: (facts) =>
        facts.serial !== undefined && o.revocations.isCertRevoked(facts.serial) ? new GatehouseError('ERR_CERT_REVOKED')
        : facts.spiffeId !== undefined && o.revocations.has('service', facts.spiffeId) ? new GatehouseError('ERR_SERVICE_REVOKED')
        : undefined,
    },
    (app, p) => {
      app.get(CRL_PATH, async (_req, reply) => reply.type('application/pkix-crl').header('cache-control', 'max-age=60').send(o.crlPem()));
      const tokens = o.tokens;
      app.get(JWKS_PATH, async (_req, reply) => reply.header('cache-control', tokens.jwksCacheControl).send(tokens.jwks()));
      tokenExchangeRoute(app, {
        caller: (req) => {
          const who = p.identify(req);
          if (who instanceof GatehouseError) return who;
          const thumbprint = p.connections.factsOf(req.raw.socket)?.thumbprint;
          if (who.principal.kind !== 'service' || thumbprint === undefined) return new GatehouseError('ERR_CERT_REQUIRED');
          return { spiffeId: who.principal.spiffeId, namespace: who.principal.namespace, service: who.principal.service, certThumbprint: thumbprint };
        },
        canReach: (caller, namespace, service) =>
          o.authorizer.canReach({ kind: 'service', spiffeId: caller.spiffeId, namespace: caller.namespace, service: caller.service, certSerial: '' }, namespace, service),
        tokens,
        trustDomain: o.trustDomain,
        audit: o.audit,
        clock: o.clock,
      });
      return undefined;
    },
  );
  return { pipeline, credentials: creds };
}
