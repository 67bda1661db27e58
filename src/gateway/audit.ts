// The pipeline's last stage: exactly one audit event per decision, built here and nowhere
// else, with the decision metric beside it. A request is either let through (allowed) or
// refused, once; a handshake or a rate-limited request that never became an exchange is
// recorded by its own helper below, also once.
import type { DecisionReason } from '../contracts/authz.js';
import type { AuditEvent, AuditSink } from '../contracts/audit.js';
import type { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { GatewayMetrics } from '../lib/metrics.js';
import { addressKey, type ConnectionFacts, type ConnectionRefusal } from './connection.js';
import type { Exchange, ListenerName } from './exchange.js';
import { routeLabel } from './exchange.js';

export interface DecisionLogOptions {
  listener: ListenerName;
  audit: AuditSink;
  metrics: GatewayMetrics;
  clock: Clock;
}

export interface Refusal {
  error: GatehouseError;
  reasons: readonly DecisionReason[];
  /** Extra fields (the path problem, a token refusal). */
  extra?: Partial<AuditEvent>;
}

/** Reasons for a refusal that is not the policy's own verdict. */
export function reasonsFor(error: GatehouseError): DecisionReason[] {
  if (error.code === 'ERR_PATH_REJECTED') return ['bad-path'];
  if (error.code === 'ERR_HEADER_REJECTED') return ['bad-header'];
  if (error.code === 'ERR_ROUTE_NOT_FOUND') return ['unknown-route'];
  if (error.code.startsWith('ERR_CERT')) return ['bad-certificate'];
  if (error.code === 'ERR_POLICY_DENIED') return ['denied-by-rule'];
  return ['unauthenticated'];
}

export class DecisionLog {
  readonly #o: DecisionLogOptions;
  /** Addresses over their connection cap: when their next event may be written, and how many were folded since. */
  readonly #capped = new Map<string, { until: number; folded: number }>();
  constructor(o: DecisionLogOptions) {
    this.#o = o;
  }

  #base(ex: Exchange): AuditEvent {
    const id = ex.identity;
    const route = ex.route;
    const d = ex.decision;
    return {
      '@timestamp': new Date(this.#o.clock.now()).toISOString(),
      'event.action': ex.upgrade ? 'proxy.upgrade' : 'proxy.request',
      'event.outcome': 'failure',
      'source.ip': ex.sourceIp,
      'http.request.method': ex.method,
      'gatehouse.request_id': ex.id,
      'gatehouse.listener': this.#o.listener,
      ...(ex.path !== undefined ? { 'url.path': ex.path } : {}),
      ...(id !== undefined
        ? {
            'gatehouse.subject': id.subject,
            ...(id.principal.kind === 'user' ? { 'user.id': id.principal.userId } : { 'tls.client.x509.serial_number': id.principal.certSerial }),
          }
        : {}),
      ...(route !== undefined ? { 'gatehouse.namespace': route.namespace, 'gatehouse.service': route.service, 'service.name': route.service } : {}),
      ...(d !== undefined
        ? {
            'gatehouse.reasons': d.reasons,
            'gatehouse.mode': d.mode,
            'gatehouse.policy_version': d.policyVersion,
            ...(d.rule !== undefined ? { 'gatehouse.rule': d.rule } : {}),
            ...(d.comparison !== undefined ? { 'gatehouse.path_comparison': d.comparison } : {}),
          }
        : {}),
      ...(ex.forwardAuth ? { 'gatehouse.forward_auth': true } : {}),
    };
  }

  /** The request goes to its upstream (or, dry-run, passes a would-deny): its one event. */
  allowed(ex: Exchange): void {
    if (ex.audited) return;
    ex.audited = true;
    this.#o.audit.append({ ...this.#base(ex), 'event.outcome': ex.decision?.allow === true ? 'success' : 'failure' });
  }

  /** The request is refused at whatever stage: its one event, and the decision metric. */
  refused(ex: Exchange, r: Refusal): void {
    if (ex.audited) return;
    ex.audited = true;
    const base = this.#base(ex);
    this.#o.audit.append({
      ...base,
      'gatehouse.reasons': base['gatehouse.reasons'] ?? [...r.reasons],
      ...r.extra,
      'event.outcome': 'failure',
      'gatehouse.error_code': r.error.code,
      'http.response.status_code': r.error.status,
    });
    this.#o.metrics.requests.inc({ listener: this.#o.listener, route: routeLabel(ex.route), decision: 'deny', status: String(r.error.status) });
  }

  /** A forwarded request's answer (the upstream's status, or 502/504): the decision metric. */
  answered(ex: Exchange, status: number): void {
    this.#o.metrics.requests.inc({ listener: this.#o.listener, route: routeLabel(ex.route), decision: 'allow', status: String(status) });
  }

  /**
   * A connection refused before any request (TLS failure, limits, a revoked certificate): one
   * event. A client that left mid-handshake (scanners, TCP health checks) is counted only; an
   * address over its connection cap gets one event a minute, saying how many were folded in.
   */
  connectionRefused(r: ConnectionRefusal): void {
    const tls = r.reason === 'handshake-failed' || r.reason === 'handshake-timeout' || r.reason === 'refused-at-handshake' || r.reason === 'handshake-abandoned';
    const reason = r.tlsReason ?? (r.reason === 'refused-at-handshake' ? r.code.replace(/^ERR_/, '') : r.reason);
    if (tls) this.#o.metrics.tlsFailures.inc({ listener: this.#o.listener, reason: r.reason === 'handshake-abandoned' ? 'abandoned' : reason });
    if (r.reason === 'handshake-abandoned') return;
    let folded = 0;
    if (r.reason === 'per-address-limit' || r.reason === 'listener-limit') {
      const f = this.#fold(`conn ${r.remoteAddress}`);
      if (f === undefined) return;
      folded = f;
    }
    this.#o.audit.append({
      '@timestamp': new Date(this.#o.clock.now()).toISOString(),
      'event.action': tls ? 'tls.handshake' : 'proxy.connection',
      'event.outcome': 'failure',
      'event.reason': reason,
      'source.ip': r.remoteAddress,
      'gatehouse.listener': this.#o.listener,
      'gatehouse.reasons': tls ? ['bad-certificate'] : r.reason === 'per-address-limit' || r.reason === 'listener-limit' ? ['connection-limit'] : ['bad-path'],
      'gatehouse.error_code': r.code,
      ...(r.requestId !== undefined ? { 'gatehouse.request_id': r.requestId } : {}),
      ...(folded > 0 ? { 'gatehouse.refusals_folded': folded } : {}),
      ...(r.facts?.serial !== undefined ? { 'tls.client.x509.serial_number': r.facts.serial } : {}),
    });
  }

  /** An allowed request whose client stopped sending its body in time: the connection was cut. */
  requestAborted(ex: Exchange, why: string): void {
    this.#o.audit.append({
      '@timestamp': new Date(this.#o.clock.now()).toISOString(),
      'event.action': 'proxy.request.aborted',
      'event.outcome': 'failure',
      'event.reason': why,
      'source.ip': ex.sourceIp,
      'gatehouse.request_id': ex.id,
      'gatehouse.listener': this.#o.listener,
      ...(ex.identity !== undefined ? { 'gatehouse.subject': ex.identity.subject } : {}),
      ...(ex.route !== undefined ? { 'gatehouse.namespace': ex.route.namespace, 'gatehouse.service': ex.route.service } : {}),
    });
    this.#o.metrics.requests.inc({ listener: this.#o.listener, route: routeLabel(ex.route), decision: 'allow', status: '408' });
  }

  /** A request to the gateway's own routes whose body did not come in time: the connection was cut. */
  ownRequestAborted(o: { requestId: string; method: string; path: string; sourceIp: string; why: string }): void {
    this.#o.audit.append({
      '@timestamp': new Date(this.#o.clock.now()).toISOString(),
      'event.action': 'http.request.aborted',
      'event.outcome': 'failure',
      'event.reason': o.why,
      'source.ip': o.sourceIp,
      'http.request.method': o.method,
      'url.path': o.path.slice(0, 300),
      'gatehouse.request_id': o.requestId,
      'gatehouse.listener': this.#o.listener,
    });
  }

  /** A connection closed because its client certificate reached notAfter: one event. */
  certificateExpired(facts: ConnectionFacts): void {
    this.#o.audit.append({
      '@timestamp': new Date(this.#o.clock.now()).toISOString(),
      'event.action': 'tls.certificate.expired',
      'event.outcome': 'success',
      'event.reason': 'connection closed at the certificate notAfter',
      'source.ip': facts.remoteAddress,
      'gatehouse.listener': this.#o.listener,
      ...(facts.spiffeId !== undefined ? { 'gatehouse.subject': facts.spiffeId } : {}),
      ...(facts.serial !== undefined ? { 'tls.client.x509.serial_number': facts.serial } : {}),
    });
  }

  /** A gateway route refused by the rate limiter: one event (the request never reached its handler). */
  rateLimited(o: { requestId: string; method: string; path: string; sourceIp: string; error: GatehouseError }): void {
    this.#o.metrics.requests.inc({ listener: this.#o.listener, route: 'gateway', decision: 'deny', status: String(o.error.status) });
    // a flood from one client is one event a minute, with how many it stands for
    const folded = this.#fold(`rate ${o.sourceIp}`);
    if (folded === undefined) return;
    this.#o.audit.append({
      '@timestamp': new Date(this.#o.clock.now()).toISOString(),
      'event.action': 'http.rate_limited',
      'event.outcome': 'failure',
      'source.ip': o.sourceIp,
      'http.request.method': o.method,
      'url.path': o.path.slice(0, 300),
      'gatehouse.request_id': o.requestId,
      'gatehouse.listener': this.#o.listener,
      'gatehouse.reasons': ['rate-limited'],
      'gatehouse.error_code': o.error.code,
      'http.response.status_code': o.error.status,
      ...(folded > 0 ? { 'gatehouse.refusals_folded': folded } : {}),
    });
  }

  /**
   * One event a minute per client (an address, or an IPv6 /64) and kind: undefined when this
   * refusal is folded into the next event, else how many were folded since the last.
   */
  #fold(kind: string): number | undefined {
    const [what = '', address = ''] = kind.split(' ');
    const key = `${what} ${addressKey(address)}`;
    const now = this.#o.clock.now();
    const seen = this.#capped.get(key);
    if (seen !== undefined && now < seen.until) {
      seen.folded++;
      return undefined;
    }
    if (this.#capped.size >= 10_000) for (const [k, v] of this.#capped) if (v.until <= now) this.#capped.delete(k);
    // still full of live entries: the oldest makes room (Maps iterate in insertion order)
    if (this.#capped.size >= 10_000) this.#capped.delete(this.#capped.keys().next().value!);
    this.#capped.delete(key);
    this.#capped.set(key, { until: now + 60_000, folded: 0 });
    return seen?.folded ?? 0;
  }
}
