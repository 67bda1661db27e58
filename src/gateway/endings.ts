// An ended identity ends every channel that carries it: keep-alive connections and WebSockets,
// on both listeners. Whatever ends it — logout, a session's expiry, `user disable`, a revocation
// from any replica (store watch or bus), a certificate's notAfter (the connection stage's own
// timer) — arrives here as one IdentityEnd and is applied the same way.
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
