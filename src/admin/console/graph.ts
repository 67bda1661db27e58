// The console's views of the policies in force: the segmentation graph (namespaces, services and
// roles as nodes, allowed flows as edges) and "explain" (the verdict, the deciding rule, why).
import type { AccessRequest, PathComparison, Principal } from '../../contracts/authz.js';
import { GatehouseError } from '../../errors.js';
import { Type, bodyReader } from '../../lib/schema.js';
import { decide } from '../../authorize/decide.js';
import { ruleMatches } from '../../authorize/explain.js';
import { tryParseSpiffeId } from '../../pki/spiffe.js';
import type { PolicyState } from '../../authorize/types.js';

export interface GraphNode {
  id: string;
  kind: 'namespace' | 'service' | 'role';
  label: string;
  namespace: string;
}

export interface GraphEdge {
  from: string;
  to: string;
  rule: string;
  mode: 'enforce' | 'dry-run';
  methods: readonly string[] | '*';
  paths: readonly string[];
}

export interface PolicyGraph {
  policyVersion: number;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

const nsId = (ns: string): string => `ns:${ns}`;
const svcId = (ns: string, svc: string): string => `svc:${ns}/${svc}`;

/** Allow rules become edges; a "*" service stands for the whole namespace (its namespace node). */
export function policyGraph(state: PolicyState | undefined): PolicyGraph {
  const nodes = new Map<string, GraphNode>();
  const edges: GraphEdge[] = [];
  const addNs = (ns: string): string => {
    const id = nsId(ns);
    if (!nodes.has(id)) nodes.set(id, { id, kind: 'namespace', label: ns, namespace: ns });
    return id;
  };
  const addSvc = (ns: string, svc: string): string => {
    addNs(ns);
    if (svc === '*') return nsId(ns);
    const id = svcId(ns, svc);
    if (!nodes.has(id)) nodes.set(id, { id, kind: 'service', label: svc, namespace: ns });
    return id;
  };
  if (state === undefined) return { policyVersion: 0, nodes: [], edges: [] };
  for (const ns of [...state.namespaces.keys()].sort()) addNs(ns);
  for (const policy of state.namespaces.values()) {
    for (const rule of policy.rules) {
      const to = addSvc(rule.namespace, rule.service);
      if (rule.effect !== 'allow') continue;
      for (const peer of rule.from) {
        let from: string;
        if (peer.kind === 'service') from = addSvc(peer.namespace, peer.service);
        else {
          from = `role:${rule.namespace}/${peer.role}`;
          if (!nodes.has(from)) nodes.set(from, { id: from, kind: 'role', label: peer.role, namespace: rule.namespace });
        }
        edges.push({ from, to, rule: rule.name, mode: policy.mode, methods: rule.methods, paths: rule.paths });
      }
    }
  }
  return { policyVersion: state.version, nodes: [...nodes.values()], edges };
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** One non-empty short value per parameter. */
const param = () => Type.String({ minLength: 1, maxLength: 512 });
const EXPLAIN_QUERY = bodyReader(Type.Object({
  from: param(),
  namespace: Type.String({ pattern: NAME.source, hint: 'a lowercase name' }),
  service: Type.String({ pattern: NAME.source, hint: 'a lowercase name' }),
  method: param(),
  path: param(),
  /** How the route's upstream compares paths (routes[].paths); absent: exact. */
  paths: Type.Optional(Type.Union([Type.Literal('exact'), Type.Literal('case-insensitive')])),
}));

/** from=spiffe://<td>/ns/<ns>/sa/<svc> or a role name (held in the target namespace); paths=case-insensitive as for such a route. */
export function explainRequest(query: unknown): AccessRequest {
  // method and path may be left out
  const q = query !== null && typeof query === 'object' && !Array.isArray(query) ? { method: 'GET', path: '/', ...query } : query;
  const { from, namespace, service, path, paths, ...rest } = EXPLAIN_QUERY.read(q);
  const method = rest.method.toUpperCase();
  if (!path.startsWith('/')) throw new GatehouseError('ERR_BAD_REQUEST', 'path must start with /');
  if (!/^[A-Za-z]{1,20}$/.test(method) && !/^[A-Za-z0-9_.]+\/[A-Za-z0-9_]+$/.test(method)) throw new GatehouseError('ERR_BAD_REQUEST', 'method must be an HTTP or gRPC method name');
  let principal: Principal;
  if (from.startsWith('spiffe://')) {
    const id = tryParseSpiffeId(from);
    if (id === undefined) throw new GatehouseError('ERR_BAD_REQUEST', 'from must be spiffe://<trust-domain>/ns/<namespace>/sa/<service> or a role');
    principal = { kind: 'service', spiffeId: from, namespace: id.namespace, service: id.service, certSerial: '' };
  } else {
    const role = from.startsWith('role:') ? from.slice(5) : from;
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(role)) throw new GatehouseError('ERR_BAD_REQUEST', 'from must be a SPIFFE id or a role name');
    principal = { kind: 'user', userId: '(explain)', roles: { [namespace]: [role] } };
  }
  return { principal, namespace, service, method, path, ...(paths !== undefined ? { pathCase: paths } : {}) };
}

export interface Explanation {
  verdict: 'allow' | 'deny';
  pass: boolean;
  rule: string | null;
  /** How the deciding rule matched the path: exact, or only decoded and case-folded. */
  comparison: PathComparison | null;
  reasons: string[];
  mode: 'enforce' | 'dry-run';
  policyVersion: number;
  matching: { name: string; namespace: string; effect: string; file: string; line: number; comparison: PathComparison }[];
}

export function explain(state: PolicyState | undefined, req: AccessRequest): Explanation {
  if (state === undefined) return { verdict: 'deny', pass: false, rule: null, comparison: null, reasons: ['policy-unavailable'], mode: 'enforce', policyVersion: 0, matching: [] };
  const d = decide(state, req);
  return {
    verdict: d.allow ? 'allow' : 'deny',
    pass: d.pass,
    rule: d.rule ?? null,
    comparison: d.comparison ?? null,
    reasons: d.reasons,
    mode: d.mode,
    policyVersion: d.policyVersion,
    matching: ruleMatches(state, req).map(({ rule: r, comparison }) => ({ name: r.name, namespace: r.namespace, effect: r.effect, file: r.file, line: r.line, comparison })),
  };
}
