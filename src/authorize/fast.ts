// The fast path: the same verdicts as casbin's enforce over policies/model.conf, without
// scanning every line. Lines are indexed by target namespace -> target service (exact and
// "*") -> caller (namespace -> service or "*"; or role) -> method (exact and every) -> path
// (a hash of exact paths plus a segment trie for patterns). Each index leaf keeps only the
// first deny and the first allow line by file order, which is all a decision needs: deny
// beats allow, and the deciding rule is the first matching deny, else the first matching
// allow. A lookup touches at most 2 x 2 x 2 leaves' tries for a service (2 x roles x 2 for
// a person), independent of the number of rules.
import type { AccessRequest } from '../contracts/authz.js';
import { isExactPattern } from './path.js';
import type { PolicyLine, PolicyMode, PolicyRule } from './types.js';

/** The first deny and the first allow (by file order) among the lines that end here. */
interface Hit {
  deny: PolicyRule | undefined;
  allow: PolicyRule | undefined;
}

interface TrieNode {
  literal: Map<string, TrieNode> | undefined;
  star: TrieNode | undefined;
  /** Patterns that end at this node. */
  end: Hit | undefined;
  /** Patterns whose last segment "**" follows this node: match any rest, including none. */
  rest: Hit | undefined;
}

interface PathIndex {
  exact: Map<string, Hit>;
  trie: TrieNode | undefined;
}

interface MethodIndex {
  byMethod: Map<string, PathIndex>;
  any: PathIndex | undefined;
}

interface ServiceIndex {
  /** Caller namespace -> caller service (or "*") -> methods. */
  peers: Map<string, Map<string, MethodIndex>>;
  roles: Map<string, MethodIndex>;
}

interface NamespaceIndex {
  mode: PolicyMode;
  /** Target service (or "*") -> callers. */
  services: Map<string, ServiceIndex>;
}

export interface PolicyIndex {
  readonly namespaces: ReadonlyMap<string, NamespaceIndex>;
}

/** What a lookup found: the first matching deny and allow rules, by file order. */
export interface Match {
  mode: PolicyMode | undefined;
  deny: PolicyRule | undefined;
  allow: PolicyRule | undefined;
}

function newNode(): TrieNode {
  return { literal: undefined, star: undefined, end: undefined, rest: undefined };
}

function record(hit: Hit | undefined, rule: PolicyRule): Hit {
  const h = hit ?? { deny: undefined, allow: undefined };
  if (rule.effect === 'deny') {
    if (h.deny === undefined || rule.order < h.deny.order) h.deny = rule;
  } else if (h.allow === undefined || rule.order < h.allow.order) {
    h.allow = rule;
  }
  return h;
}

function getOr<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) {
    v = make();
    m.set(k, v);
  }
  return v;
}

function insertPath(idx: PathIndex, pattern: string, rule: PolicyRule): void {
  if (isExactPattern(pattern)) {
    idx.exact.set(pattern, record(idx.exact.get(pattern), rule));
    return;
  }
  let node: TrieNode = (idx.trie ??= newNode());
  const segments = pattern.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '**' && i === segments.length - 1) {
      node.rest = record(node.rest, rule);
      return;
    }
    if (s === '*') node = node.star ??= newNode();
    else node = getOr((node.literal ??= new Map<string, TrieNode>()), s, newNode);
  }
  node.end = record(node.end, rule);
}

/** Builds the index from casbin lines (lines[i] came from rules[i]); modes come per namespace. */
export function buildIndex(lines: readonly PolicyLine[], rules: readonly PolicyRule[], modes: ReadonlyMap<string, PolicyMode>): PolicyIndex {
  const namespaces = new Map<string, NamespaceIndex>();
  for (const [ns, mode] of modes) namespaces.set(ns, { mode, services: new Map<string, ServiceIndex>() });
  lines.forEach((line, i) => {
    const rule = rules[i]!;
    const [, , fns, fsvc, frole, tns, tsvc, methods, pattern] = line;
    const nsIdx = getOr(namespaces, tns, (): NamespaceIndex => ({ mode: 'enforce', services: new Map() }));
    const svcIdx = getOr(nsIdx.services, tsvc, (): ServiceIndex => ({ peers: new Map(), roles: new Map() }));
    const newMethods = (): MethodIndex => ({ byMethod: new Map(), any: undefined });
    const mIdx = frole !== '' ? getOr(svcIdx.roles, frole, newMethods) : getOr(getOr(svcIdx.peers, fns, () => new Map<string, MethodIndex>()), fsvc, newMethods);
    const newPaths = (): PathIndex => ({ exact: new Map(), trie: undefined });
    const targets = methods === '*' ? [(mIdx.any ??= newPaths())] : methods.split(' ').map((m) => getOr(mIdx.byMethod, m, newPaths));
    for (const t of targets) insertPath(t, pattern, rule);
  });
  return { namespaces };
}

/** Accumulates the first deny/allow over every leaf a request reaches. */
class Collector {
  deny: PolicyRule | undefined = undefined;
  allow: PolicyRule | undefined = undefined;

  take(h: Hit | undefined): void {
    if (h === undefined) return;
    if (h.deny !== undefined && (this.deny === undefined || h.deny.order < this.deny.order)) this.deny = h.deny;
    if (h.allow !== undefined && (this.allow === undefined || h.allow.order < this.allow.order)) this.allow = h.allow;
  }
}

function walk(node: TrieNode, segments: readonly string[], i: number, c: Collector): void {
  c.take(node.rest);
  if (i === segments.length) {
    c.take(node.end);
    return;
  }
  const s = segments[i]!;
  const lit = node.literal?.get(s);
  if (lit !== undefined) walk(lit, segments, i + 1, c);
  if (s !== '' && node.star !== undefined) walk(node.star, segments, i + 1, c);
}

function lookupPath(idx: PathIndex | undefined, path: string, segments: () => readonly string[], c: Collector): void {
  if (idx === undefined) return;
  c.take(idx.exact.get(path));
  if (idx.trie !== undefined) walk(idx.trie, segments(), 0, c);
}

function lookupMethods(idx: MethodIndex | undefined, method: string, path: string, segments: () => readonly string[], c: Collector): void {
  if (idx === undefined) return;
  lookupPath(idx.byMethod.get(method), path, segments, c);
  lookupPath(idx.any, path, segments, c);
}

/** Finds the first matching deny and allow rules for a request; no casbin involved. */
export function match(index: PolicyIndex, req: AccessRequest): Match {
  const ns = index.namespaces.get(req.namespace);
  const c = new Collector();
  if (ns === undefined || !req.path.startsWith('/')) return { mode: ns?.mode, deny: undefined, allow: undefined };
  let segs: readonly string[] | undefined;
  const segments = (): readonly string[] => (segs ??= req.path.slice(1).split('/'));
  const p = req.principal;
  const roles = p.kind === 'user' && Object.hasOwn(p.roles, req.namespace) ? p.roles[req.namespace] : undefined;
  for (const target of req.service === '*' ? ['*'] : [req.service, '*']) {
    const svc = ns.services.get(target);
    if (svc === undefined) continue;
    if (p.kind === 'service') {
      const peer = svc.peers.get(p.namespace);
      if (peer === undefined) continue;
      lookupMethods(peer.get(p.service), req.method, req.path, segments, c);
      if (p.service !== '*') lookupMethods(peer.get('*'), req.method, req.path, segments, c);
    } else if (roles !== undefined) {
      for (const role of roles) lookupMethods(svc.roles.get(role), req.method, req.path, segments, c);
    }
  }
  return { mode: ns.mode, deny: c.deny, allow: c.allow };
}
