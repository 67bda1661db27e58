// Stage 5, forward: request header hygiene (identity headers are the gateway's own in every
// spelling, underscored names dropped; what the route refuses, hygiene.ts refused before), then
// the request streams to the upstream with backpressure and the answer streams back through
// response hygiene (never a gateway cookie), for plain requests and WebSocket upgrades alike.
// An upstream failure is a coded 502/504, never a stack.
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { FastifyReply } from 'fastify';
import { errors as undiciErrors, upgrade as undiciUpgrade } from 'undici';
import { GatehouseError } from '../errors.js';
import { errorBody } from '../lib/http-errors.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import type { Exchange } from './exchange.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { routeLabel } from './exchange.js';
import { upstreamSpiffeId, type UpstreamClients } from './upstream.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Clock, TimerHandle } from '../lib/clock.js';

export interface ForwardOptions {
  upstreams: UpstreamClients;
  /** The gateway's trust domain: an https upstream must present spiffe://<td>/ns/<ns>/sa/<svc>. */
  trustDomain: string;
  metrics: GatewayMetrics;
  /** The gateway's own cookies: never sent to an upstream, never set by one. */
  gatewayCookies: readonly string[];
  /** Response headers the gateway answers for (a value: its own; '': dropped), whatever the upstream says. */
  gatewayHeaders?: Readonly<Record<string, string>>;
}

function upstreamError(err: unknown): GatehouseError {
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError || err instanceof undiciErrors.ConnectTimeoutError) {
    return new GatehouseError('ERR_UPSTREAM_TIMEOUT', 'upstream did not answer in time', { cause: err });
  }
  return new GatehouseError('ERR_UPSTREAM_UNAVAILABLE', 'upstream unreachable or refused the connection', { cause: err });
}

/** An upstream URL may carry a path prefix: https://host/app + /v1/x = /app/v1/x. */
function basePathOf(origin: URL): string {
  return origin.pathname === '/' ? '' : origin.pathname.replace(/\/$/, '');
}

function requestHeaders(ex: Exchange, o: ForwardOptions, extra: Record<string, string>): Record<string, string | string[]> {
  const route = ex.route!;
  return {
    ...upstreamRequestHeaders(ex.req.headers, {
      subject: ex.identity!.subject,
      namespace: route.namespace,
      requestId: ex.id,
      clientIp: ex.sourceIp,
      host: ex.req.headers.host ?? '',
      proto: 'https',
      passAuthorization: route.passAuthorization === true,
      setByGateway: Object.keys(extra),
      gatewayCookies: o.gatewayCookies,
    }),
    ...extra,
  };
}

/** Forwards a plain request; resolves with the status sent to the client once its headers are known (the body streams on). */
export async function forwardHttp(ex: Exchange, reply: FastifyReply, extra: Record<string, string>, o: ForwardOptions): Promise<number> {
  const route = ex.route!;
  const started = process.hrtime.bigint();
  try {
    const dispatcher = o.upstreams.get({ upstream: route.upstream, expectedId: upstreamSpiffeId(o.trustDomain, route) });
    const origin = new URL(route.upstream);
    const res = await dispatcher.request({
      origin: origin.origin,
      path: basePathOf(origin) + ex.path! + ex.query!,
      method: ex.req.method as 'GET',
      headers: requestHeaders(ex, o, extra),
      body: hasBody(ex.req) ? ex.req : null,
    });
    o.metrics.upstreamSeconds.observe({ route: routeLabel(route) }, Number(process.hrtime.bigint() - started) / 1e9);
    // a client gone (or cut for not reading) frees the upstream connection too
    reply.raw.once('close', () => {
      if (!res.body.readableEnded) res.body.destroy();
    });
    void reply.status(res.statusCode).headers(clientResponseHeaders(res.headers, o.gatewayCookies, { ...(o.gatewayHeaders !== undefined ? { gatewayHeaders: o.gatewayHeaders } : {}) })).send(res.body);
    return res.statusCode;
  } catch (err) {
    const ge = upstreamError(err);
    reply.log.warn({ code: ge.code, route: routeLabel(route) }, 'upstream failed');
    void reply.status(ge.status).header('connection', 'close').send(errorBody(ge, ex.id));
    return ge.status;
  }
}

function writeHead(socket: Duplex, status: number, headers: Record<string, string | string[]>): void {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${one}\r\n`;
  }
  socket.write(`${head}\r\n`);
}

/** Answers a refused upgrade with a coded JSON error and closes the socket. */
export function refuseUpgrade(socket: Duplex, error: GatehouseError, requestId: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(errorBody(error, requestId));
  writeHead(socket, error.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), connection: 'close' });
  socket.end(body);
}

/**
 * Forwards an upgrade; resolves with the status given (101, or the coded failure). From the 101
 * on the two sockets are piped: closing the client socket (an identity that ended) ends both.
 */
export async function forwardUpgrade(ex: Exchange, socket: Duplex, head: Buffer, extra: Record<string, string>, o: ForwardOptions): Promise<number> {
  const route = ex.route!;
  const origin = new URL(route.upstream);
  // undici writes Connection/Upgrade itself from `protocol`
  const protocol = typeof ex.req.headers.upgrade === 'string' ? ex.req.headers.upgrade : 'websocket';
  try {
    const dispatcher = o.upstreams.get({ upstream: route.upstream, expectedId: upstreamSpiffeId(o.trustDomain, route) });
    const { headers: upHeaders, socket: upstream } = await undiciUpgrade(new URL(basePathOf(origin) + ex.path! + ex.query!, origin.origin), {
      dispatcher,
      method: 'GET',
      headers: requestHeaders(ex, o, extra),
      protocol,
    });
    if (socket.destroyed) {
      upstream.destroy();
      return 499;
    }
    writeHead(socket, 101, clientResponseHeaders(upHeaders, o.gatewayCookies, { upgrade: true, ...(o.gatewayHeaders !== undefined ? { gatewayHeaders: o.gatewayHeaders } : {}) }));
    if (head.length > 0) upstream.write(head);
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    upstream.pipe(socket);
    socket.pipe(upstream);
    return 101;
  } catch (err) {
    const ge = upstreamError(err);
    refuseUpgrade(socket, ge, ex.id);
    return ge.status;
  }
}

// ---- deadlines of a request in flight
// A forwarded request's body must keep coming: the whole request within the route's
// requestTimeout, and never a silence longer than its bodyIdleTimeout (a caller trickling a body
// would otherwise hold a connection, an upstream request and its memory for as long as it
// likes). Progress is read off the socket's byte count, so the body stream itself is not
// touched (a 'data' listener would start it flowing before the upstream reads it).
export interface RequestDeadlines {
  requestTimeout: number;
  bodyIdleTimeout: number;
}

export type RequestTimeout = 'request-timeout' | 'body-idle-timeout';

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** Watches the request until its body has arrived; on a deadline calls onTimeout once and destroys the connection. Returns stop(). */
export function watchRequest(req: IncomingMessage, d: RequestDeadlines, clock: Clock, onTimeout: (why: RequestTimeout) => void): () => void {
  if (!hasBody(req) || req.complete) return () => undefined;
  const socket = req.socket;
  const started = clock.now();
  let lastBytes = socket.bytesRead;
  let lastProgress = started;
  let timer: TimerHandle | undefined;
  let done = false;
  const stop = (): void => {
    done = true;
    timer?.cancel();
    timer = undefined;
  };
  const arm = (): void => {
    const at = Math.min(started + d.requestTimeout, lastProgress + d.bodyIdleTimeout);
    timer = clock.setTimer(check, Math.max(1, at - clock.now()));
  };
  const check = (): void => {
    timer = undefined;
    if (done || req.complete) return stop();
    const now = clock.now();
    const bytes = socket.bytesRead;
    if (bytes !== lastBytes) {
      lastBytes = bytes;
      lastProgress = now;
    }
    const why: RequestTimeout | undefined = now >= started + d.requestTimeout ? 'request-timeout' : now >= lastProgress + d.bodyIdleTimeout ? 'body-idle-timeout' : undefined;
    if (why === undefined) return arm();
    stop();
    onTimeout(why);
    socket.destroy();
  };
  req.once('end', stop);
  req.once('close', stop);
  arm();
  return stop;
}

/**
 * Watches an answer being streamed to the client: if the client stops reading (the socket's
 * buffer stays full and nothing more leaves it for bodyIdleTimeout), both sides are cut. A quiet
 * stream (server-sent events) with nothing waiting to be written is not a stall. Returns stop().
 */
export function watchResponse(res: ServerResponse, d: RequestDeadlines, clock: Clock, onTimeout: (why: 'response-stalled') => void): () => void {
  const socket = res.socket;
  if (socket === null || res.writableFinished) return () => undefined;
  let lastWritten = socket.bytesWritten;
  let lastProgress = clock.now();
  let timer: TimerHandle | undefined;
  let done = false;
  const stop = (): void => {
    done = true;
    timer?.cancel();
    timer = undefined;
  };
  const check = (): void => {
    timer = undefined;
    if (done || res.writableFinished || socket.destroyed) return stop();
    const now = clock.now();
    const written = socket.bytesWritten;
    if (written !== lastWritten || socket.writableLength === 0) {
      lastWritten = written;
      lastProgress = now;
    }
    if (now - lastProgress < d.bodyIdleTimeout) {
      timer = clock.setTimer(check, Math.max(1, lastProgress + d.bodyIdleTimeout - now));
      return;
    }
    stop();
    onTimeout('response-stalled');
    // a reset, not a FIN: a client that does not read would never see a FIN behind the unread
    // data (on TLS, the reset goes on the TCP socket the TLS one wraps)
    const tcp = (socket as { _parent?: Socket | null })._parent ?? (socket);
    try {
      tcp.resetAndDestroy();
    } catch {
      tcp.destroy();
    }
    socket.destroy();
  };
  res.once('finish', stop);
  res.once('close', stop);
  timer = clock.setTimer(check, d.bodyIdleTimeout);
  return stop;
}
