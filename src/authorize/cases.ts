// `gatehouse policy test`: cases that pass or fail like unit tests.
//   - name: web creates a charge            (optional)
//     from: spiffe://example.org/ns/frontend/sa/web   | { role: ops-admin, namespace?: payments }
//     to: { namespace: payments, service: api, method: POST, path: /v1/charges }   (or { host, method, path })
//     expect: allow | deny                   (the verdict; a dry-run namespace still reports deny)
import { LineCounter, isScalar, parseDocument } from 'yaml';
import type { AccessRequest, Decision, PathCase, Principal } from '../contracts/authz.js';
import { decide } from './decide.js';
import { principalFromSpiffeId } from './explain.js';
import { DNS_LABEL, NAME, Reader, type Key } from './parse.js';
import type { PolicyIssue, PolicyState } from './types.js';

/** What `to.host` resolves through: the config's routes. */
export interface HostRoute {
  host: string;
  namespace: string;
  service: string;
  /** How the route's upstream compares paths (routes[].paths): a case resolved by host is decided the same way. */
  paths?: PathCase;
}

export interface PolicyCase {
  name: string;
  file: string;
  line: number;
  request: AccessRequest;
  expect: 'allow' | 'deny';
}

const ANY = /^[^]+$/;
const PATH = /^\/[^\s]*$/;
const METHOD = /^[A-Z]+$/;

function parseFrom(r: Reader, node: unknown, keys: readonly Key[]): ((ns: string) => Principal) | undefined {
  if (isScalar(node) && typeof node.value === 'string') {
    const p = principalFromSpiffeId(node.value);
    if (p === undefined) r.add(node, keys, `must be a SPIFFE ID like spiffe://example.org/ns/<namespace>/sa/<service>, got ${JSON.stringify(node.value)}`);
    return p === undefined ? undefined : () => p;
  }
  const m = r.map(node, keys, ['role', 'namespace']);
  if (m === undefined) return undefined;
  const roleNode = r.required(m, 'role', node, keys);
  const role = roleNode === undefined ? undefined : r.str(roleNode, [...keys, 'role'], NAME, 'a role name');
  const nsNode = m.get('namespace')?.value;
  const roleNs = nsNode === undefined ? undefined : r.str(nsNode, [...keys, 'namespace'], DNS_LABEL, 'a namespace');
  if (role === undefined || (nsNode !== undefined && roleNs === undefined)) return undefined;
  return (target) => ({ kind: 'user', userId: `test:${role}`, roles: { [roleNs ?? target]: [role] } });
}

/** Parses one cases file; problems are added to issues with their lines. */
export function parseCases(file: string, text: string, routes: readonly HostRoute[] | undefined, issues: PolicyIssue[]): PolicyCase[] {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    for (const e of doc.errors) issues.push({ file, line: e.linePos?.[0].line ?? 0, message: e.message.split('\n')[0] ?? e.message });
    return [];
  }
  const r = new Reader(file, lines);
  const out: PolicyCase[] = [];
  r.seq(doc.contents, [], 'write at least one case')?.forEach((node, i) => {
    const keys = [i];
    const m = r.map(node, keys, ['name', 'from', 'to', 'expect']);
    if (m === undefined) return;
    const before = r.issues.length;
    const nameNode = m.get('name')?.value;
    const name = nameNode === undefined ? `case ${i + 1}` : r.str(nameNode, [...keys, 'name'], ANY, 'text');
    const fromNode = r.required(m, 'from', node, keys);
    const from = fromNode === undefined ? undefined : parseFrom(r, fromNode, [...keys, 'from']);
    const expectNode = r.required(m, 'expect', node, keys);
    const expect = expectNode === undefined ? undefined : r.oneOf(expectNode, [...keys, 'expect'], ['allow', 'deny'] as const);
    const toNode = r.required(m, 'to', node, keys);
    const to = toNode === undefined ? undefined : r.map(toNode, [...keys, 'to'], ['host', 'namespace', 'service', 'method', 'path']);
    let target: { namespace: string; service: string; pathCase?: PathCase } | undefined;
    let method: string | undefined;
    let path: string | undefined;
    if (to !== undefined) {
      const tk = [...keys, 'to'];
      const hostNode = to.get('host')?.value;
      if (hostNode !== undefined) {
        if (to.has('namespace') || to.has('service')) r.add(toNode, tk, 'names a host and a namespace/service: give one or the other');
        const host = r.str(hostNode, [...tk, 'host'], ANY, 'a host name');
        if (host !== undefined) {
          if (routes === undefined) r.add(hostNode, [...tk, 'host'], 'needs the routes of a config: pass --config (or give namespace and service)');
          else {
            const route = routes.find((x) => x.host.toLowerCase() === host.toLowerCase());
            if (route === undefined) r.add(hostNode, [...tk, 'host'], `${JSON.stringify(host)} is not the host of any route in the config`);
            else target = { namespace: route.namespace, service: route.service, ...(route.paths === 'case-insensitive' ? { pathCase: route.paths } : {}) };
          }
        }
      } else {
        const nsNode = r.required(to, 'namespace', toNode, tk);
        const svcNode = r.required(to, 'service', toNode, tk);
        const namespace = nsNode === undefined ? undefined : r.str(nsNode, [...tk, 'namespace'], DNS_LABEL, 'a namespace');
        const service = svcNode === undefined ? undefined : r.str(svcNode, [...tk, 'service'], DNS_LABEL, 'a service');
        if (namespace !== undefined && service !== undefined) target = { namespace, service };
      }
      const methodNode = r.required(to, 'method', toNode, tk);
      if (methodNode !== undefined) method = r.str(methodNode, [...tk, 'method'], METHOD, 'an upper-case method like GET');
      const pathNode = r.required(to, 'path', toNode, tk);
      if (pathNode !== undefined) path = r.str(pathNode, [...tk, 'path'], PATH, 'a path starting with "/"');
    }
    if (r.issues.length > before || name === undefined || from === undefined || expect === undefined || target === undefined || method === undefined || path === undefined) return;
    out.push({ name, file, line: r.line(node), expect, request: { principal: from(target.namespace), ...target, method, path } });
  });
  issues.push(...r.issues);
  return out;
}

export interface CaseResult {
  case: PolicyCase;
  decision: Decision;
  ok: boolean;
}

export function runCases(state: PolicyState, cases: readonly PolicyCase[]): CaseResult[] {
  return cases.map((c) => {
    const decision = decide(state, c.request);
    return { case: c, decision, ok: (decision.allow ? 'allow' : 'deny') === c.expect };
  });
}
