// The CRL the proxy serves at /.gatehouse/crl.pem: cached, rebuilt when the revocation set
// changes, and refreshed before it goes stale.
import type { Clock } from '../lib/clock.js';
import { buildCrl } from './build-crl.js';
import type { CertRevocationList } from './revocation-list.js';
import type { CertificateAuthority } from './types.js';

export interface CrlPublisherOptions {
  ca: CertificateAuthority;
  list: CertRevocationList;
  clock: Clock;
  /** How long each CRL is valid (nextUpdate − thisUpdate); default 24 h. It is rebuilt after half of it. */
  validityMs?: number;
}

export interface CrlPublisher {
  /** The current CRL as PEM (built on demand: at most one signature per change or half-validity). */
  pem(): string;
  close(): void;
}

export function crlPublisher(options: CrlPublisherOptions): CrlPublisher {
  const { ca, list, clock } = options;
  const validityMs = options.validityMs ?? 24 * 3_600_000;
  let cached: { pem: string; builtAt: number } | undefined;
  let lastNumber = -1n;
  const stop = list.onChange(() => {
    cached = undefined;
  });
  return {
    pem() {
      const now = clock.now();
      if (cached === undefined || now - cached.builtAt >= validityMs / 2 || now < cached.builtAt) {
        const revoked = list.entries().map((e) => ({ serial: e.serial, revokedAt: e.revokedAt, reason: e.reason }));
        // cRLNumber must grow with every new CRL, even two built in the same millisecond.
        const crlNumber = BigInt(now) > lastNumber ? BigInt(now) : lastNumber + 1n;
        lastNumber = crlNumber;
        cached = { pem: buildCrl(ca, revoked, { clock, nextUpdateMs: validityMs, crlNumber }), builtAt: now };
      }
      return cached.pem;
    },
    close: stop,
  };
}
