// Stage 3, admit: the fail-closed walk — path safety, identity, route, the path forms the route
// allows, policy. Each step either fills in the exchange or returns the refusal; a policy engine
// that throws is a refusal too.
import { GatehouseError } from '../errors.js';
import type { Authorizer, Decision } from '../contracts/authz.js';
import { reasonsFor, type Refusal } from './audit.js';
import type { Exchange } from './exchange.js';
import type { Identifier } from './identify.js';
import { PATH_FORMS, checkRequestTarget, refusedForm, type PathProblem } from './path.js';
import type { ProxyRoute, RouteTable } from './exchange.js';

export interface AdmitOptions {
  routes: RouteTable;
  identifier: Identifier;
  authorizer: Authorizer;
}

function pathRefusal(problem: PathProblem): Refusal {
  const error = new GatehouseError('ERR_PATH_REJECTED', `request path refused: ${problem}`, { details: { problem } });
  return { error, reasons: ['bad-path'], extra: { 'event.reason': problem } };
}

/** Undefined: admitted (ex.path, identity, route and decision are set). */
export function admit(ex: Exchange, o: AdmitOptions): Refusal | undefined {
  // the forms a route may allow are collected here and refused once the route is known
  const target = checkRequestTarget(ex.target, PATH_FORMS);
  if (!target.ok) return pathRefusal(target.problem);
  ex.path = target.path;
  ex.query = target.query;

  const who = o.identifier.identify(ex);
  if (who instanceof GatehouseError) return { error: who, reasons: reasonsFor(who) };
  ex.identity = who;

  const route: ProxyRoute | undefined = o.routes.get(ex.host);
  if (route === undefined) return { error: new GatehouseError('ERR_ROUTE_NOT_FOUND', 'no route for this host'), reasons: ['unknown-route'] };
  ex.route = route;

  const form = target.forms.length === 0 ? undefined : refusedForm(target.forms, route.allowPathForms ?? []);
  if (form !== undefined) return pathRefusal(form);

  let decision: Decision;
  try {
    decision = o.authorizer.decide({ principal: who.principal, namespace: route.namespace, service: route.service, method: ex.method, path: target.path, pathCase: route.paths ?? 'exact' });
  } catch {
    return { error: new GatehouseError('ERR_POLICY_DENIED', 'policy unavailable'), reasons: ['policy-unavailable'] };
  }
  ex.decision = decision;
  if (!decision.pass) {
    const error = new GatehouseError('ERR_POLICY_DENIED', `${who.subject} may not ${ex.method} ${target.path} on ${route.namespace}/${route.service}`);
    // a deny that matched only the folded path says so (policy explain shows the same)
    return { error, reasons: decision.reasons, ...(decision.comparison !== undefined ? { extra: { 'gatehouse.path_comparison': decision.comparison } } : {}) };
  }
  return undefined;
}
