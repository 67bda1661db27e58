// The shapes the stages share: the routes (the Host header picks one upstream; nothing else
// about a request does), and one request's walk through the pipeline — what each stage learned,
// in one object the next stage reads, so a stage never looks facts up elsewhere.
import type { IncomingMessage } from 'node:http';
import type { Decision, Principal } from '../contracts/authz.js';
import { hostOnly } from '../lib/host.js';
import type { ConnectionFacts } from './connection.js';

export interface ProxyRoute {
  host: string;
  namespace: string;
  service: string;
  upstream: string;
  passAuthorization?: boolean;
  /** Header carrying the minted token upstream (default authorization). */
  tokenHeader?: string;
  /** Human listener: the longest a WebAuthn assertion may be ago (ms) for this route. */
  stepUp?: number;
  /** A request header with an underscore in its name: refused (default) or dropped. */
  headersWithUnderscores?: 'reject' | 'drop';
  /** How the upstream compares paths: allow rules exact (default) or also case-folded. */
  paths?: 'exact' | 'case-insensitive';
  /** Path spellings refused by default that this upstream reads literally (gateway/path.ts PATH_FORMS). */
  allowPathForms?: readonly ('double-encoding' | 'overlong-utf8' | 'trailing-dot' | 'encoded-space' | 'encoded-semicolon')[];
  /** Human listener: the assurance level a session must have proven for this route. */
  acr?: 'aal1' | 'aal2' | 'aal3';
  /** The whole request must have arrived within this (ms; config gives a default). */
  requestTimeout: number;
  /** The longest silence between two pieces of a request body (ms; config gives a default). */
  bodyIdleTimeout: number;
}

export class RouteTable {
  readonly #byHost: ReadonlyMap<string, ProxyRoute>;
  constructor(routes: readonly ProxyRoute[]) {
    this.#byHost = new Map(routes.map((r) => [r.host.toLowerCase(), r]));
  }
  /** Looks a route up by the Host header (port and case ignored). */
  match(hostHeader: string | undefined): ProxyRoute | undefined {
    return hostHeader === undefined ? undefined : this.get(hostOnly(hostHeader));
  }
  /** Looks a route up by a host already in hostOnly's form (lowercase, no port). */
  get(host: string): ProxyRoute | undefined {
    return this.#byHost.get(host);
  }
  get hosts(): string[] {
    return [...this.#byHost.keys()];
  }
}

/** `<namespace>/<service>`: the route label of metrics and logs. */
export function routeLabel(route: ProxyRoute | undefined): string {
  return route === undefined ? 'none' : `${route.namespace}/${route.service}`;
}

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
