// authorize: policy loading (policies/ YAML -> casbin lines + fast index), decisions, hot reload.
export type { PolicyEffect, PolicyIssue, PolicyLine, PolicyMode, PolicyPeer, PolicyRule, PolicySource, PolicyState, NamespacePolicy } from './types.js';
export { checkPathPattern, pathMatch } from './path.js';
export { parsePolicyFile, HTTP_METHODS } from './parse.js';
export { checkPolicies, compilePolicies, formatIssue, ruleLines, stateFromPolicies } from './compile.js';
export { decide } from './decide.js';
export { PolicyEngine, type PolicySwap } from './engine.js';
export { readPolicyDir, checkPolicyDir, loadPolicyDir, reloadPolicyDir, type PolicyDir } from './dir.js';
export { applyPolicies, applyPolicySources, loadStoredPolicies, watchPolicies, POLICY_PREFIX, type ApplyResult, type PolicyWatch, type PolicyWatchOptions, type StoredPolicy } from './store.js';
export { MODEL_CONF } from './model.js';
export { canReach } from './reach.js';
