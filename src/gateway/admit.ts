// Stage 3, admit: the fail-closed walk — path safety, identity, route, policy. Each step either
// fills in the exchange or returns the refusal; a policy engine that throws is a refusal too.
import { GatehouseError } from '../errors.js';
import type { Authorizer, Decision } from '../contracts/authz.js';
import { reasonsFor, type Refusal } from './audit.js';
import type { Exchange } from './exchange.js';
import type { Identifier } from './identify.js';
import { checkRequestTarget } from './path.js';
import type { RouteTable } from './routes.js';

export interface AdmitOptions {
  routes: RouteTable;
  identifier: Identifier;
  authorizer: Authorizer;
}

/** Undefined: admitted (ex.path, identity, route and decision are set). */
export function admit(ex: Exchange, o: AdmitOptions): Refusal | undefined {
  const target = checkRequestTarget(ex.target);
  if (!target.ok) {
    const error = new GatehouseError('ERR_PATH_REJECTED', `request path refused: ${target.problem}`, { details: { problem: target.problem } });
    return { error, reasons: ['bad-path'], extra: { 'event.reason': target.problem } };
  }
  ex.path = target.path;
  ex.query = target.query;

  const who = o.identifier.identify(ex);
  if (who instanceof GatehouseError) return { error: who, reasons: reasonsFor(who) };
  ex.identity = who;

  const route = o.routes.get(ex.host);
  if (route === undefined) return { error: new GatehouseError('ERR_ROUTE_NOT_FOUND', 'no route for this host'), reasons: ['unknown-route'] };
  ex.route = route;

  let decision: Decision;
  try {
    decision = o.authorizer.decide({ principal: who.principal, namespace: route.namespace, service: route.service, method: ex.method, path: target.path });
  } catch {
    return { error: new GatehouseError('ERR_POLICY_DENIED', 'policy unavailable'), reasons: ['policy-unavailable'] };
  }
  ex.decision = decision;
  if (!decision.pass) {
    return { error: new GatehouseError('ERR_POLICY_DENIED', `${who.subject} may not ${ex.method} ${target.path} on ${route.namespace}/${route.service}`), reasons: decision.reasons };
  }
  return undefined;
}
