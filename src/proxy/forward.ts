// Forwarding: bodies stream both ways with backpressure (nothing is buffered), identity
// headers are Gatehouse's own, and an upstream failure is a coded 502/504, never a stack.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors as undiciErrors, upgrade as undiciUpgrade } from 'undici';
import { GatehouseError } from '../errors.js';
import { errorBody } from '../lib/http-errors.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import type { Clock } from '../lib/clock.js';
import { clientIp, type Admission } from './admit.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import type { UpstreamClients } from './upstream.js';

type Admitted = Extract<Admission, { ok: true }>;

export interface ForwardDeps {
  upstreams: UpstreamClients;
  /** The gateway's trust domain: an https upstream must present spiffe://<td>/ns/<ns>/sa/<svc>. */
  trustDomain: string;
  metrics: GatewayMetrics;
  listener: 'service' | 'human';
  clock: Clock;
}

/** Extra headers a later stage (token minting) adds for the upstream. */
export type ExtraHeaders = Record<string, string>;

function expectedId(trustDomain: string, a: Admitted): string {
  return `spiffe://${trustDomain}/ns/${a.route.namespace}/sa/${a.route.service}`;
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

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

export async function forwardHttp(request: FastifyRequest, reply: FastifyReply, a: Admitted, deps: ForwardDeps, extra: ExtraHeaders = {}): Promise<FastifyReply> {
  const raw = request.raw;
  const headers = {
    ...upstreamRequestHeaders(raw.headers, {
      subject: a.subject,
      namespace: a.route.namespace,
      requestId: request.id,
      clientIp: clientIp(raw),
      host: raw.headers.host ?? '',
      proto: 'https',
      passAuthorization: a.route.passAuthorization === true,
    }),
    ...extra,
  };
  const started = process.hrtime.bigint();
  const routeLabel = `${a.route.namespace}/${a.route.service}`;
  try {
    const dispatcher = deps.upstreams.get({ upstream: a.route.upstream, expectedId: expectedId(deps.trustDomain, a) });
    const origin = new URL(a.route.upstream);
    const res = await dispatcher.request({
      origin: origin.origin,
      path: basePathOf(origin) + a.path + a.query,
      method: raw.method as 'GET',
      headers,
      body: hasBody(raw) ? raw : null,
    });
    deps.metrics.upstreamSeconds.observe({ route: routeLabel }, Number(process.hrtime.bigint() - started) / 1e9);
    deps.metrics.requests.inc({ listener: deps.listener, route: routeLabel, decision: 'allow', status: String(res.statusCode) });
    void reply.status(res.statusCode).headers(clientResponseHeaders(res.headers));
    return reply.send(res.body);
  } catch (err) {
    const ge = upstreamError(err);
    request.log.warn({ code: ge.code, route: routeLabel }, 'upstream failed');
    deps.metrics.requests.inc({ listener: deps.listener, route: routeLabel, decision: 'allow', status: String(ge.status) });
    return reply.status(ge.status).header('connection', 'close').send(errorBody(ge, request.id));
  }
}

function writeHead(socket: Duplex, status: number, headers: Record<string, string | string[]>): void {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${one}\r\n`;
  }
  socket.write(`${head}\r\n`);
}

export function refuseUpgrade(socket: Duplex, error: GatehouseError, requestId: string): void {
  const body = JSON.stringify(errorBody(error, requestId));
  writeHead(socket, error.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), connection: 'close' });
  socket.end(body);
}

export function forwardUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  a: Admitted,
  deps: ForwardDeps & { requestId: string; clientIp: string },
  extra: ExtraHeaders = {},
): void {
  const headers = {
    ...upstreamRequestHeaders(req.headers, {
      subject: a.subject,
      namespace: a.route.namespace,
      requestId: deps.requestId,
      clientIp: deps.clientIp,
      host: req.headers.host ?? '',
      proto: 'https',
      passAuthorization: a.route.passAuthorization === true,
    }),
    ...extra,
  };
  const routeLabel = `${a.route.namespace}/${a.route.service}`;
  socket.on('error', () => socket.destroy());
  const origin = new URL(a.route.upstream);
  const dispatcher = deps.upstreams.get({ upstream: a.route.upstream, expectedId: expectedId(deps.trustDomain, a) });
  // undici writes Connection/Upgrade itself from `protocol`
  const protocol = typeof req.headers.upgrade === 'string' ? req.headers.upgrade : 'websocket';
  undiciUpgrade(new URL(basePathOf(origin) + a.path + a.query, origin.origin), { dispatcher, method: 'GET', headers, protocol })
    .then(({ headers: upHeaders, socket: upstream }) => {
      deps.metrics.requests.inc({ listener: deps.listener, route: routeLabel, decision: 'allow', status: '101' });
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(upHeaders)) if (v !== undefined && !k.startsWith('x-gatehouse-')) out[k] = v;
      writeHead(socket, 101, out);
      if (head.length > 0) upstream.write(head);
      upstream.on('error', () => socket.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
      upstream.pipe(socket);
      socket.pipe(upstream);
    })
    .catch((err: unknown) => {
      const ge = upstreamError(err);
      deps.metrics.requests.inc({ listener: deps.listener, route: routeLabel, decision: 'allow', status: String(ge.status) });
      if (!socket.destroyed) refuseUpgrade(socket, ge, deps.requestId);
    });
}
