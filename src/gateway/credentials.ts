// Stage 4, credentials: the bearer token a caller presented (on the service listener it must be
// bound to this very connection's certificate and name this upstream), and what the upstream
// gets instead: a token minted for exactly it, and for people their identity and step-up.
import { GatehouseError } from '../errors.js';
import { parseBearer } from '../lib/bearer.js';
import type { Clock } from '../lib/clock.js';
import type { MintInput, MintedToken, VerifiedToken, VerifyOptions } from '../tokens/types.js';
import type { Refusal } from './audit.js';
import type { ConnectionFacts } from './connection.js';
import type { Exchange } from './exchange.js';
import type { ProxyRoute } from './exchange.js';
import { upstreamSpiffeId } from './upstream.js';

/** What the stage needs of the token service. */
export interface TokenIssuer {
  mint(input: MintInput): Promise<MintedToken>;
  verify(token: string, options: VerifyOptions): Promise<VerifiedToken>;
}

export interface Credentials {
  /** A bearer the caller presented; throws a GatehouseError to refuse. */
  checkBearer(token: string, ex: Exchange): Promise<void>;
  /** Headers for the upstream; throws a GatehouseError to refuse (step-up, no signing key). */
  upstreamHeaders(ex: Exchange): Promise<Record<string, string>>;
}

/** Runs the stage: the upstream's headers, or the refusal. */
export async function credentials(ex: Exchange, c: Credentials): Promise<Record<string, string> | Refusal> {
  try {
    const bearer = parseBearer(ex.req.headers.authorization);
    if (bearer.kind === 'malformed') throw new GatehouseError('ERR_TOKEN_INVALID', 'malformed bearer token');
    if (bearer.kind === 'bearer') await c.checkBearer(bearer.token, ex);
    return await c.upstreamHeaders(ex);
  } catch (err) {
    const error = err instanceof GatehouseError ? err : new GatehouseError('ERR_INTERNAL', undefined, { cause: err });
    return { error, reasons: ex.decision?.reasons ?? [], extra: { 'gatehouse.token_refused': true } };
  }
}

function tokenHeader(route: ProxyRoute, token: string): Record<string, string> {
  const header = route.tokenHeader ?? 'authorization';
  return { [header]: header === 'authorization' ? `Bearer ${token}` : token };
}

interface CachedToken {
  headers: Record<string, string>;
  refreshAt: number;
  generation: number;
}

export interface ServiceCredentials extends Credentials {
  /** Every token cached per connection is re-minted (a revocation reached this replica). */
  invalidate(): void;
}

/**
 * Services. Undefined tokens: forward without minting (benchmarks), and refuse any bearer.
 * A connection's identity is fixed, so its token per route is reused, without even a cache
 * key computation, until a third of its life is left.
 */
export function serviceCredentials(o: { tokens: TokenIssuer | undefined; trustDomain: string; ttlMs: number; clock: Clock }): ServiceCredentials {
  const perConnection = new WeakMap<ConnectionFacts, Map<ProxyRoute, CachedToken>>();
  let generation = 0;
  const tokens = o.tokens;
  return {
    invalidate: () => void generation++,
    async checkBearer(token, ex) {
      if (tokens === undefined) throw new GatehouseError('ERR_TOKEN_INVALID', 'malformed bearer token');
      const thumbprint = ex.connection?.thumbprint;
      // bound to this very connection's certificate, for exactly this upstream
      await tokens.verify(token, { audience: upstreamSpiffeId(o.trustDomain, ex.route!), requireBinding: true, ...(thumbprint !== undefined ? { certThumbprint: thumbprint } : {}) });
    },
    async upstreamHeaders(ex) {
      if (tokens === undefined) return {};
      const route = ex.route!;
      const facts = ex.connection;
      const cache = facts === undefined ? undefined : perConnection.get(facts);
      const hit = cache?.get(route);
      if (hit !== undefined && o.clock.now() < hit.refreshAt && hit.generation === generation) return hit.headers;
      const minted = await tokens.mint({
        subject: ex.identity!.subject,
        audience: upstreamSpiffeId(o.trustDomain, route),
        namespace: route.namespace,
        roles: [],
        ...(facts?.thumbprint !== undefined ? { certThumbprint: facts.thumbprint } : {}),
      });
      const headers = tokenHeader(route, minted.token);
      if (facts !== undefined) {
        const map = cache ?? new Map<ProxyRoute, CachedToken>();
        if (cache === undefined) perConnection.set(facts, map);
        map.set(route, { headers, refreshAt: minted.expiresAt - o.ttlMs / 3, generation });
      }
      return headers;
    },
  };
}

/** People: a bearer is not an identity here (the session is); step-up, identity headers and the minted token. */
export function humanCredentials(o: { tokens: TokenIssuer | undefined; trustDomain: string; clock: Clock; acrSatisfies(have: string, need: 'aal1' | 'aal2' | 'aal3'): boolean }): Credentials {
  return {
    checkBearer: async () => undefined, // dropped unless the route passes Authorization on
    async upstreamHeaders(ex) {
      const s = ex.identity?.session;
      const route = ex.route!;
      if (s === undefined) throw new GatehouseError('ERR_SESSION_REQUIRED');
      // a route may demand an assurance level the session must have proven (docs/threat-model.md)
      if (route.acr !== undefined && !o.acrSatisfies(s.acr, route.acr)) {
        throw new GatehouseError('ERR_ACR_INSUFFICIENT', `this application needs ${route.acr}; this session proved ${s.acr.slice(0, 16)}`);
      }
      // a route with stepUp wants a WebAuthn assertion at most that old
      if (route.stepUp !== undefined && o.clock.now() - s.lastWebAuthnAt > route.stepUp) {
        throw new GatehouseError('ERR_STEP_UP_REQUIRED', `this application wants a security-key confirmation at most ${Math.round(route.stepUp / 1000)} s old`);
      }
      const roles = s.roles[route.namespace] ?? [];
      const headers: Record<string, string> = {
        'x-gatehouse-user': s.userId,
        'x-gatehouse-roles': roles.join(','),
        'x-gatehouse-amr': s.amr.join(','),
        'x-gatehouse-acr': s.acr,
        'x-gatehouse-sid': s.sid,
      };
      if (o.tokens === undefined) return headers;
      const minted = await o.tokens.mint({ subject: s.userId, audience: upstreamSpiffeId(o.trustDomain, route), namespace: route.namespace, roles, amr: s.amr, acr: s.acr, sid: s.sid });
      return { ...headers, ...tokenHeader(route, minted.token) };
    },
  };
}
