// Prometheus metrics, one registry per gateway instance (tests build several in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface GatewayMetrics {
  registry: Registry;
  /** A counter on this registry (one per name). */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L>;
  requests: Counter<'listener' | 'route' | 'decision' | 'status'>;
  decisionSeconds: Histogram<'listener'>;
  upstreamSeconds: Histogram<'route'>;
  tlsFailures: Counter<'listener' | 'reason'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): GatewayMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
  return {
    registry,
    counter: (name, help, labelNames) => new Counter({ name, help, labelNames, registers: [registry] }),
    requests: new Counter({
      name: 'gatehouse_requests_total',
      help: 'Requests by listener, route, decision and response status',
      labelNames: ['listener', 'route', 'decision', 'status'],
      registers: [registry],
    }),
    decisionSeconds: new Histogram({
      name: 'gatehouse_decision_seconds',
      help: 'Time to authenticate and decide a request',
      labelNames: ['listener'],
      buckets: [0.000005, 0.00001, 0.00002, 0.00005, 0.0001, 0.0005, 0.001, 0.005],
      registers: [registry],
    }),
    upstreamSeconds: new Histogram({
      name: 'gatehouse_upstream_seconds',
      help: 'Time from forwarding a request to the upstream response headers',
      labelNames: ['route'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    tlsFailures: new Counter({
      name: 'gatehouse_tls_handshake_failures_total',
      help: 'Refused TLS handshakes (no certificate, foreign CA, expired, revoked)',
      labelNames: ['listener', 'reason'],
      registers: [registry],
    }),
  };
}

/** A gauge whose value is read when /metrics is scraped. */
export function gaugeOf(m: GatewayMetrics, name: string, help: string, value: () => number): void {
  new Gauge({
    name,
    help,
    registers: [m.registry],
    collect() {
      this.set(value());
    },
  });
}
