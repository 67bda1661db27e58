// Header hygiene, both ways. Towards the upstream: what a client says about identity is never
// passed on in any spelling (a name with an underscore is refused or dropped, because CGI,
// WSGI and Rack servers read X_Foo and X-Foo as one variable), the gateway's own cookies stay
// here, and hop-by-hop headers stay on their hop (RFC 9110 §7.6.1). Towards the client: an
// upstream can never set the gateway's cookies, on any response, 101 included.
import type { IncomingHttpHeaders } from 'node:http';
import { GatehouseError } from '../errors.js';
import type { Refusal } from './audit.js';
import type { Exchange } from './exchange.js';

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

/**
 * Client-sent headers that claim identity or routing facts only Gatehouse may state, or that make
 * an upstream framework act on another method or path than the one policy decided (Express
 * method-override, Laravel, Symfony, IIS/ASP.NET URL rewriting), or that the gateway answers
 * itself (Expect: 100-continue).
 */
const OVERRIDES = new Set(['x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-url', 'x-rewrite-url', 'x-original-method', 'x-override-url', 'expect']);
function isSpoofable(name: string): boolean {
  return (
    name.startsWith('x-gatehouse-') ||
    name.startsWith('x-forwarded-') ||
    name === 'forwarded' ||
    name === 'x-real-ip' ||
    name === 'x-client-cert' ||
    name === 'x-ssl-client-cert' ||
    name === 'x-forwarded-client-cert' ||
    OVERRIDES.has(name)
  );
}

function connectionTokens(v: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const line of Array.isArray(v) ? v : v === undefined ? [] : [v]) for (const t of line.split(',')) out.add(t.trim().toLowerCase());
  return out;
}

/** The first request header whose name has an underscore, if any (names arrive lowercased). */
export function underscoredHeader(headers: IncomingHttpHeaders): string | undefined {
  for (const name of Object.keys(headers)) if (name.includes('_')) return name;
  return undefined;
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
  /** Headers the gateway sets for this route beyond its own (the token header): a client's are dropped. */
  setByGateway: readonly string[];
  /** Cookie names of the gateway's own: never passed to an upstream. */
  gatewayCookies: readonly string[];
}

/** The Cookie header without the gateway's cookies (undefined when nothing is left). */
export function withoutCookies(header: string | undefined, names: readonly string[]): string | undefined {
  if (header === undefined || names.length === 0) return header;
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '' && !names.includes(p.slice(0, p.indexOf('=') < 0 ? p.length : p.indexOf('=')).trim()));
  return kept.length === 0 ? undefined : kept.join('; ');
}

/**
 * The upstream request headers from the client's. Names with an underscore are dropped here
 * whatever the route says: a route that refuses them has already answered 400.
 */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, id: ForwardIdentity): Record<string, string | string[]> {
  const drop = connectionTokens(incoming.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || drop.has(name) || isSpoofable(name) || name.includes('_') || id.setByGateway.includes(name)) continue;
    if (name === 'authorization' && !id.passAuthorization) continue;
    if (name === 'cookie') {
      const kept = withoutCookies(Array.isArray(value) ? value.join('; ') : value, id.gatewayCookies);
      if (kept !== undefined) out.cookie = kept;
      continue;
    }
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

/** The name a Set-Cookie line sets, as a browser compares cookie-name prefixes (case-insensitively, RFC 6265bis). */
function setCookieName(line: string): string {
  const eq = line.indexOf('=');
  return (eq < 0 ? '' : line.slice(0, eq)).trim().toLowerCase();
}

/**
 * Set-Cookie lines minus any that name a gateway cookie, and minus nameless ones: a browser
 * without RFC 6265bis's check sends `=__Host-gatehouse=x` back as `__Host-gatehouse=x`.
 */
export function withoutGatewayCookies(value: string | string[], gatewayCookies: readonly string[]): string[] {
  const names = gatewayCookies.map((n) => n.toLowerCase());
  return (Array.isArray(value) ? value : [value]).filter((line) => {
    const name = setCookieName(line);
    return name !== '' && !names.includes(name);
  });
}

/** Response headers from the upstream: no hop-by-hop headers, no x-gatehouse-* claims, never a gateway cookie. */
export function clientResponseHeaders(
  incoming: Record<string, string | string[] | undefined>,
  gatewayCookies: readonly string[],
  keep: { upgrade?: boolean; gatewayHeaders?: Readonly<Record<string, string>> } = {},
): Record<string, string | string[]> {
  const drop = connectionTokens(incoming.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    // a 101 keeps Connection/Upgrade: they are what switches the protocol
    if (keep.upgrade === true && (lower === 'connection' || lower === 'upgrade')) {
      out[lower] = value;
      continue;
    }
    if (HOP_BY_HOP.has(lower) || drop.has(lower) || lower.startsWith('x-gatehouse-') || keep.gatewayHeaders?.[lower] !== undefined) continue;
    if (lower === 'set-cookie') {
      const kept = withoutGatewayCookies(value, gatewayCookies);
      if (kept.length > 0) out['set-cookie'] = kept;
      continue;
    }
    out[lower] = value;
  }
  // headers the gateway answers for on this listener (HSTS, Clear-Site-Data): its own, never the upstream's
  for (const [name, value] of Object.entries(keep.gatewayHeaders ?? {})) if (value !== '') out[name] = value;
  return out;
}

// ---- stage 4, request hygiene the route decides: what the upstream could read differently from
// the gateway is refused (400, audited) before any credential is minted for it.
//  - a header name with an underscore: CGI, WSGI and Rack read X_Foo and X-Foo as one variable
//    (refused, or dropped on a route with headersWithUnderscores: drop);
//  - an Upgrade to anything but WebSocket (h2c smuggling: the upstream would switch protocols
//    on a connection the gateway then only pipes), or a WebSocket opened with another method
//    than the GET it is forwarded as.
export function requestHygiene(ex: Exchange): Refusal | undefined {
  const upgrade = ex.req.headers.upgrade;
  if (upgrade !== undefined && upgrade.trim().toLowerCase() !== 'websocket') {
    const error = new GatehouseError('ERR_UPGRADE_REFUSED', `upgrade to ${JSON.stringify(upgrade.slice(0, 32))} refused: only WebSocket`);
    return { error, reasons: ['bad-header'], extra: { 'event.reason': 'upgrade-not-websocket' } };
  }
  // a WebSocket opens with GET (RFC 6455 §4.1) and is forwarded as one: a POST-only caller must
  // not reach the upstream's GET handler through an upgrade policy decided as POST
  if (ex.upgrade && ex.method !== 'GET') {
    const error = new GatehouseError('ERR_UPGRADE_REFUSED', `a WebSocket opens with GET, not ${ex.method.slice(0, 16)}`);
    return { error, reasons: ['bad-header'], extra: { 'event.reason': 'upgrade-method' } };
  }
  const name = underscoredHeader(ex.req.headers);
  if (name === undefined || ex.route?.headersWithUnderscores === 'drop') return undefined;
  const error = new GatehouseError('ERR_HEADER_REJECTED', `header ${JSON.stringify(name.slice(0, 64))} has an underscore in its name`);
  return { error, reasons: ['bad-header'], extra: { 'event.reason': 'underscore-in-header-name' } };
}
