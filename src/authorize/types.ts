// The compiled, immutable policy state and the values the loader produces.
import type { PolicyIndex } from './fast.js';

/** One policy file's text and the name it is reported under (e.g. "policies/payments.yaml"). */
export interface PolicySource {
  file: string;
  text: string;
}

/** One problem in a policy file, reported as `file:line: message`. */
export interface PolicyIssue {
  file: string;
  /** 1-based; 0 when the problem concerns the file as a whole. */
  line: number;
  message: string;
}

export type PolicyMode = 'enforce' | 'dry-run';
export type PolicyEffect = 'allow' | 'deny';

/** Who a rule admits: every service of a namespace, one service, or a person's role in the target namespace. */
export type PolicyPeer =
  | { kind: 'service'; namespace: string; service: string } // "*" = every service there
  | { kind: 'role'; role: string };

export interface PolicyRule {
  /** The target namespace (the file's). */
  namespace: string;
  name: string;
  effect: PolicyEffect;
  from: readonly PolicyPeer[];
  /** Target service, or "*" for every service of the namespace. */
  service: string;
  /** Method names, or "*" for every method. */
  methods: readonly string[] | '*';
  paths: readonly string[];
  /** Position in the file (0-based): first deny, else first allow, by this order decides. */
  order: number;
  file: string;
  line: number;
  description?: string;
}

export interface NamespacePolicy {
  namespace: string;
  mode: PolicyMode;
  file: string;
  /** The YAML text, as read: what `policy apply` stores. */
  source: string;
  rules: readonly PolicyRule[];
}

/**
 * A casbin policy line: [rule, eft, fns, fsvc, frole, tns, tsvc, methods, path]
 * (see policies/model.conf).
 */
export type PolicyLine = readonly [string, PolicyEffect, string, string, string, string, string, string, string];

export interface PolicyState {
  /** Changes on every reload; the store revision when loaded from the store. */
  readonly version: number;
  readonly namespaces: ReadonlyMap<string, NamespacePolicy>;
  /** Every casbin line, grouped by namespace in file order. */
  readonly lines: readonly PolicyLine[];
  /** The rule each line came from (same index as lines). */
  readonly lineRules: readonly PolicyRule[];
  /** The fast path's index over lines. */
  readonly index: PolicyIndex;
}
