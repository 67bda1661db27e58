// Stage 2, identify: who is calling — a client certificate's SPIFFE ID (service listener) or a
// session cookie (human listener) — and whether that identity has ended (revoked, expired,
// disabled). The answer names the labels of every channel that carries the identity, so the
// pipeline can tag the connection and close it when the identity ends.
import type { IncomingMessage } from 'node:http';
import { GatehouseError } from '../errors.js';
import type { Principal } from '../contracts/authz.js';
import type { Clock } from '../lib/clock.js';
import { parseSpiffeId } from '../pki/spiffe.js';
import type { Exchange, Identity } from './exchange.js';

/** What identify reads of the revocation set (every kind, from the store and the bus). */
export interface RevocationView {
  has(kind: 'session' | 'user' | 'token' | 'cert' | 'service', id: string): boolean;
  isCertRevoked(serial: string): boolean;
}

export interface Identifier {
  /** Runs before the request is decided (async): e.g. fetch a session created on another replica a moment ago. */
  prepare?: (req: IncomingMessage) => Promise<void>;
  /** Synchronous: served from memory on every request. */
  identify(ex: Exchange): Identity | GatehouseError;
}

type ServicePrincipal = Extract<Principal, { kind: 'service' }>;

/** Labels of a service connection, known at the handshake. */
export function certificateTags(serial: string, spiffeId: string): string[] {
  return [`cert:${serial}`, `service:${spiffeId}`];
}

/**
 * Services: the one SPIFFE ID of the certificate the handshake verified, parsed strictly once
 * per connection; expiry and revocation checked on every request.
 */
export function certificateIdentity(o: { trustDomain: string; clock: Clock; revocations: RevocationView }): Identifier {
  const parsed = new WeakMap<object, ServicePrincipal | GatehouseError>();
  const parse = (spiffeId: string | undefined, serial: string | undefined): ServicePrincipal | GatehouseError => {
    if (spiffeId === undefined || serial === undefined) return new GatehouseError('ERR_CERT_INVALID', 'the certificate must carry exactly one SPIFFE ID');
    try {
      const id = parseSpiffeId(spiffeId);
      if (id.trustDomain !== o.trustDomain) return new GatehouseError('ERR_CERT_INVALID', 'the certificate names another trust domain');
      return { kind: 'service', spiffeId, namespace: id.namespace, service: id.service, certSerial: serial };
    } catch {
      return new GatehouseError('ERR_CERT_INVALID', 'the certificate SPIFFE ID is malformed');
    }
  };
  return {
    identify(ex) {
      const facts = ex.connection;
      if (facts?.cert === undefined) return new GatehouseError('ERR_CERT_REQUIRED');
      let p = parsed.get(facts);
      if (p === undefined) parsed.set(facts, (p = parse(facts.spiffeId, facts.serial)));
      if (p instanceof GatehouseError) return p;
      // the connection stage closes it at notAfter; a request racing that timer is refused here
      if (facts.notAfter !== undefined && o.clock.now() >= facts.notAfter) return new GatehouseError('ERR_CERT_EXPIRED');
      if (o.revocations.isCertRevoked(p.certSerial)) return new GatehouseError('ERR_CERT_REVOKED');
      if (o.revocations.has('service', p.spiffeId)) return new GatehouseError('ERR_SERVICE_REVOKED');
      return { principal: p, subject: p.spiffeId, tags: certificateTags(p.certSerial, p.spiffeId) };
    },
  };
}

/** What identify needs of a session: the lookup the session manager serves from memory. */
export interface SessionSource {
  ensure(cookie: string | undefined): Promise<void>;
  lookup(
    cookie: string | undefined,
    host: string,
  ): GatehouseError | { sid: string; userId: string; roles: Readonly<Record<string, readonly string[]>>; amr: readonly string[]; acr: string; lastWebAuthnAt: number; expiresAt: number };
}

/** People: the session cookie for this very host, then the revocation of its user or session. */
export function sessionIdentity(o: { sessions: SessionSource; revocations: RevocationView | undefined; readCookie: (req: IncomingMessage) => string | undefined }): Identifier {
  return {
    prepare: (req) => o.sessions.ensure(o.readCookie(req)),
    identify(ex) {
      const view = o.sessions.lookup(o.readCookie(ex.req), ex.host);
      if (view instanceof GatehouseError) return view;
      if (o.revocations?.has('user', view.userId)) return new GatehouseError('ERR_USER_REVOKED');
      if (o.revocations?.has('session', view.sid)) return new GatehouseError('ERR_SESSION_REVOKED');
      return {
        principal: { kind: 'user', userId: view.userId, roles: view.roles },
        subject: view.userId,
        tags: [`session:${view.sid}`, `user:${view.userId}`],
        endBy: view.expiresAt,
        session: { sid: view.sid, userId: view.userId, roles: view.roles, amr: view.amr, acr: view.acr, lastWebAuthnAt: view.lastWebAuthnAt },
      };
    },
  };
}
