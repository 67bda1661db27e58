// A workload certificate: the SPIFFE ID as its only SAN, usable as client and as server.
import { systemClock, type Clock } from '../lib/clock.js';
import { issueLeaf } from './lib/leaf.js';
import { spiffeId } from './spiffe.js';
import type { CertificateAuthority, IssuedCertificate } from './types.js';

export interface IssueCertificateOptions {
  namespace: string;
  service: string;
  /** Lifetime; default 24 h; cut to the CA's own expiry. */
  ttlMs?: number;
  clock?: Clock;
}

export const DEFAULT_CERT_TTL_MS = 24 * 3_600_000;

export async function issueCertificate(ca: CertificateAuthority, options: IssueCertificateOptions): Promise<IssuedCertificate> {
  const id = spiffeId(ca.trustDomain, options.namespace, options.service);
  return issueLeaf({
    ca,
    // The CN is informational only; identity is the URI SAN (no DNS SANs, so the certificate names no host).
    commonName: options.service,
    altNames: [{ type: 6, value: id }],
    spiffeId: id,
    ttlMs: options.ttlMs ?? DEFAULT_CERT_TTL_MS,
    clock: options.clock ?? systemClock,
  });
}
