// Header hygiene: what a client sends about identity is never believed or passed on;
// Gatehouse sets its own. Hop-by-hop headers stay on their hop (RFC 9110 §7.6.1).
import type { IncomingHttpHeaders } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'http2-settings',
]);

/** Client-sent headers that claim identity or routing facts only Gatehouse may state. */
function isSpoofable(name: string): boolean {
  return name.startsWith('x-gatehouse-') || name.startsWith('x-forwarded-') || name === 'forwarded' || name === 'x-real-ip' || name === 'x-client-cert' || name === 'x-ssl-client-cert';
}

function connectionTokens(headers: IncomingHttpHeaders): Set<string> {
  const v = headers.connection;
  const out = new Set<string>();
  if (typeof v === 'string') for (const t of v.split(',')) out.add(t.trim().toLowerCase());
  return out;
}

export interface ForwardIdentity {
  subject: string;
  namespace: string;
  requestId: string;
  clientIp: string;
  /** Host the client asked for (becomes x-forwarded-host). */
  host: string;
  proto: 'https' | 'http';
  /** Keep the client's Authorization header (route option; off by default). */
  passAuthorization: boolean;
}

/** Builds the upstream request headers from the client's. */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, id: ForwardIdentity): Record<string, string | string[]> {
  const drop = connectionTokens(incoming);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || drop.has(name) || isSpoofable(name)) continue;
    if (name === 'authorization' && !id.passAuthorization) continue;
    out[name] = value;
  }
  out['x-gatehouse-subject'] = id.subject;
  out['x-gatehouse-namespace'] = id.namespace;
  out['x-gatehouse-request-id'] = id.requestId;
  out['x-forwarded-for'] = id.clientIp;
  out['x-forwarded-host'] = id.host;
  out['x-forwarded-proto'] = id.proto;
  return out;
}

/** Response headers from the upstream, minus hop-by-hop ones. */
export function clientResponseHeaders(incoming: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const conn = incoming.connection;
  const drop = new Set(typeof conn === 'string' ? conn.split(',').map((t) => t.trim().toLowerCase()) : []);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || drop.has(name)) continue;
    out[name] = value;
  }
  return out;
}
