// The request pipeline, composed: one fastify app over TLS whose every request — plain or
// WebSocket upgrade, service or human listener — takes the same stages in the same order:
//
//   connection  facts at the handshake; timeouts and a per-address cap   (connection.ts)
//   identify    certificate or session; revocation and expiry            (identify.ts)
//   admit       path safety, route, policy                               (admit.ts)
//   hygiene     request hygiene decided by the route                     (hygiene.ts)
//   credentials inbound bearer check; the token minted for the upstream  (credentials.ts)
//   audit       exactly one event per decision                           (audit.ts)
//   forward     the request and its answer, response hygiene included    (forward.ts)
//
// The two listeners differ only in the stages they are given (service.ts, human.ts). The
// gateway's own paths (CRL, JWKS, login pages, console) are fastify routes registered by the
// listener's configuration; everything else reaches one internal route, so the router never
// interprets a client's path.
import { randomUUID } from 'node:crypto';
import { METHODS, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { GatehouseError, isGatehouseError } from '../errors.js';
import type { Authorizer } from '../contracts/authz.js';
import type { AuditSink } from '../contracts/audit.js';
import type { Clock } from '../lib/clock.js';
import { errorBody, installErrorHandlers } from '../lib/http-errors.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import { admit } from './admit.js';
import { DecisionLog, type Refusal } from './audit.js';
import { connectionServerOptions, connectionTlsOptions, installConnectionStage, type ConnectionFacts, type ConnectionLimits, type ConnectionStage } from './connection.js';
import { credentials, type Credentials } from './credentials.js';
import { newExchange, type Exchange, type Identity, type ListenerName } from './exchange.js';
import { forwardHttp, forwardUpgrade, refuseUpgrade, type ForwardOptions } from './forward.js';
import { requestHygiene } from './headers.js';
import { watchRequest, watchResponse, type RequestDeadlines } from './forward.js';
import type { Identifier } from './identify.js';
import type { RouteTable } from './exchange.js';
import type { UpstreamClients } from './upstream.js';

/** Internal route every proxied request is rewritten to; the handler reads the original target. */
const PROXY_ROUTE = '/.gatehouse/__proxy';

export interface ListenerTls {
  cert: string;
  key: string;
  /** CA bundle for client certificates (service listener). */
  ca?: string;
  /** Require and verify a client certificate during the handshake. */
  requestCert: boolean;
}

/** Answers a refused request differently (a browser redirect, a page); undefined keeps the JSON error. */
export type RefusalResponder = (error: GatehouseError, request: FastifyRequest, reply: FastifyReply, target: string) => FastifyReply | undefined;

export interface PipelineOptions {
  name: ListenerName;
  tls: ListenerTls;
  limits: ConnectionLimits;
  routes: RouteTable;
  identifier: Identifier;
  authorizer: Authorizer;
  credentials: Credentials;
  upstreams: UpstreamClients;
  trustDomain: string;
  /** Cookies of the gateway's own: never sent to an upstream, never set by one. */
  gatewayCookies: readonly string[];
  audit: AuditSink;
  metrics: GatewayMetrics;
  clock: Clock;
  logger?: FastifyServerOptions['logger'];
  /** Exact paths the gateway answers itself (CRL, JWKS, token exchange). */
  gatewayPaths: readonly string[];
  /** Every path under this prefix is the gateway's own (human listener: /.gatehouse/), query strings included. */
  gatewayPrefix?: string;
  /** At the handshake: a GatehouseError refuses the connection (a revoked certificate). */
  admitConnection?: (facts: ConnectionFacts) => GatehouseError | undefined;
  /** Deadlines of a request to the gateway's own routes (small bodies: sign-in steps, token exchange). */
  ownRouteDeadlines: RequestDeadlines;
  /** Response headers the gateway answers for on this listener (HSTS; '' drops one: Clear-Site-Data). */
  gatewayHeaders?: Readonly<Record<string, string>>;
}

export interface Forwarded {
  host: string;
  method: string;
  /** The original request target (path and query). */
  target: string;
}

export interface Pipeline {
  readonly app: FastifyInstance;
  readonly connections: ConnectionStage;
  /** Forward-auth: the whole decision without forwarding (one audit event); the headers a front proxy passes on. */
  decide(request: FastifyRequest, forwarded: Forwarded): Promise<{ ok: true; headers: Record<string, string> } | { ok: false; error: GatehouseError }>;
  /** Who is behind a request to the gateway's own routes (admin API, console); tags the connection like a proxied request. */
  identify(request: FastifyRequest): Identity | GatehouseError;
  /** Destroys every connection (and WebSocket) carrying this label: `session:<sid>`, `user:<id>`, `cert:<serial>`, `service:<spiffe>`. */
  closeTagged(tag: string): number;
  closeWhere(predicate: (facts: ConnectionFacts, tags: ReadonlySet<string>) => boolean): number;
  /** Swap the listener's certificate without dropping connections. */
  setCertificate(cert: string, key: string): void;
  listen(address: string, port: number): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}

/** Registers the gateway's own routes; may return how refusals are answered to browsers. */
export type GatewayRoutes = (app: FastifyInstance, pipeline: Pipeline) => Promise<RefusalResponder | undefined> | RefusalResponder | undefined;

export async function createPipeline(o: PipelineOptions, registerGatewayRoutes?: GatewayRoutes): Promise<Pipeline> {
  const gatewayPaths = new Set(o.gatewayPaths);
  const prefix = o.gatewayPrefix;
  const isGatewayPath = (url: string): boolean => gatewayPaths.has(url) || (prefix !== undefined && url.startsWith(prefix));
  const log = new DecisionLog({ listener: o.name, audit: o.audit, metrics: o.metrics, clock: o.clock });
  const forwarding: ForwardOptions = { upstreams: o.upstreams, trustDomain: o.trustDomain, metrics: o.metrics, gatewayCookies: o.gatewayCookies, ...(o.gatewayHeaders !== undefined ? { gatewayHeaders: o.gatewayHeaders } : {}) };
  /** Connections answered `connection: close` after a refusal: a request pipelined behind it is not decided again, it is refused. */
  const closing = new WeakSet<object>();
  /** The decision in progress per connection (pipelined requests wait for the one before). */
  const deciding = new WeakMap<object, Promise<void>>();
  let respond: RefusalResponder | undefined;

  const app = Fastify({
    logger: o.logger ?? false,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // per-request logs would repeat the audit log (and URLs may carry secrets in queries)
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    rewriteUrl: (req) => (isGatewayPath(req.url ?? '') ? (req.url ?? '/') : PROXY_ROUTE),
    https: {
      cert: o.tls.cert,
      key: o.tls.key,
      ...(o.tls.ca !== undefined ? { ca: o.tls.ca } : {}),
      requestCert: o.tls.requestCert,
      rejectUnauthorized: o.tls.requestCert,
      minVersion: 'TLSv1.2',
      // a real-time backstop; the connection stage's own deadline runs on the clock
      ...connectionTlsOptions(o.limits),
    },
    // 100 MB uploads stream through; fastify never buffers a proxied body
    bodyLimit: 1024 * 1024,
    ...connectionServerOptions(o.limits, { onRefused: (r) => log.connectionRefused(r), now: () => o.clock.now() }),
  });
  installErrorHandlers(app);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  const connections = installConnectionStage(app.server, {
    limits: o.limits,
    clock: o.clock,
    ...(o.admitConnection !== undefined ? { admit: o.admitConnection } : {}),
    onRefused: (r) => log.connectionRefused(r),
    onExpired: (facts) => log.certificateExpired(facts),
  });

  const exchangeOf = (req: IncomingMessage, id: string, target: string, forwarded?: Forwarded): Exchange =>
    newExchange({ id, listener: o.name, req, target, connection: connections.factsOf(req.socket), ...(forwarded !== undefined ? { forwarded } : {}) });

  /** Admit, then the route's request hygiene, then credentials: the upstream's headers or the refusal. */
  async function decideExchange(ex: Exchange): Promise<Record<string, string> | Refusal> {
    const started = process.hrtime.bigint();
    const refused = admit(ex, { routes: o.routes, identifier: o.identifier, authorizer: o.authorizer });
    o.metrics.decisionSeconds.observe({ listener: o.name }, Number(process.hrtime.bigint() - started) / 1e9);
    // the connection carries this identity from now on: when it ends, the connection ends (a
    // front proxy's forward-auth connection carries many people's requests: it is not theirs)
    if (ex.identity !== undefined && !ex.forwardAuth) {
      for (const tag of ex.identity.tags) connections.tag(ex.req.socket, tag);
      if (ex.identity.endBy !== undefined) connections.endBy(ex.req.socket, ex.identity.endBy);
    }
    if (refused !== undefined) return refused;
    const unclean = ex.forwardAuth ? undefined : requestHygiene(ex);
    if (unclean !== undefined) return unclean;
    return credentials(ex, o.credentials);
  }

  const isRefusal = (r: Record<string, string> | Refusal): r is Refusal => r.error instanceof GatehouseError;

  if (o.identifier.prepare !== undefined) {
    const prepare = o.identifier.prepare;
    app.addHook('onRequest', async (req) => prepare(req.raw));
  }
  // the gateway's own routes: their (small) bodies must come in time too, and an identity that
  // ends while one runs (a logout) closes the connection after its answer, not before
  app.addHook('onRequest', async (req) => {
    if (req.url === PROXY_ROUTE) return;
    connections.markOwnRequest(req.raw.socket);
    watchRequest(req.raw, o.ownRouteDeadlines, o.clock, (why) => log.ownRequestAborted({ requestId: req.id, method: req.method, path: req.url.split('?')[0] ?? '', sourceIp: req.ip, why }));
  });
  // the rate limiter answers before any handler: its refusal is audited here, once
  app.addHook('onError', async (req, _reply, err) => {
    if (isGatehouseError(err, 'ERR_RATE_LIMITED')) log.rateLimited({ requestId: req.id, method: req.method, path: req.url.split('?')[0] ?? '', sourceIp: req.ip, error: err });
  });

  const pipeline: Pipeline = {
    app,
    connections,
    async decide(request, forwarded) {
      const ex = exchangeOf(request.raw, request.id, forwarded.target, forwarded);
      const r = await decideExchange(ex);
      if (isRefusal(r)) {
        log.refused(ex, r);
        return { ok: false, error: r.error };
      }
      log.allowed(ex);
      log.answered(ex, 200);
      return { ok: true, headers: { ...r, 'x-gatehouse-subject': ex.identity!.subject, 'x-gatehouse-namespace': ex.route!.namespace, 'x-gatehouse-request-id': ex.id } };
    },
    identify(request) {
      const ex = exchangeOf(request.raw, request.id, request.url);
      const who = o.identifier.identify(ex);
      if (!(who instanceof GatehouseError)) for (const tag of who.tags) connections.tag(request.raw.socket, tag);
      return who;
    },
    closeTagged: (tag) => connections.closeTagged(tag),
    closeWhere: (predicate) => connections.closeWhere(predicate),
    setCertificate(cert, key) {
      app.server.setSecureContext({ cert, key, ...(o.tls.ca !== undefined ? { ca: o.tls.ca } : {}), minVersion: 'TLSv1.2' });
    },
    async listen(address, port) {
      await app.listen({ host: address, port });
      const a = app.server.address();
      if (a === null || typeof a === 'string') throw new GatehouseError('ERR_INTERNAL', 'listener has no address');
      return { address: a.address, port: a.port };
    },
    async close() {
      // stop accepting, then drop keep-alive connections (a browser may hold one for minutes)
      const closing = app.close();
      connections.close();
      app.server.closeAllConnections();
      await closing;
    },
  };

  if (registerGatewayRoutes !== undefined) respond = await registerGatewayRoutes(app, pipeline);

  function refuse(ex: Exchange, r: Refusal, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    log.refused(ex, r);
    const answered = respond?.(r.error, request, reply, ex.target);
    if (answered !== undefined) return answered;
    // a refused request's body is not read: close the connection rather than drain it
    if (r.error.status !== 404) {
      closing.add(ex.req.socket);
      void reply.header('connection', 'close');
    }
    return reply.status(r.error.status).send(errorBody(r.error, ex.id));
  }

  // every method Node parses reaches the pipeline (and its audit), not fastify's unaudited 404
  for (const method of METHODS) if (method !== 'CONNECT' && !app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true });
  app.all(PROXY_ROUTE, async (request, reply) => {
    const raw = request.raw as IncomingMessage & { originalUrl?: string };
    const ex = exchangeOf(raw, request.id, raw.originalUrl ?? raw.url ?? '');
    // requests pipelined on one connection are decided in order: one queued behind a refusal
    // (answered `connection: close`) is refused too, never forwarded with its answer thrown away
    const socket = raw.socket;
    const before = deciding.get(socket);
    let decided!: () => void;
    const mine = new Promise<void>((resolve) => (decided = resolve));
    deciding.set(socket, mine);
    if (before !== undefined) await before;
    let r: Record<string, string> | Refusal;
    try {
      r = closing.has(socket) ? { error: new GatehouseError('ERR_BAD_REQUEST', 'the connection is closing after a refusal'), reasons: ['bad-path'] } : await decideExchange(ex);
      if (isRefusal(r) && r.error.status !== 404) closing.add(socket);
    } finally {
      decided();
      if (deciding.get(socket) === mine) deciding.delete(socket);
    }
    if (isRefusal(r)) return refuse(ex, r, request, reply);
    log.allowed(ex);
    watchRequest(raw, ex.route!, o.clock, (why) => log.requestAborted(ex, why));
    log.answered(ex, await forwardHttp(ex, reply, r, forwarding));
    // a client that stops reading the answer would hold its connection and an upstream one
    watchResponse(reply.raw, ex.route!, o.clock, (why) => log.requestAborted(ex, why));
    return reply;
  });

  // CONNECT (a tunnel) is never the gateway's business: answered and audited, not dropped
  app.server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    const ex = exchangeOf(req, randomUUID(), req.url ?? '');
    const error = new GatehouseError('ERR_BAD_REQUEST', 'CONNECT is not served');
    log.refused(ex, { error, reasons: ['bad-path'], extra: { 'event.reason': 'connect-method' } });
    refuseUpgrade(socket, error, ex.id);
  });

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const ex = exchangeOf(req, randomUUID(), req.url ?? '');
    void (async () => {
      let r: Record<string, string> | Refusal;
      if (isGatewayPath(ex.target)) {
        r = { error: new GatehouseError('ERR_BAD_REQUEST', 'no upgrade on gateway paths'), reasons: ['unknown-route'] };
      } else {
        await o.identifier.prepare?.(req).catch(() => undefined);
        r = await decideExchange(ex);
      }
      if (isRefusal(r)) {
        log.refused(ex, r);
        refuseUpgrade(socket, r.error, ex.id);
        return;
      }
      log.allowed(ex);
      // from here the WebSocket lives as long as its identity (and the upstream), not an idle timer
      connections.markUpgraded(socket);
      log.answered(ex, await forwardUpgrade(ex, socket, head, r, forwarding));
    })().catch((err: unknown) => {
      app.log.error({ err }, 'upgrade failed');
      socket.destroy();
    });
  });

  await app.ready();
  return pipeline;
}
