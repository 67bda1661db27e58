// An ended identity ends every channel that carries it: keep-alive connections and WebSockets,
// on both listeners. Whatever ends it — logout, a session's expiry, `user disable`, a revocation
// from any replica (store watch or bus), a certificate's notAfter (the connection stage's own
// timer) — arrives here as one IdentityEnd and is applied the same way.
import type { AuditSink } from '../contracts/audit.js';
import type { Clock } from '../lib/clock.js';
import type { ConnectionFacts } from './connection.js';
import type { Pipeline } from './listener.js';

export interface IdentityEnd {
  kind: 'session' | 'user' | 'cert' | 'service';
  /** session: sid; user: user id; cert: serial (lowercase hex); service: SPIFFE ID. */
  id: string;
}

/** Every label and connection fact that carries this identity. */
function carries(end: IdentityEnd): { tag: string; facts?: (f: ConnectionFacts) => boolean } {
  switch (end.kind) {
    case 'cert':
      return { tag: `cert:${end.id}`, facts: (f) => f.serial === end.id };
    case 'service':
      return { tag: `service:${end.id}`, facts: (f) => f.spiffeId === end.id };
    default:
      return { tag: `${end.kind}:${end.id}` };
  }
}

/** Closes every channel of an ended identity on these listeners; returns how many. */
export function endChannels(listeners: readonly Pipeline[], end: IdentityEnd): number {
  const { tag, facts } = carries(end);
  let closed = 0;
  for (const l of listeners) {
    closed += l.closeTagged(tag);
    // connections that made no request yet carry no label: their certificate still says who they are
    if (facts !== undefined) closed += l.closeWhere((f) => facts(f));
  }
  return closed;
}

/** What applying a revocation needs beside the listeners. */
export interface RevocationSource {
  onRevoked(fn: (r: { kind: 'session' | 'user' | 'token' | 'cert' | 'service'; id: string; subject?: string | undefined }, via: string) => void): () => void;
}
export interface TokenCaches {
  forgetToken(jti: string): void;
  forgetSubject(subject: string): void;
}

/**
 * A revocation from any replica (store watch or bus, whichever is first): tokens cached for that
 * identity are dropped and re-minted, its channels closed, and the application audited.
 * Returns the unsubscribe.
 */
export function applyRevocations(o: { revocations: RevocationSource; tokens: TokenCaches; invalidate(): void; listeners: readonly Pipeline[]; audit: AuditSink; clock: Clock }): () => void {
  return o.revocations.onRevoked((r, via) => {
    o.invalidate();
    if (r.kind === 'token') o.tokens.forgetToken(r.id);
    if (r.kind === 'user' || r.kind === 'service') o.tokens.forgetSubject(r.id);
    if (r.kind === 'session' && r.subject !== undefined) o.tokens.forgetSubject(r.subject);
    const closed = r.kind === 'token' ? 0 : endChannels(o.listeners, { kind: r.kind, id: r.id });
    o.audit.append({
      '@timestamp': new Date(o.clock.now()).toISOString(),
      'event.action': 'revocation.applied',
      'event.outcome': 'success',
      'gatehouse.revocation_kind': r.kind,
      'gatehouse.revocation_id': r.id,
      'gatehouse.revocation_via': via,
      'gatehouse.channels_closed': closed,
    });
  });
}
