// Explaining a decision: every rule that matches, found by scanning the casbin lines with
// the model's own functions (slow, for people and tests, never for the request path).
import type { AccessRequest, Principal } from '../contracts/authz.js';
import { tryParseSpiffeId } from '../pki/spiffe.js';
import { casbinRequest, type CasbinRequest } from './casbin.js';
import { methodMatch, pathMatch, roleMatch } from './path.js';
import type { PolicyLine, PolicyRule, PolicyState } from './types.js';

/** model.conf's matcher, written out in TypeScript over one line. */
export function lineMatches(line: PolicyLine, request: AccessRequest | CasbinRequest): boolean {
  const [sns, ssvc, sroles, tns, tsvc, method, path] = Array.isArray(request) ? request : casbinRequest(request);
  const [, , fns, fsvc, frole, ptns, ptsvc, methods, pattern] = line;
  return tns === ptns && (ptsvc === '*' || tsvc === ptsvc)
    && ((frole === '' && sns === fns && (fsvc === '*' || ssvc === fsvc)) || (frole !== '' && roleMatch(sroles, frole)))
    && methodMatch(method, methods)
    && pathMatch(path, pattern);
}

/** Every rule with at least one matching line, in file order. */
export function matchingRules(state: PolicyState, req: AccessRequest): PolicyRule[] {
  const out: PolicyRule[] = [];
  const r = casbinRequest(req);
  state.lines.forEach((line, i) => {
    const rule = state.lineRules[i]!;
    if (!out.includes(rule) && lineMatches(line, r)) out.push(rule);
  });
  return out;
}

/**
 * spiffe://<trust-domain>/ns/<namespace>/sa/<service> -> a service principal (the CLI's and tests'
 * callers); undefined for anything pki/spiffe's strict parser refuses, as the gateway would.
 */
export function principalFromSpiffeId(id: string): Extract<Principal, { kind: 'service' }> | undefined {
  const p = tryParseSpiffeId(id);
  return p === undefined ? undefined : { kind: 'service', spiffeId: id, namespace: p.namespace, service: p.service, certSerial: '' };
}
