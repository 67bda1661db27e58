// Compiles policy files into one immutable PolicyState: casbin lines (the meaning) and the
// fast path's index over the same lines. A set with any problem is refused as a whole.
import { GatehouseError } from '../errors.js';
import { buildIndex } from './fast.js';
import { parsePolicyFile } from './parse.js';
import type { NamespacePolicy, PolicyIssue, PolicyLine, PolicyMode, PolicyRule, PolicySource, PolicyState } from './types.js';

export function formatIssue(i: PolicyIssue): string {
  return `${i.file}${i.line > 0 ? `:${i.line}` : ''}: ${i.message}`;
}

/** The casbin lines of one rule: one per (from entry, path pattern), in that order. */
export function ruleLines(rule: PolicyRule): PolicyLine[] {
  const methods = rule.methods === '*' ? '*' : rule.methods.join(' ');
  const out: PolicyLine[] = [];
  for (const peer of rule.from) {
    const [fns, fsvc, frole] = peer.kind === 'role' ? ['', '', peer.role] : [peer.namespace, peer.service, ''];
    for (const path of rule.paths) out.push([rule.name, rule.effect, fns, fsvc, frole, rule.namespace, rule.service, methods, path]);
  }
  return out;
}

/** Checks every file and returns the issues (empty when the set compiles). */
export function checkPolicies(sources: readonly PolicySource[]): { issues: PolicyIssue[]; policies: NamespacePolicy[] } {
  const issues: PolicyIssue[] = [];
  const policies: NamespacePolicy[] = [];
  const byNamespace = new Map<string, string>();
  for (const source of [...sources].sort((a, b) => a.file.localeCompare(b.file))) {
    const policy = parsePolicyFile(source, issues);
    if (policy === undefined) continue;
    const other = byNamespace.get(policy.namespace);
    if (other !== undefined) {
      issues.push({ file: source.file, line: 0, message: `namespace ${JSON.stringify(policy.namespace)} is already governed by ${other}` });
      continue;
    }
    byNamespace.set(policy.namespace, source.file);
    policies.push(policy);
  }
  return { issues, policies };
}

/** Compiles a whole policy set; throws ERR_POLICY_INVALID listing every `file:line: message`. */
export function compilePolicies(sources: readonly PolicySource[], version: number): PolicyState {
  const { issues, policies } = checkPolicies(sources);
  if (issues.length > 0) {
    const lines = issues.map(formatIssue);
    throw new GatehouseError('ERR_POLICY_INVALID', `${issues.length} problem(s) in the policies:\n${lines.join('\n')}`, { details: { issues: lines } });
  }
  return stateFromPolicies(policies, version);
}

/** Builds the state from parsed policies (also used by tests and the bench to skip YAML). */
export function stateFromPolicies(policies: readonly NamespacePolicy[], version: number): PolicyState {
  const namespaces = new Map<string, NamespacePolicy>();
  const modes = new Map<string, PolicyMode>();
  const lines: PolicyLine[] = [];
  const lineRules: PolicyRule[] = [];
  for (const p of policies) {
    namespaces.set(p.namespace, p);
    modes.set(p.namespace, p.mode);
    for (const rule of p.rules) {
      for (const line of ruleLines(rule)) {
        lines.push(line);
        lineRules.push(rule);
      }
    }
  }
  const index = buildIndex(lines, lineRules, modes);
  return Object.freeze({ version, namespaces, lines: Object.freeze(lines), lineRules: Object.freeze(lineRules), index });
}
