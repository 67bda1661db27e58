// One request's walk through the pipeline: what each stage learned, in one object that the
// next stage reads. It replaces per-request WeakMaps: a stage never looks facts up elsewhere.
import type { IncomingMessage } from 'node:http';
import type { Decision, Principal } from '../contracts/authz.js';
import { hostOnly } from '../lib/host.js';
import type { ConnectionFacts } from './connection.js';
import type { ProxyRoute } from './routes.js';

export type ListenerName = 'service' | 'human';

/** What identify learned: who, and the labels of every channel that carries this identity. */
export interface Identity {
  principal: Principal;
  /** spiffe://... for services, the user id for people. */
  subject: string;
  /** `session:<sid>`, `user:<id>`, `cert:<serial>`, `service:<spiffe>`: ending any of them closes the channel. */
  tags: readonly string[];
  /** People: what the upstream and step-up need beyond the principal. */
  session?: SessionFacts;
  /** The latest clock time a channel carrying this identity may live (a session's absolute end). */
  endBy?: number;
}

export interface SessionFacts {
  sid: string;
  userId: string;
  roles: Readonly<Record<string, readonly string[]>>;
  amr: readonly string[];
  acr: string;
  lastWebAuthnAt: number;
}

export interface Exchange {
  readonly id: string;
  readonly listener: ListenerName;
  readonly req: IncomingMessage;
  /** A plain request or a WebSocket (or other) upgrade. */
  readonly upgrade: boolean;
  /** The request target exactly as received. */
  readonly target: string;
  readonly method: string;
  /** The Host asked for: lowercase, no port. */
  readonly host: string;
  readonly sourceIp: string;
  /** Facts of the TLS connection (undefined for in-process inject). */
  readonly connection: ConnectionFacts | undefined;
  /** Forward-auth: a front proxy described the request; the decision is all that is asked. */
  readonly forwardAuth: boolean;
  // ---- filled in by the stages, in order
  path?: string;
  query?: string;
  identity?: Identity;
  route?: ProxyRoute;
  decision?: Decision;
  /** The audit stage's exactly-once guard. */
  audited: boolean;
}

export interface ExchangeInit {
  id: string;
  listener: ListenerName;
  req: IncomingMessage;
  target: string;
  connection: ConnectionFacts | undefined;
  /** Forward-auth: the method and host the front proxy reports. */
  forwarded?: { method: string; host: string };
}

export function newExchange(i: ExchangeInit): Exchange {
  return {
    id: i.id,
    listener: i.listener,
    req: i.req,
    upgrade: i.req.headers.upgrade !== undefined,
    target: i.target,
    method: i.forwarded?.method ?? i.req.method ?? 'GET',
    host: hostOnly(i.forwarded?.host ?? i.req.headers.host),
    sourceIp: i.req.socket.remoteAddress ?? 'unknown',
    connection: i.connection,
    forwardAuth: i.forwarded !== undefined,
    audited: false,
  };
}
