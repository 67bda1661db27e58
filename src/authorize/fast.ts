// The fast path: the same verdicts as casbin's enforce over policies/model.conf, without
// scanning every line. Lines are indexed by target namespace -> target service (exact and
// "*") -> caller (namespace -> service or "*"; or role) -> method (exact and every) -> path.
// Each path leaf holds up to three pattern sets (a hash of exact paths plus a segment trie):
// allow lines by their pattern, allow lines by their folded pattern (for case-insensitive
// routes), and deny lines by their folded pattern (a deny matches folded as well as exactly,
// and folded matching includes exact matching). Each set keeps only the first line by file
// order at each node, which is all a decision needs: deny beats allow, and the deciding rule
// is the first matching deny, else the first matching allow. A lookup touches at most
// 2 x 2 x 2 leaves' sets for a service (2 x roles x 2 for a person), two sets per leaf,
// independent of the number of rules. The folded path is computed once, only when a leaf has
// a folded set, and is the path itself when it has nothing to fold.
import type { AccessRequest } from '../contracts/authz.js';
import { foldPath, foldPattern, isExactPattern } from './path.js';
import type { PolicyLine, PolicyMode, PolicyRule } from './types.js';

interface TrieNode {
  literal: Map<string, TrieNode> | undefined;
  star: TrieNode | undefined;
  /** The first rule (file order) with a pattern that ends at this node. */
  end: PolicyRule | undefined;
  /** The first rule whose pattern's last segment "**" follows this node: any rest, including none. */
  rest: PolicyRule | undefined;
}

/** Patterns of one effect: exact ones hashed, the others in a trie. */
interface PatternSet {
  exact: Map<string, PolicyRule>;
  trie: TrieNode | undefined;
}

interface PathIndex {
  /** Allow lines by pattern (exact comparison). */
  allow: PatternSet | undefined;
  /** Allow lines by folded pattern (requests on case-insensitive routes). */
  allowFolded: PatternSet | undefined;
  /** Deny lines by folded pattern (every request). */
  deny: PatternSet | undefined;
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

/** The earlier of two rules by file order (either may be absent). */
function first(a: PolicyRule | undefined, b: PolicyRule | undefined): PolicyRule | undefined {
  if (a === undefined) return b;
  return b === undefined || a.order <= b.order ? a : b;
}

function getOr<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) {
    v = make();
    m.set(k, v);
  }
  return v;
}

function insertPattern(set: PatternSet, pattern: string, rule: PolicyRule): void {
  if (isExactPattern(pattern)) {
    set.exact.set(pattern, first(set.exact.get(pattern), rule)!);
    return;
  }
  let node: TrieNode = (set.trie ??= newNode());
  const segments = pattern.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '**' && i === segments.length - 1) {
      node.rest = first(node.rest, rule);
      return;
    }
    if (s === '*') node = node.star ??= newNode();
    else node = getOr((node.literal ??= new Map<string, TrieNode>()), s, newNode);
  }
  node.end = first(node.end, rule);
}

const newSet = (): PatternSet => ({ exact: new Map(), trie: undefined });

function insertPath(idx: PathIndex, pattern: string, rule: PolicyRule): void {
  if (rule.effect === 'deny') {
    insertPattern((idx.deny ??= newSet()), foldPattern(pattern), rule);
  } else {
    insertPattern((idx.allow ??= newSet()), pattern, rule);
    insertPattern((idx.allowFolded ??= newSet()), foldPattern(pattern), rule);
  }
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
    const newPaths = (): PathIndex => ({ allow: undefined, allowFolded: undefined, deny: undefined });
    const targets = methods === '*' ? [(mIdx.any ??= newPaths())] : methods.split(' ').map((m) => getOr(mIdx.byMethod, m, newPaths));
    for (const t of targets) insertPath(t, pattern, rule);
  });
  return { namespaces };
}

function walk(node: TrieNode, segments: readonly string[], i: number, found: PolicyRule | undefined): PolicyRule | undefined {
  found = first(found, node.rest);
  if (i === segments.length) return first(found, node.end);
  const s = segments[i]!;
  const lit = node.literal?.get(s);
  if (lit !== undefined) found = walk(lit, segments, i + 1, found);
  if (s !== '' && node.star !== undefined) found = walk(node.star, segments, i + 1, found);
  return found;
}

/** The request's path, its segments and its folded spelling, each computed at most once and only when asked for. */
class Target {
  readonly path: string;
  #segments: readonly string[] | undefined;
  #folded: string | undefined;
  #foldedSegments: readonly string[] | undefined;
  constructor(path: string) {
    this.path = path;
  }
  segments(): readonly string[] {
    return (this.#segments ??= this.path.slice(1).split('/'));
  }
  folded(): string {
    return (this.#folded ??= foldPath(this.path));
  }
  foldedSegments(): readonly string[] {
    return (this.#foldedSegments ??= this.folded() === this.path ? this.segments() : this.folded().slice(1).split('/'));
  }
}

function lookupExact(set: PatternSet | undefined, t: Target, found: PolicyRule | undefined): PolicyRule | undefined {
  if (set === undefined) return found;
  found = first(found, set.exact.get(t.path));
  return set.trie === undefined ? found : walk(set.trie, t.segments(), 0, found);
}

function lookupFolded(set: PatternSet | undefined, t: Target, found: PolicyRule | undefined): PolicyRule | undefined {
  if (set === undefined) return found;
  found = first(found, set.exact.get(t.folded()));
  return set.trie === undefined ? found : walk(set.trie, t.foldedSegments(), 0, found);
}

/** Accumulates the first deny/allow over every leaf a request reaches. */
class Collector {
  deny: PolicyRule | undefined = undefined;
  allow: PolicyRule | undefined = undefined;
  readonly target: Target;
  /** Allow lines compare folded too (a case-insensitive route). */
  readonly folded: boolean;
  constructor(target: Target, folded: boolean) {
    this.target = target;
    this.folded = folded;
  }

  leaf(idx: PathIndex | undefined): void {
    if (idx === undefined) return;
    this.deny = lookupFolded(idx.deny, this.target, this.deny);
    this.allow = this.folded ? lookupFolded(idx.allowFolded, this.target, this.allow) : lookupExact(idx.allow, this.target, this.allow);
  }

  methods(idx: MethodIndex | undefined, method: string): void {
    if (idx === undefined) return;
    this.leaf(idx.byMethod.get(method));
    this.leaf(idx.any);
  }
}

/** Finds the first matching deny and allow rules for a request; no casbin involved. */
export function match(index: PolicyIndex, req: AccessRequest): Match {
  const ns = index.namespaces.get(req.namespace);
  if (ns === undefined || !req.path.startsWith('/')) return { mode: ns?.mode, deny: undefined, allow: undefined };
  const c = new Collector(new Target(req.path), req.pathCase === 'case-insensitive');
  const p = req.principal;
  const roles = p.kind === 'user' && Object.hasOwn(p.roles, req.namespace) ? p.roles[req.namespace] : undefined;
  for (const target of req.service === '*' ? ['*'] : [req.service, '*']) {
    const svc = ns.services.get(target);
    if (svc === undefined) continue;
    if (p.kind === 'service') {
      const peer = svc.peers.get(p.namespace);
      if (peer === undefined) continue;
      c.methods(peer.get(p.service), req.method);
      if (p.service !== '*') c.methods(peer.get('*'), req.method);
    } else if (roles !== undefined) {
      for (const role of roles) c.methods(svc.roles.get(role), req.method);
    }
  }
  return { mode: ns.mode, deny: c.deny, allow: c.allow };
}
