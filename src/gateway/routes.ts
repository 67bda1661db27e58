// Routes: the Host header picks one upstream; nothing else about a request does.
import { hostOnly } from '../lib/host.js';

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
