// Explaining a decision: every rule that matches, found by scanning the casbin lines with
// the model's own functions (slow, for people and tests, never for the request path).
import type { AccessRequest, PathComparison, Principal } from '../contracts/authz.js';
import { tryParseSpiffeId } from '../pki/spiffe.js';
import { casbinRequest, type CasbinRequest } from './casbin.js';
import { methodMatch, pathMatch, pathMatchFolded, roleMatch } from './path.js';
import type { PolicyLine, PolicyRule, PolicyState } from './types.js';

/** model.conf's matcher, written out in TypeScript over one line: how its path matched, or undefined. */
export function lineMatch(line: PolicyLine, request: AccessRequest | CasbinRequest): PathComparison | undefined {
  const [sns, ssvc, sroles, tns, tsvc, method, path, pathcase] = Array.isArray(request) ? request : casbinRequest(request);
  const [, eft, fns, fsvc, frole, ptns, ptsvc, methods, pattern] = line;
  const matches = tns === ptns && (ptsvc === '*' || tsvc === ptsvc)
    && ((frole === '' && sns === fns && (fsvc === '*' || ssvc === fsvc)) || (frole !== '' && roleMatch(sroles, frole)))
    && methodMatch(method, methods);
  if (!matches) return undefined;
  if (pathMatch(path, pattern)) return 'exact';
  return (eft === 'deny' || pathcase === 'case-insensitive') && pathMatchFolded(path, pattern) ? 'case-folded' : undefined;
}

/** model.conf's matcher over one line. */
export function lineMatches(line: PolicyLine, request: AccessRequest | CasbinRequest): boolean {
  return lineMatch(line, request) !== undefined;
}

/** A rule with at least one matching line, and how: exact when any of its lines matched exactly. */
export interface RuleMatch {
  rule: PolicyRule;
  comparison: PathComparison;
}

/** Every rule with at least one matching line, in file order, with how it matched. */
export function ruleMatches(state: PolicyState, req: AccessRequest): RuleMatch[] {
  const out = new Map<PolicyRule, PathComparison>();
  const r = casbinRequest(req);
  state.lines.forEach((line, i) => {
    const rule = state.lineRules[i]!;
    if (out.get(rule) === 'exact') return;
    const how = lineMatch(line, r);
    if (how !== undefined) out.set(rule, how === 'exact' ? 'exact' : (out.get(rule) ?? how));
  });
  return [...out].map(([rule, comparison]) => ({ rule, comparison }));
}

/** Every rule with at least one matching line, in file order. */
export function matchingRules(state: PolicyState, req: AccessRequest): PolicyRule[] {
  return ruleMatches(state, req).map((m) => m.rule);
}

/**
 * spiffe://<trust-domain>/ns/<namespace>/sa/<service> -> a service principal (the CLI's and tests'
 * callers); undefined for anything pki/spiffe's strict parser refuses, as the gateway would.
 */
export function principalFromSpiffeId(id: string): Extract<Principal, { kind: 'service' }> | undefined {
  const p = tryParseSpiffeId(id);
  return p === undefined ? undefined : { kind: 'service', spiffeId: id, namespace: p.namespace, service: p.service, certSerial: '' };
}
