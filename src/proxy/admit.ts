// The decision walk every proxied request takes, shared by plain requests and WebSocket
// upgrades: path safety, identity, route, policy, audit. Fails closed: any error is a refusal.
import type { IncomingMessage } from 'node:http';
import { GatehouseError } from '../errors.js';
import type { AccessRequest, Authorizer, Decision, DecisionReason, Principal } from '../contracts/authz.js';
import type { AuditEvent, AuditSink } from '../contracts/audit.js';
import type { Clock } from '../lib/clock.js';
import { checkRequestTarget } from './path.js';
import { hostOnly } from '../lib/host.js';

export interface ProxyRoute {
  host: string;
  namespace: string;
  service: string;
  upstream: string;
  passAuthorization?: boolean;
  /** Header carrying the minted token upstream (default authorization). */
  tokenHeader?: string;
  /** Human listener: the longest a WebAuthn assertion may be ago (ms) for this route. */
  stepUp?: number;
}

export class RouteTable {
  readonly #byHost: ReadonlyMap<string, ProxyRoute>;
  constructor(routes: readonly ProxyRoute[]) {
    this.#byHost = new Map(routes.map((r) => [r.host.toLowerCase(), r]));
  }
  /** Looks a route up by the Host header (port and case ignored). */
  match(hostHeader: string | undefined): ProxyRoute | undefined {
    return hostHeader === undefined ? undefined : this.get(hostOnly(hostHeader));
  }
  /** Looks a route up by a host already in hostOnly's form (lowercase, no port). */
  get(host: string): ProxyRoute | undefined {
    return this.#byHost.get(host);
  }
}

export interface AdmitDeps {
  listener: 'service' | 'human';
  routes: RouteTable;
  /** authenticate's answer for this request: who it is, or why not (`host`: the host asked for, lowercase, no port). */
  identify(req: IncomingMessage, host: string): Principal | GatehouseError;
  authorizer: Authorizer;
  audit: AuditSink;
  clock: Clock;
}

export type Admission =
  | {
      ok: true;
      route: ProxyRoute;
      principal: Principal;
      decision: Decision;
      path: string;
      query: string;
      subject: string;
      /** The decision's audit event: the caller appends it once the request is really let through (or refused later). */
      event: AuditEvent;
    }
  | { ok: false; error: GatehouseError };

export function subjectOf(p: Principal): string {
  return p.kind === 'service' ? p.spiffeId : p.userId;
}

export function clientIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/** What a trusted front proxy says the request was (forward-auth): it replaces Host and method. */
export interface ForwardedFacts {
  host: string;
  method: string;
}

/** `rawTarget` is the request target exactly as received (before any framework rewrote it). */
export function admit(req: IncomingMessage, rawTarget: string, requestId: string, deps: AdmitDeps, forwarded?: ForwardedFacts): Admission {
  const method = forwarded?.method ?? req.method ?? 'GET';
  const hostHeader = forwarded?.host ?? req.headers.host;
  const base: AuditEvent = {
    '@timestamp': new Date(deps.clock.now()).toISOString(),
    'event.action': req.headers.upgrade ? 'proxy.upgrade' : 'proxy.request',
    'event.outcome': 'failure',
    'source.ip': clientIp(req),
    'http.request.method': method,
    'gatehouse.request_id': requestId,
    'gatehouse.listener': deps.listener,
  };
  const refuse = (error: GatehouseError, reasons: DecisionReason[], extra: Partial<AuditEvent> = {}): Admission => {
    deps.audit.append({ ...base, ...extra, 'gatehouse.reasons': reasons, 'gatehouse.error_code': error.code, 'http.response.status_code': error.status });
    return { ok: false, error };
  };

  const target = checkRequestTarget(rawTarget);
  if (!target.ok) {
    return refuse(new GatehouseError('ERR_PATH_REJECTED', `request path refused: ${target.problem}`, { details: { problem: target.problem } }), ['bad-path'], {
      'event.reason': target.problem,
    });
  }
  const withPath: Partial<AuditEvent> = { 'url.path': target.path };

  const host = hostOnly(hostHeader);
  const who = deps.identify(req, host);
  if (who instanceof GatehouseError) {
    const reason: DecisionReason = who.code.startsWith('ERR_CERT') ? 'bad-certificate' : 'unauthenticated';
    return refuse(who, [reason], withPath);
  }
  const subject = subjectOf(who);
  const withWho: Partial<AuditEvent> = {
    ...withPath,
    'gatehouse.subject': subject,
    ...(who.kind === 'user' ? { 'user.id': who.userId } : { 'tls.client.x509.serial_number': who.certSerial }),
  };

  const route = deps.routes.get(host);
  if (route === undefined) {
    return refuse(new GatehouseError('ERR_ROUTE_NOT_FOUND', 'no route for this host'), ['unknown-route'], withWho);
  }

  const request: AccessRequest = { principal: who, namespace: route.namespace, service: route.service, method, path: target.path };
  let decision: Decision;
  try {
    decision = deps.authorizer.decide(request);
  } catch {
    // a policy engine that throws must not become an allow
    return refuse(new GatehouseError('ERR_POLICY_DENIED', 'policy unavailable'), ['policy-unavailable'], withWho);
  }
  const event: AuditEvent = {
    ...base,
    ...withWho,
    'event.outcome': decision.allow ? 'success' : 'failure',
    'gatehouse.namespace': route.namespace,
    'gatehouse.service': route.service,
    'service.name': route.service,
    'gatehouse.reasons': decision.reasons,
    'gatehouse.mode': decision.mode,
    'gatehouse.policy_version': decision.policyVersion,
    ...(decision.rule !== undefined ? { 'gatehouse.rule': decision.rule } : {}),
  };
  if (!decision.pass) {
    const error = new GatehouseError('ERR_POLICY_DENIED', `${subject} may not ${method} ${target.path} on ${route.namespace}/${route.service}`);
    deps.audit.append({ ...event, 'gatehouse.error_code': error.code, 'http.response.status_code': error.status });
    return { ok: false, error };
  }
  return { ok: true, route, principal: who, decision, path: target.path, query: target.query, subject, event };
}
