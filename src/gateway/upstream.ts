// Upstream clients: one undici Agent per route, so each verifies its upstream's SPIFFE ID.
// Over https Gatehouse presents its own certificate and trusts only its own CA.
import type { PeerCertificate } from 'node:tls';
import { Agent, type Dispatcher } from 'undici';
import { spiffeId, uriSubjectAltNames } from '../pki/spiffe.js';

export interface UpstreamRoute {
  upstream: string;
  /** The SPIFFE ID an https upstream must present (spiffe://<td>/ns/<ns>/sa/<svc>). */
  expectedId: string;
}

export interface UpstreamTls {
  ca: string;
  cert: string;
  key: string;
}

/** What names a route's upstream workload. */
export interface UpstreamWorkload {
  namespace: string;
  service: string;
}

const workloadIds = new WeakMap<UpstreamWorkload, { trustDomain: string; id: string }>();

/**
 * The SPIFFE ID of a route's upstream: the token audience and the ID an https upstream must
 * present. Asked on every request, so pki/spiffe's spiffeId (which validates) runs once per route
 * object and trust domain; a route object replaced by a reload takes its entry with it.
 */
export function upstreamSpiffeId(trustDomain: string, route: UpstreamWorkload): string {
  const hit = workloadIds.get(route);
  if (hit !== undefined && hit.trustDomain === trustDomain) return hit.id;
  const id = spiffeId(trustDomain, route.namespace, route.service);
  workloadIds.set(route, { trustDomain, id });
  return id;
}

/** Accepts the upstream only if its certificate's one URI SAN is exactly the expected SPIFFE ID. */
export function spiffeServerIdentity(expectedId: string) {
  return (_host: string, cert: PeerCertificate): Error | undefined => {
    const uris = uriSubjectAltNames(cert.subjectaltname);
    if (uris.length === 1 && uris[0] === expectedId) return undefined;
    return new Error(`upstream certificate names ${uris.join(' ') || 'no SPIFFE ID'}, expected ${expectedId}`);
  };
}

export class UpstreamClients {
  #agents = new Map<string, Agent>();
  #tls: UpstreamTls | undefined;

  constructor(tls: UpstreamTls | undefined) {
    this.#tls = tls;
  }

  get(route: UpstreamRoute): Dispatcher {
    const key = `${route.upstream} ${route.expectedId}`;
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      const https = route.upstream.startsWith('https:');
      if (https && this.#tls === undefined) throw new Error('https upstream configured but no gateway certificate');
      agent = new Agent({
        connections: 128,
        keepAliveTimeout: 10_000,
        headersTimeout: 30_000,
        bodyTimeout: 300_000,
        connect: https && this.#tls ? { ca: this.#tls.ca, cert: this.#tls.cert, key: this.#tls.key, checkServerIdentity: spiffeServerIdentity(route.expectedId), minVersion: 'TLSv1.2' } : {},
      });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  /** New gateway certificate: new connections use it; old agents drain and close. */
  rotate(tls: UpstreamTls): void {
    this.#tls = tls;
    const old = [...this.#agents.values()];
    this.#agents.clear();
    for (const a of old) void a.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((a) => a.close().catch(() => undefined)));
    this.#agents.clear();
  }
}
