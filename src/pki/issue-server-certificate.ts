// The gateway's own certificate for its listeners (and as its client certificate towards https upstreams).
import { isIP } from 'node:net';
import { GatehouseError } from '../errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { issueLeaf, type AltName } from './lib/leaf.js';
import { parseSpiffeId, spiffeId } from './spiffe.js';
import type { CertificateAuthority, IssuedCertificate } from './types.js';
import { DEFAULT_CERT_TTL_MS } from './issue-certificate.js';

export interface IssueServerCertificateOptions {
  /** IP addresses become IP SANs, names DNS SANs. */
  hosts: string[];
  /** Default: spiffe://<td>/ns/gatehouse/sa/gateway. */
  spiffeId?: string;
  ttlMs?: number;
  clock?: Clock;
}

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function gatewaySpiffeId(trustDomain: string): string {
  return spiffeId(trustDomain, 'gatehouse', 'gateway');
}

/** The SANs for a listener: its address (unless it is a wildcard address) and localhost. */
export function listenerHosts(address: string): string[] {
  const bare = address.replace(/^\[(.*)\]$/, '$1');
  const wildcard = bare === '0.0.0.0' || bare === '::' || bare === '';
  return [...new Set([...(wildcard ? [] : [bare]), 'localhost'])];
}

function hostAltName(host: string): AltName {
  const bare = typeof host === 'string' ? host.replace(/^\[(.*)\]$/, '$1') : '';
  if (isIP(bare) !== 0) return { type: 7, ip: bare };
  const name = bare.toLowerCase();
  if (!DNS_NAME.test(name)) throw new GatehouseError('ERR_PKI_BAD_HOST', `not an IP address or DNS name: ${JSON.stringify(String(host).slice(0, 80))}`);
  return { type: 2, value: name };
}

export async function issueServerCertificate(ca: CertificateAuthority, options: IssueServerCertificateOptions): Promise<IssuedCertificate> {
  if (!Array.isArray(options.hosts) || options.hosts.length === 0) throw new GatehouseError('ERR_PKI_BAD_HOST', 'a server certificate needs at least one host');
  const seen = new Set<string>();
  const hostNames = options.hosts.map(hostAltName).filter((n) => {
    const k = n.type === 7 ? `ip:${n.ip}` : `dns:${n.value}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
  // The gateway's own ID must be a workload ID of this CA's trust domain.
  const id = options.spiffeId ?? gatewaySpiffeId(ca.trustDomain);
  const parts = parseSpiffeId(id);
  if (parts.trustDomain !== ca.trustDomain) {
    throw new GatehouseError('ERR_SPIFFE_ID_INVALID', `${id} is not in the CA's trust domain ${ca.trustDomain}`);
  }
  const firstDns = hostNames.find((n) => n.type === 2);
  return issueLeaf({
    ca,
    commonName: firstDns?.type === 2 && firstDns.value.length <= 64 ? firstDns.value : parts.service,
    altNames: [...hostNames, { type: 6, value: id }],
    spiffeId: id,
    ttlMs: options.ttlMs ?? DEFAULT_CERT_TTL_MS,
    clock: options.clock ?? systemClock,
  });
}
