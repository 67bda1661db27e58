// Turns what the fast path found into a Decision: a value with reasons from the closed list.
import type { AccessRequest, Decision, DecisionReason } from '../contracts/authz.js';
import { match } from './fast.js';
import type { PolicyState } from './types.js';

/** Default deny; a matching deny beats any allow; dry-run lets a would-deny pass and says so. */
export function decide(state: PolicyState, request: AccessRequest): Decision {
  const found = match(state.index, request);
  const mode = found.mode ?? 'enforce';
  const rule = found.deny ?? found.allow;
  const allow = found.deny === undefined && found.allow !== undefined;
  const reasons: DecisionReason[] = [found.deny !== undefined ? 'denied-by-rule' : allow ? 'allowed-by-rule' : 'no-matching-rule'];
  if (!allow && mode === 'dry-run') reasons.push('dry-run');
  const decision: Decision = { allow, pass: allow || mode === 'dry-run', reasons, mode, policyVersion: state.version };
  if (rule !== undefined) decision.rule = rule.name;
  return decision;
}

/** The decision while no policy state has been loaded: deny, and say why. */
export function unavailable(): Decision {
  return { allow: false, pass: false, reasons: ['policy-unavailable'], mode: 'enforce', policyVersion: 0 };
}
