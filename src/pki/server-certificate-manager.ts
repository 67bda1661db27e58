// Keeps a listener's certificate fresh: issued at start, renewed before it expires. The listener
// subscribes with onRenew and calls server.setSecureContext with the new pair.
import { GatehouseError } from '../errors.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { issueServerCertificate } from './issue-server-certificate.js';
import { DEFAULT_CERT_TTL_MS } from './issue-certificate.js';
import type { CertificateAuthority, IssuedCertificate } from './types.js';

export interface ServerCertificateManagerOptions {
  ca: CertificateAuthority;
  /** SANs (see listenerHosts). */
  hosts: string[];
  clock: Clock;
  /** Lifetime of each certificate; default 24 h. */
  ttlMs?: number;
  /** Renew this long before notAfter; default a third of the certificate's lifetime (renewal at 2/3 of its life). */
  renewBeforeMs?: number;
  spiffeId?: string;
  /** Told when a renewal fails (the current certificate stays in use and renewal is retried). */
  onError?: (err: Error) => void;
}

export interface ServerCredentials {
  /** PEM certificate and key, in the shape tls.createSecureContext takes. */
  cert: string;
  key: string;
  ca: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export interface ServerCertificateManager {
  current(): ServerCredentials;
  /** fn runs after each renewal with the new credentials; returns an unsubscribe function. */
  onRenew(fn: (creds: ServerCredentials) => void): () => void;
  /** Issues a new certificate now (also re-arms the renewal timer). */
  renewNow(): Promise<ServerCredentials>;
  close(): void;
}

const RETRY_MAX_MS = 60_000;

function credentials(issued: IssuedCertificate): ServerCredentials {
  return { cert: issued.certPem, key: issued.keyPem, ca: issued.caPem, serial: issued.serial, notBefore: issued.notBefore, notAfter: issued.notAfter };
}

export async function startServerCertificateManager(options: ServerCertificateManagerOptions): Promise<ServerCertificateManager> {
  const { ca, hosts, clock } = options;
  const ttlMs = options.ttlMs ?? DEFAULT_CERT_TTL_MS;
  if (options.renewBeforeMs !== undefined && (!Number.isFinite(options.renewBeforeMs) || options.renewBeforeMs <= 0 || options.renewBeforeMs >= ttlMs)) {
    throw new GatehouseError('ERR_PKI_BAD_TTL', `renewBeforeMs must be positive and shorter than the lifetime (${ttlMs} ms)`);
  }
  const issue = async (): Promise<ServerCredentials> => credentials(await issueServerCertificate(ca, {
    hosts,
    ttlMs,
    clock,
    ...(options.spiffeId === undefined ? {} : { spiffeId: options.spiffeId }),
  }));

  let current = await issue();
  let timer: TimerHandle | undefined;
  let closed = false;
  let inFlight: Promise<ServerCredentials> | undefined;
  const listeners = new Set<(c: ServerCredentials) => void>();

  const arm = (delayMs: number): void => {
    timer?.cancel();
    if (!closed) timer = clock.setTimer(() => void renew().catch(() => undefined), Math.max(0, delayMs));
  };
  const armForCurrent = (): void => {
    const now = clock.now();
    // The lifetime may be shorter than ttlMs near the CA's own expiry; renew within what is left.
    const life = current.notAfter.getTime() - now;
    const before = options.renewBeforeMs !== undefined && options.renewBeforeMs < life ? options.renewBeforeMs : life / 3;
    // At least a second apart, even in the CA's last moments.
    arm(Math.max(1000, life - before));
  };
  const renew = (): Promise<ServerCredentials> => {
    inFlight ??= (async () => {
      try {
        const next = await issue();
        if (closed) return next;
        current = next;
        armForCurrent();
        for (const fn of listeners) {
          try {
            fn(next);
          } catch (err) {
            options.onError?.(err instanceof Error ? err : new Error(String(err)));
          }
        }
        return next;
      } catch (err) {
        // Keep serving the current certificate; try again soon, well before it expires.
        options.onError?.(err instanceof Error ? err : new Error(String(err)));
        arm(Math.min(RETRY_MAX_MS, Math.max(1000, (current.notAfter.getTime() - clock.now()) / 4)));
        throw err;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };
  armForCurrent();

  return {
    current: () => current,
    onRenew(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    renewNow: renew,
    close() {
      closed = true;
      timer?.cancel();
    },
  };
}
