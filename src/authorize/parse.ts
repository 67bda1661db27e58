// Parses one policies/<namespace>.yaml strictly: every problem is collected with its line,
// so `gatehouse policy check` reports them all at once.
import path from 'node:path';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { checkPathPattern } from './path.js';
import type { NamespacePolicy, PolicyEffect, PolicyIssue, PolicyMode, PolicyPeer, PolicyRule, PolicySource } from './types.js';

/** Methods a rule may name (RFC 9110 and PATCH); anything else is a typo. */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'] as const;

/** Namespaces and services are DNS labels, as in SPIFFE IDs and routes. */
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Rule and role names: letters, digits, ".", "_", "-" (no spaces: they travel in casbin lines). */
export const NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$/;

export type Key = string | number;

function fmt(keys: readonly Key[]): string {
  return keys.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

function describe(node: unknown): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return node.value === null ? 'null' : `${typeof node.value} ${JSON.stringify(node.value)}`;
  return 'something else';
}

/** Reads YAML nodes and collects every problem with its line. */
export class Reader {
  readonly #file: string;
  readonly #lines: LineCounter;
  readonly issues: PolicyIssue[] = [];

  constructor(file: string, lines: LineCounter) {
    this.#file = file;
    this.#lines = lines;
  }

  line(node: unknown): number {
    const range = (node as Node | null | undefined)?.range;
    return range ? this.#lines.linePos(range[0]).line : 0;
  }

  add(node: unknown, keys: readonly Key[], message: string): void {
    this.issues.push({ file: this.#file, line: this.line(node), message: keys.length > 0 ? `${fmt(keys)} ${message}` : message });
  }

  /** A map's entries by key; unknown and non-string keys are reported. */
  map(node: unknown, keys: readonly Key[], allowed: readonly string[]): Map<string, { key: Node; value: unknown }> | undefined {
    if (!isMap(node)) {
      this.add(node, keys, `must be a map, got ${describe(node)}`);
      return undefined;
    }
    const out = new Map<string, { key: Node; value: unknown }>();
    for (const pair of node.items) {
      const k = pair.key as Node;
      if (!isScalar(k) || typeof k.value !== 'string') {
        this.add(k, keys, `has a key that is not a string: ${describe(k)}`);
        continue;
      }
      if (!allowed.includes(k.value)) {
        this.add(k, [...keys, k.value], `unknown key (allowed here: ${allowed.join(', ')})`);
        continue;
      }
      // A key with no value ("name:") is a null scalar, reported where the key is.
      const value = pair.value === null || (isScalar(pair.value) && pair.value.value === null) ? undefined : pair.value;
      out.set(k.value, { key: k, value });
    }
    return out;
  }

  str(node: unknown, keys: readonly Key[], pattern: RegExp, hint: string): string | undefined {
    if (!isScalar(node) || typeof node.value !== 'string') {
      this.add(node, keys, `must be a string, got ${describe(node)}`);
      return undefined;
    }
    if (!pattern.test(node.value)) {
      this.add(node, keys, `must be ${hint}, got ${JSON.stringify(node.value)}`);
      return undefined;
    }
    return node.value;
  }

  oneOf<T extends string>(node: unknown, keys: readonly Key[], values: readonly T[], extra = ''): T | undefined {
    if (isScalar(node) && typeof node.value === 'string' && (values as readonly string[]).includes(node.value)) return node.value as T;
    this.add(node, keys, `must be one of ${values.join(', ')}, got ${describe(node)}${extra}`);
    return undefined;
  }

  seq(node: unknown, keys: readonly Key[], nonEmpty: string | undefined): unknown[] | undefined {
    if (!isSeq(node)) {
      this.add(node, keys, `must be a list, got ${describe(node)}`);
      return undefined;
    }
    if (nonEmpty !== undefined && node.items.length === 0) {
      this.add(node, keys, `must not be empty (${nonEmpty})`);
      return undefined;
    }
    return node.items;
  }

  required(entries: Map<string, { key: Node; value: unknown }>, name: string, parent: unknown, keys: readonly Key[]): unknown {
    const e = entries.get(name);
    if (e === undefined || e.value === undefined) {
      this.add(e?.key ?? parent, [...keys, name], 'is required');
      return undefined;
    }
    return e.value;
  }
}

/** The namespace a file name promises: "payments.yaml" -> "payments". */
export function namespaceOfFile(file: string): string {
  return path.basename(file).replace(/\.ya?ml$/, '');
}

function parsePeer(r: Reader, node: unknown, keys: readonly Key[]): PolicyPeer | undefined {
  const m = r.map(node, keys, ['namespace', 'service', 'role']);
  if (m === undefined) return undefined;
  if (m.has('role')) {
    if (m.has('namespace') || m.has('service')) {
      r.add(node, keys, 'names a role and a namespace/service: a role entry stands alone (roles apply in the target namespace)');
      return undefined;
    }
    const role = r.str(m.get('role')?.value, [...keys, 'role'], NAME, 'a role name (letters, digits, ".", "_", "-")');
    return role === undefined ? undefined : { kind: 'role', role };
  }
  if (m.size === 0) {
    r.add(node, keys, 'must name a namespace (and optionally a service) or a role');
    return undefined;
  }
  const nsNode = r.required(m, 'namespace', node, keys);
  const namespace = nsNode === undefined ? undefined : r.str(nsNode, [...keys, 'namespace'], DNS_LABEL, 'a namespace (a DNS label)');
  const svcNode = m.get('service')?.value;
  const service = svcNode === undefined ? '*' : r.str(svcNode, [...keys, 'service'], DNS_LABEL, 'a service (a DNS label); omit it for every service of the namespace');
  if (namespace === undefined || service === undefined) return undefined;
  return { kind: 'service', namespace, service };
}

function peerKey(p: PolicyPeer): string {
  return p.kind === 'role' ? `role ${p.role}` : `${p.namespace}/${p.service}`;
}

function parseRule(r: Reader, node: unknown, keys: readonly Key[], namespace: string, file: string, order: number): PolicyRule | undefined {
  const m = r.map(node, keys, ['name', 'description', 'effect', 'from', 'to']);
  if (m === undefined) return undefined;
  const before = r.issues.length;

  const nameNode = r.required(m, 'name', node, keys);
  const name = nameNode === undefined ? undefined : r.str(nameNode, [...keys, 'name'], NAME, 'a rule name (letters, digits, ".", "_", "-")');
  const descNode = m.get('description')?.value;
  const description = descNode === undefined ? undefined : r.str(descNode, [...keys, 'description'], /^[^]*$/, 'text');
  const effNode = m.get('effect')?.value;
  const effect: PolicyEffect | undefined = effNode === undefined ? 'allow' : r.oneOf(effNode, [...keys, 'effect'], ['allow', 'deny'] as const);

  const from: PolicyPeer[] = [];
  const fromNode = r.required(m, 'from', node, keys);
  if (fromNode !== undefined) {
    const items = r.seq(fromNode, [...keys, 'from'], 'name at least one namespace, service or role');
    const seen = new Set<string>();
    items?.forEach((item, i) => {
      const peer = parsePeer(r, item, [...keys, 'from', i]);
      if (peer === undefined) return;
      if (seen.has(peerKey(peer))) return r.add(item, [...keys, 'from', i], 'repeats an earlier entry');
      seen.add(peerKey(peer));
      from.push(peer);
    });
  }

  let service: string | undefined;
  let methods: readonly string[] | '*' = '*';
  let paths: readonly string[] = ['/**'];
  const toNode = r.required(m, 'to', node, keys);
  const to = toNode === undefined ? undefined : r.map(toNode, [...keys, 'to'], ['service', 'methods', 'paths']);
  if (to !== undefined) {
    const svcNode = r.required(to, 'service', toNode, [...keys, 'to']);
    if (svcNode !== undefined) service = r.str(svcNode, [...keys, 'to', 'service'], /^(\*|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$/, 'a service (a DNS label) or "*"');
    const methodsNode = to.get('methods')?.value;
    if (methodsNode !== undefined) {
      const list: string[] = [];
      r.seq(methodsNode, [...keys, 'to', 'methods'], 'omit methods to allow every method')?.forEach((item, i) => {
        const hint = isScalar(item) && item.value === '*' ? ' (omit methods for every method)' : isScalar(item) && typeof item.value === 'string' && (HTTP_METHODS as readonly string[]).includes(item.value.toUpperCase()) ? ' (methods are upper case)' : '';
        const method = r.oneOf(item, [...keys, 'to', 'methods', i], HTTP_METHODS, hint);
        if (method === undefined) return;
        if (list.includes(method)) return r.add(item, [...keys, 'to', 'methods', i], `repeats ${method}`);
        list.push(method);
      });
      methods = list;
    }
    const pathsNode = to.get('paths')?.value;
    if (pathsNode !== undefined) {
      const list: string[] = [];
      r.seq(pathsNode, [...keys, 'to', 'paths'], 'omit paths to match every path')?.forEach((item, i) => {
        const k = [...keys, 'to', 'paths', i];
        if (!isScalar(item) || typeof item.value !== 'string') return r.add(item, k, `must be a string, got ${describe(item)}`);
        const problem = checkPathPattern(item.value);
        if (problem !== undefined) return r.add(item, k, `${JSON.stringify(item.value)} ${problem}`);
        if (list.includes(item.value)) return r.add(item, k, `repeats ${JSON.stringify(item.value)}`);
        list.push(item.value);
      });
      paths = list;
    }
  }

  if (r.issues.length > before || name === undefined || effect === undefined || service === undefined) return undefined;
  return {
    namespace, name, effect, from, service, methods, paths, order, file, line: r.line(node),
    ...(description === undefined ? {} : { description }),
  };
}

/** Parses one file; returns the policy, or undefined with issues added when it has any problem. */
export function parsePolicyFile(source: PolicySource, issues: PolicyIssue[]): NamespacePolicy | undefined {
  const lines = new LineCounter();
  const doc = parseDocument(source.text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) issues.push({ file: source.file, line: e.linePos?.[0].line ?? 0, message: e.message.split('\n')[0] ?? e.message });
    return undefined;
  }
  const r = new Reader(source.file, lines);
  let hasAlias = false;
  const visit = (n: unknown): void => {
    if (isAlias(n)) {
      r.add(n, [], 'uses a YAML alias; write policies out in full');
      hasAlias = true;
    } else if (isMap(n)) {
      for (const p of n.items) visit(p.value);
    } else if (isSeq(n)) {
      n.items.forEach(visit);
    }
  };
  visit(doc.contents);
  if (hasAlias) {
    issues.push(...r.issues);
    return undefined;
  }

  const top = r.map(doc.contents ?? null, [], ['namespace', 'description', 'mode', 'rules']);
  if (top === undefined) {
    issues.push(...r.issues.map((i) => ({ ...i, line: i.line || 1, message: i.message.replace(/^must/, 'the top level must') })));
    return undefined;
  }
  const expected = namespaceOfFile(source.file);
  const nsNode = r.required(top, 'namespace', doc.contents, []);
  const namespace = nsNode === undefined ? undefined : r.str(nsNode, ['namespace'], DNS_LABEL, 'a namespace (a DNS label)');
  if (namespace !== undefined && namespace !== expected) {
    r.add(nsNode, ['namespace'], `is ${JSON.stringify(namespace)} but the file is named for ${JSON.stringify(expected)}: name the file ${namespace}.yaml`);
  }
  const descNode = top.get('description')?.value;
  if (descNode !== undefined) r.str(descNode, ['description'], /^[^]*$/, 'text');
  const modeNode = top.get('mode')?.value;
  const mode: PolicyMode | undefined = modeNode === undefined ? 'enforce' : r.oneOf(modeNode, ['mode'], ['enforce', 'dry-run'] as const);

  const rules: PolicyRule[] = [];
  const rulesNode = r.required(top, 'rules', doc.contents, []);
  const items = rulesNode === undefined ? undefined : r.seq(rulesNode, ['rules'], undefined);
  const names = new Map<string, number>();
  items?.forEach((item, i) => {
    const rule = parseRule(r, item, ['rules', i], namespace ?? expected, source.file, i);
    // Names are checked even when the rule has other problems, so every problem shows at once.
    const nameNode: unknown = isMap(item) ? item.get('name', true) : undefined;
    if (isScalar(nameNode) && typeof nameNode.value === 'string') {
      const first = names.get(nameNode.value);
      if (first !== undefined) return r.add(nameNode, ['rules', i, 'name'], `${JSON.stringify(nameNode.value)} is already the name of the rule at line ${first}`);
      names.set(nameNode.value, r.line(item));
    }
    if (rule !== undefined) rules.push(rule);
  });

  issues.push(...r.issues);
  if (r.issues.length > 0 || namespace === undefined || mode === undefined) return undefined;
  return { namespace, mode, file: source.file, source: source.text, rules };
}
