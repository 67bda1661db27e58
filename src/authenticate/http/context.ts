// What the human listener's gateway routes share: their dependencies, the Origin check (CSRF),
// security headers, audit events and cookie helpers.
import type { KeyObject } from 'node:crypto';
import { createHmac } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError } from '../../errors.js';
import type { Clock } from '../../lib/clock.js';
import type { Store } from '../../store/index.js';
import { LeasePool } from '../lib/lease-pool.js';
import type { AuditEvent, AuditSink } from '../../contracts/audit.js';
import type { SessionManager } from '../sessions.js';
import type { Regulator } from '../regulation.js';
import type { MfaPolicy } from '../factors.js';
import type { RelyingParty } from '../webauthn/common.js';
import type { AttestationPolicy } from '../webauthn/registration.js';
import type { ReturnPolicy } from '../redirect.js';
import { hostOnly } from '../../lib/host.js';

export interface ForwardedRequest {
  host: string;
  method: string;
  /** The original request target (path and query). */
  target: string;
}

export type ForwardedVerdict = { ok: true; headers: Record<string, string> } | { ok: false; error: GatehouseError };

export interface HumanRoutesOptions {
  store: Store;
  clock: Clock;
  kek: KeyObject;
  sessions: SessionManager;
  regulator: Regulator;
  audit: AuditSink;
  rp: RelyingParty;
  attestation: AttestationPolicy;
  challengeTtlMs: number;
  mfa: MfaPolicy;
  /**
   * totp.allowSoftware: enrollment may generate a seed for a phone app when no hardware token is
   * assigned (such sessions are at most aal2). Absent: false.
   */
  allowSoftwareTotp?: boolean;
  pendingTtlMs: number;
  sessionAbsoluteMs: number;
  rateLimit: { max: number; windowMs: number };
  /** https origin where people sign in for every route host; undefined: on each host. */
  loginOrigin: string | undefined;
  /** Lowercase route hosts. */
  routeHosts: readonly string[];
  /** Port of the public https origins ('' for 443). */
  publicPort: string;
  /** Addresses allowed to call /.gatehouse/auth/verify; undefined: any (document: front proxy only). */
  trustedProxies: readonly string[] | undefined;
  /** The policy decision for a request described by a front proxy (wired in app.ts). */
  verifyForwarded(req: FastifyRequest, fwd: ForwardedRequest): Promise<ForwardedVerdict>;
}

export interface HumanContext extends HumanRoutesOptions {
  /** Shared leases for short-lived records (pending sign-ins, challenges, hand-off codes). */
  leases: LeasePool;
  loginHost: string | undefined;
  hostOf(req: FastifyRequest): string;
  originOf(host: string): string;
  returnPolicy(req: FastifyRequest): ReturnPolicy;
  /** CSRF: the Origin must be present, allowed, and this very host's. */
  checkOrigin(req: FastifyRequest): void;
  event(req: FastifyRequest, action: string, outcome: 'success' | 'failure', extra?: Partial<AuditEvent>): void;
  /** Deterministic stand-in credential id for a user name that cannot sign in (no enumeration). */
  fakeCredentialId(username: string): string;
}

export { hostOnly };

/** The https origin of a route host on the public port. */
export function originOfHost(host: string, publicPort: string): string {
  return `https://${host}${publicPort === '' ? '' : `:${publicPort}`}`;
}

/** CSRF: the Origin must be present, allowed (an RP origin, a route host's, the login origin), and this very host's. */
export function originCheck(o: Pick<HumanRoutesOptions, 'routeHosts' | 'loginOrigin' | 'publicPort'> & { origins: readonly string[] }): (req: FastifyRequest) => void {
  const allowedOrigins = new Set<string>([...o.origins, ...o.routeHosts.map((h) => originOfHost(h, o.publicPort)), ...(o.loginOrigin !== undefined ? [o.loginOrigin] : [])]);
  return (req) => {
    const origin = req.headers.origin;
    // A state-changing request must say where it comes from
    if (typeof origin !== 'string' || origin === '') throw new GatehouseError('ERR_ORIGIN_REFUSED', 'expected an Origin header, got none');
    // It must be exactly one of the allowed origins
    if (!allowedOrigins.has(origin)) throw new GatehouseError('ERR_ORIGIN_REFUSED', `expected an allowed origin, got ${origin.slice(0, 200)}`);
    // And the origin of this very host (no cross-host posts between gateway hosts)
    if (new URL(origin).hostname.toLowerCase() !== hostOnly(req.headers.host)) throw new GatehouseError('ERR_ORIGIN_REFUSED', `expected the origin of ${hostOnly(req.headers.host)}, got ${origin.slice(0, 200)}`);
  };
}

export function createContext(o: HumanRoutesOptions): HumanContext {
  const originOf = (host: string): string => originOfHost(host, o.publicPort);
  const loginHost = o.loginOrigin === undefined ? undefined : new URL(o.loginOrigin).hostname.toLowerCase();
  const others = new Set<string>(loginHost === undefined ? [] : [...o.routeHosts, loginHost]);
  const fakeKey = createHmac('sha256', o.kek).update('gatehouse/fake-credential/v1').digest();
  return {
    ...o,
    leases: new LeasePool(o.store, o.clock),
    loginHost,
    hostOf: (req) => hostOnly(req.headers.host),
    originOf,
    returnPolicy: (req) => ({ thisHost: hostOnly(req.headers.host), otherHosts: others, publicPort: o.publicPort }),
    checkOrigin: originCheck({ ...o, origins: o.rp.origins }),
    event(req, action, outcome, extra = {}) {
      o.audit.append({
        '@timestamp': new Date(o.clock.now()).toISOString(),
        'event.action': action,
        'event.outcome': outcome,
        'source.ip': req.ip,
        'gatehouse.listener': 'human',
        'gatehouse.request_id': req.id,
        ...extra,
      });
    },
    fakeCredentialId: (username) => createHmac('sha256', fakeKey).update(username).digest().subarray(0, 32).toString('base64url'),
  };
}

export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form POSTs, which the CSRF check must refuse
  'referrer-policy': 'same-origin',
  'strict-transport-security': 'max-age=31536000',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export function sendHtml(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.status(status).type('text/html; charset=utf-8').send(html);
}

export function wantsHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept ?? '';
  return accept.includes('text/html');
}
