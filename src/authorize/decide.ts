// Turns what the fast path found into a Decision: a value with reasons from the closed list.
import type { AccessRequest, Decision, DecisionReason, PathComparison } from '../contracts/authz.js';
import { match } from './fast.js';
import { pathMatch } from './path.js';
import type { PolicyRule, PolicyState } from './types.js';

/**
 * How a matching rule matched: exact when one of its patterns matches the path byte for byte.
 * A rule's lines are every (from, path) pair, so any of its patterns could have matched.
 */
export function comparisonOf(rule: PolicyRule, request: AccessRequest): PathComparison {
  if (rule.effect === 'allow' && request.pathCase !== 'case-insensitive') return 'exact';
  return rule.paths.some((p) => pathMatch(request.path, p)) ? 'exact' : 'case-folded';
}

/** Default deny; a matching deny beats any allow; dry-run lets a would-deny pass and says so. */
export function decide(state: PolicyState, request: AccessRequest): Decision {
  const found = match(state.index, request);
  const mode = found.mode ?? 'enforce';
  const rule = found.deny ?? found.allow;
  const allow = found.deny === undefined && found.allow !== undefined;
  const reasons: DecisionReason[] = [found.deny !== undefined ? 'denied-by-rule' : allow ? 'allowed-by-rule' : 'no-matching-rule'];
  if (!allow && mode === 'dry-run') reasons.push('dry-run');
  const decision: Decision = { allow, pass: allow || mode === 'dry-run', reasons, mode, policyVersion: state.version };
  if (rule !== undefined) {
    decision.rule = rule.name;
    decision.comparison = comparisonOf(rule, request);
  }
  return decision;
}

/** The decision while no policy state has been loaded: deny, and say why. */
export function unavailable(): Decision {
  return { allow: false, pass: false, reasons: ['policy-unavailable'], mode: 'enforce', policyVersion: 0 };
}
