// Human identity for the proxy: the session cookie, looked up in memory. What the upstream
// needs beyond the Principal (amr, acr, sid, the last WebAuthn time for step-up) is kept per
// request for the listener's upstreamHeaders hook.
import type { IncomingMessage } from 'node:http';
import type { GatehouseError } from '../errors.js';
import type { Principal } from '../contracts/authz.js';
import { readCookie } from './lib/cookies.js';
import type { SessionManager, SessionView } from './sessions.js';
import { SESSION_COOKIE } from './types.js';

export interface HumanIdentity {
  identify: (req: IncomingMessage, host: string) => Principal | GatehouseError;
  /** The session behind a request identify() admitted. */
  viewOf: (req: IncomingMessage) => SessionView | undefined;
}

export function humanIdentity(sessions: SessionManager): HumanIdentity {
  const views = new WeakMap<IncomingMessage, SessionView>();
  return {
    identify: (req, host) => {
      const view = sessions.lookup(readCookie(req.headers, SESSION_COOKIE), host);
      if (!('userId' in view)) return view;
      views.set(req, view);
      return { kind: 'user', userId: view.userId, roles: view.roles };
    },
    viewOf: (req) => views.get(req),
  };
}
