// A proxy listener (the service mTLS listener; the human listener later): fastify over TLS,
// every non-gateway path goes through admit() and then to the upstream, streaming both ways.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { GatehouseError } from '../errors.js';
import { errorBody, installErrorHandlers } from '../lib/http-errors.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import type { AuditSink } from '../contracts/audit.js';
import type { Clock } from '../lib/clock.js';
import { admit, clientIp, type Admission, type AdmitDeps } from './admit.js';
import { forwardHttp, forwardUpgrade, refuseUpgrade } from './forward.js';
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

export interface ProxyListenerOptions extends Omit<AdmitDeps, 'listener'> {
  name: 'service' | 'human';
  trustDomain: string;
  tls: ListenerTls;
  upstreams: UpstreamClients;
  metrics: GatewayMetrics;
  audit: AuditSink;
  clock: Clock;
  logger?: FastifyServerOptions['logger'];
  /** Exact paths the gateway answers itself (CRL, JWKS, ...): registered by the caller. */
  gatewayPaths: readonly string[];
  registerGatewayRoutes?: (app: FastifyInstance) => void | Promise<void>;
  /** Called for each verified TLS connection; return false to close it (e.g. a revoked certificate). */
  admitConnection?: (socket: TLSSocket) => boolean;
  /** Called when a TLS connection is closed by admitConnection returning false. */
  onConnectionRefused?: (socket: TLSSocket) => void;
  /** Checks a bearer token the caller presented (e.g. binding to this connection); throws a GatehouseError to refuse. */
  checkBearer?: ((token: string, admission: Admitted, req: IncomingMessage) => Promise<void>) | undefined;
  /** Headers for the upstream (the token minted for it); throws a GatehouseError to refuse. */
  upstreamHeaders?: ((admission: Admitted, req: IncomingMessage) => Promise<Record<string, string>>) | undefined;
  /** Every path under this prefix is the gateway's own (human listener: /.gatehouse/), query strings included. */
  gatewayPrefix?: string;
  /** Answers a refused request differently (a browser redirect, a page); undefined keeps the JSON error. */
  onRefused?: (error: GatehouseError, request: FastifyRequest, reply: FastifyReply, target: string) => FastifyReply | undefined;
  /** Cookies of the gateway's own that upstreams must never see. */
  stripCookies?: readonly string[];
}

type Admitted = Extract<Admission, { ok: true }>;

function bearerOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer +([^\s]+) *$/i.exec(header);
  return m?.[1] ?? (header.toLowerCase().startsWith('bearer') ? '' : undefined);
}

export interface ProxyListener {
  app: FastifyInstance;
  /** Swap the listener's certificate without dropping connections. */
  setCertificate(cert: string, key: string): void;
  /** Destroy open connections whose client certificate has this serial. */
  closeConnectionsOf(serial: string): number;
  /** Labels an open connection (e.g. `session:<sid>`, `user:<id>`) so it can be closed by label later. */
  tagConnection(socket: Duplex, tag: string): void;
  /** Destroy open connections (and the WebSockets on them) carrying this label. */
  closeConnectionsTagged(tag: string): number;
  /** Destroy every open connection the predicate picks (its labels are passed along). */
  closeConnectionsWhere(predicate: (socket: TLSSocket, tags: ReadonlySet<string>) => boolean): number;
  listen(address: string, port: number): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}

export function peerSerial(socket: TLSSocket): string | undefined {
  const cert = socket.getPeerX509Certificate?.();
  return cert ? cert.serialNumber.toLowerCase() : undefined;
}

export async function createProxyListener(o: ProxyListenerOptions): Promise<ProxyListener> {
  const deps: AdmitDeps = { ...o, listener: o.name };
  const gatewayPaths = new Set(o.gatewayPaths);
  const prefix = o.gatewayPrefix;
  const isGatewayPath = (url: string): boolean => gatewayPaths.has(url) || (prefix !== undefined && url.startsWith(prefix));
  const bySerial = new Map<string, Set<TLSSocket>>();
  /** Every open TLS connection, with the labels given by tagConnection. */
  const open = new Map<TLSSocket, Set<string>>();
  const byTag = new Map<string, Set<TLSSocket>>();

  const app = Fastify({
    logger: o.logger ?? false,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    // per-request logs would repeat the audit log (and URLs may carry secrets in queries)
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    // routing never sees a client's path: everything but the gateway's own paths goes to PROXY_ROUTE
    rewriteUrl: (req) => (isGatewayPath(req.url ?? '') ? (req.url ?? '/') : PROXY_ROUTE),
    https: {
      cert: o.tls.cert,
      key: o.tls.key,
      ...(o.tls.ca !== undefined ? { ca: o.tls.ca } : {}),
      requestCert: o.tls.requestCert,
      rejectUnauthorized: o.tls.requestCert,
      minVersion: 'TLSv1.2',
    },
    // 100 MB uploads stream through; fastify never buffers a proxied body
    bodyLimit: 1024 * 1024,
    connectionTimeout: 0,
    keepAliveTimeout: 30_000,
    // malformed HTTP (oversized headers, bad request lines) still answers in our shape, and is audited
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const ge = new GatehouseError(tooLarge ? 'ERR_HEADERS_TOO_LARGE' : 'ERR_BAD_REQUEST', tooLarge ? 'request headers exceed 16 KiB' : 'malformed HTTP request');
      o.audit.append({
        '@timestamp': new Date(o.clock.now()).toISOString(),
        'event.action': 'proxy.request',
        'event.outcome': 'failure',
        'event.reason': err.code ?? 'client-error',
        'source.ip': socket.remoteAddress ?? 'unknown',
        'gatehouse.listener': o.name,
        'gatehouse.error_code': ge.code,
        'http.response.status_code': ge.status,
      });
      if (socket.writable) {
        const body = JSON.stringify(errorBody(ge, randomUUID()));
        socket.end(`HTTP/1.1 ${ge.status} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      } else {
        socket.destroy();
      }
    },
  });
  installErrorHandlers(app);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  const server = app.server;
  server.on('secureConnection', (socket: TLSSocket) => {
    if (o.admitConnection && !o.admitConnection(socket)) {
      o.onConnectionRefused?.(socket);
      socket.destroy();
      return;
    }
    open.set(socket, new Set());
    socket.once('close', () => {
      for (const tag of open.get(socket) ?? []) {
        const set = byTag.get(tag);
        set?.delete(socket);
        if (set?.size === 0) byTag.delete(tag);
      }
      open.delete(socket);
    });
    const serial = peerSerial(socket);
    if (serial === undefined) return;
    let set = bySerial.get(serial);
    if (set === undefined) bySerial.set(serial, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0) bySerial.delete(serial);
    });
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const reason = err.code ?? 'handshake-failed';
    o.metrics.tlsFailures.inc({ listener: o.name, reason });
    o.audit.append({
      '@timestamp': new Date(o.clock.now()).toISOString(),
      'event.action': 'tls.handshake',
      'event.outcome': 'failure',
      'event.reason': reason,
      'source.ip': socket.remoteAddress ?? 'unknown',
      'gatehouse.listener': o.name,
      'gatehouse.reasons': ['bad-certificate'],
    });
  });

  if (o.registerGatewayRoutes) await o.registerGatewayRoutes(app);

  app.all(PROXY_ROUTE, async (request, reply) => {
    const started = process.hrtime.bigint();
    const raw = request.raw as IncomingMessage & { originalUrl?: string };
    const target = raw.originalUrl ?? raw.url ?? '';
    const result = admit(raw, target, request.id, deps);
    o.metrics.decisionSeconds.observe({ listener: o.name }, Number(process.hrtime.bigint() - started) / 1e9);
    if (!result.ok) {
      o.metrics.requests.inc({ listener: o.name, route: 'none', decision: 'deny', status: String(result.error.status) });
      const answered = o.onRefused?.(result.error, request, reply, target);
      if (answered !== undefined) return answered;
      // a refused request's body is not read: close the connection rather than drain it
      if (result.error.status !== 404) reply.header('connection', 'close');
      return reply.status(result.error.status).send(errorBody(result.error, request.id));
    }
    const extra = await finishAdmission(result, raw);
    if (extra instanceof GatehouseError) {
      const answered = o.onRefused?.(extra, request, reply, target);
      if (answered !== undefined) return answered;
      return reply.status(extra.status).header('connection', 'close').send(errorBody(extra, request.id));
    }
    stripGatewayCookies(raw);
    return forwardHttp(request, reply, result, { upstreams: o.upstreams, metrics: o.metrics, listener: o.name, clock: o.clock, trustDomain: o.trustDomain }, extra);
  });

  function stripGatewayCookies(req: IncomingMessage): void {
    const names = o.stripCookies;
    const header = req.headers.cookie;
    if (names === undefined || header === undefined) return;
    const kept = header
      .split(';')
      .map((p) => p.trim())
      .filter((p) => p !== '' && !names.includes(p.slice(0, p.indexOf('=') < 0 ? p.length : p.indexOf('=')).trim()));
    if (kept.length === 0) delete req.headers.cookie;
    else req.headers.cookie = kept.join('; ');
  }

  /** Token checks and upstream headers; audits the decision (or the refusal) exactly once. */
  async function finishAdmission(a: Admitted, req: IncomingMessage): Promise<Record<string, string> | GatehouseError> {
    try {
      const bearer = bearerOf(req.headers.authorization);
      if (bearer !== undefined) {
        if (o.checkBearer === undefined || bearer === '') throw new GatehouseError('ERR_TOKEN_INVALID', 'malformed bearer token');
        await o.checkBearer(bearer, a, req);
      }
      const extra = o.upstreamHeaders ? await o.upstreamHeaders(a, req) : {};
      o.audit.append(a.event);
      return extra;
    } catch (err) {
      const ge = err instanceof GatehouseError ? err : new GatehouseError('ERR_INTERNAL', undefined, { cause: err });
      o.audit.append({ ...a.event, 'event.outcome': 'failure', 'gatehouse.error_code': ge.code, 'http.response.status_code': ge.status, 'gatehouse.token_refused': true });
      o.metrics.requests.inc({ listener: o.name, route: `${a.route.namespace}/${a.route.service}`, decision: 'deny', status: String(ge.status) });
      return ge;
    }
  }

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const requestId = randomUUID();
    const target = req.url ?? '';
    const result = isGatewayPath(target)
      ? { ok: false as const, error: new GatehouseError('ERR_BAD_REQUEST', 'no upgrade on gateway paths') }
      : admit(req, target, requestId, deps);
    if (!result.ok) {
      o.metrics.requests.inc({ listener: o.name, route: 'none', decision: 'deny', status: String(result.error.status) });
      refuseUpgrade(socket, result.error, requestId);
      return;
    }
    void finishAdmission(result, req).then((extra) => {
      if (extra instanceof GatehouseError) return refuseUpgrade(socket, extra, requestId);
      stripGatewayCookies(req);
      forwardUpgrade(req, socket, head, result, { upstreams: o.upstreams, metrics: o.metrics, listener: o.name, clock: o.clock, trustDomain: o.trustDomain, requestId, clientIp: clientIp(req) }, extra);
    });
  });

  await app.ready();
  return {
    app,
    setCertificate(cert, key) {
      server.setSecureContext({ cert, key, ...(o.tls.ca !== undefined ? { ca: o.tls.ca } : {}), minVersion: 'TLSv1.2' });
    },
    closeConnectionsOf(serial) {
      const set = bySerial.get(serial.toLowerCase());
      if (!set) return 0;
      const n = set.size;
      for (const s of set) s.destroy();
      bySerial.delete(serial.toLowerCase());
      return n;
    },
    tagConnection(socket, tag) {
      const tls = socket as TLSSocket;
      const tags = open.get(tls);
      if (tags === undefined || tags.has(tag)) return;
      tags.add(tag);
      let set = byTag.get(tag);
      if (set === undefined) byTag.set(tag, (set = new Set()));
      set.add(tls);
    },
    closeConnectionsTagged(tag) {
      const set = byTag.get(tag);
      if (!set) return 0;
      const n = set.size;
      for (const s of [...set]) s.destroy();
      byTag.delete(tag);
      return n;
    },
    closeConnectionsWhere(predicate) {
      let n = 0;
      for (const [s, tags] of [...open]) {
        if (predicate(s, tags)) {
          s.destroy();
          n++;
        }
      }
      return n;
    },
    async listen(address, port) {
      await app.listen({ host: address, port });
      const a = server.address();
      if (a === null || typeof a === 'string') throw new GatehouseError('ERR_INTERNAL', 'listener has no address');
      return { address: a.address, port: a.port };
    },
    async close() {
      for (const set of bySerial.values()) for (const s of set) s.destroy();
      // stop accepting, then drop keep-alive connections (a browser may hold one for minutes)
      const closing = app.close();
      server.closeAllConnections();
      await closing;
    },
  };
}

