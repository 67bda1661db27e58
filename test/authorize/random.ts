// Seeded random policy sets and requests, for the differential test and bench/policy.ts.
import type { AccessRequest, PathCase, Principal } from '../../src/contracts/authz.js';
import type { NamespacePolicy, PolicyPeer, PolicyRule } from '../../src/authorize/types.js';

export { Rng } from '../helpers/rng.js';
import type { Rng } from '../helpers/rng.js';

export interface Universe {
  namespaces: string[];
  services: string[];
  roles: string[];
  /** Path words for patterns and paths. */
  segments: string[];
  /** Only in requests: spellings no valid pattern holds (a raw "*", malformed or double escapes). */
  pathOnly: string[];
  /** Requests respell path words (case, escapes) and some come from case-insensitive routes. */
  spellings: boolean;
}

/**
 * Words that fold into each other (foldSegment): case, an escaped "$", a Unicode letter that
 * upper-cases to ASCII (U+017F long s, U+212A Kelvin sign), "É"/"é" escaped, an escaped "*".
 */
const FOLDING_WORDS = ['Adm', 'adm', 'ADM', '$x', '%24x', '%24X', 'caf%C3%A9', 'CAF%C3%89', 'sx', '%C5%BFx', 'SX', 'k', '%E2%84%AA', 'a%2Ab'];
const PATH_ONLY_WORDS = ['a*b', '%C0%AE', '%252e', 'ADM%20', '%2F'];

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export function universe(size: { namespaces: number; services: number; roles: number; segments: number; spellings?: boolean }): Universe {
  const names = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  const spellings = size.spellings === true;
  return {
    namespaces: names('ns', size.namespaces),
    services: names('svc', size.services),
    roles: names('role', size.roles),
    segments: [...names('s', size.segments), ...(spellings ? FOLDING_WORDS : [])],
    pathOnly: spellings ? PATH_ONLY_WORDS : [],
    spellings,
  };
}

/** A path word as a client might spell it: sometimes its letters' case flipped at random. */
function respell(rng: Rng, u: Universe, word: string): string {
  if (!u.spellings || !rng.chance(0.3)) return word;
  let out = '';
  for (const ch of word) out += rng.chance(0.5) ? ch.toUpperCase() : ch.toLowerCase();
  return out;
}

/** A word for a request path: a universe word (respelled), or now and then a request-only one. */
function pathWord(rng: Rng, u: Universe): string {
  if (u.pathOnly.length > 0 && rng.chance(0.05)) return rng.pick(u.pathOnly);
  return respell(rng, u, rng.pick(u.segments));
}

/** How the request's route compares paths: left out (exact) unless the universe has spellings. */
function pathCase(rng: Rng, u: Universe): { pathCase?: PathCase } {
  if (!u.spellings) return {};
  const r = rng.int(3);
  return r === 0 ? {} : { pathCase: r === 1 ? 'exact' : 'case-insensitive' };
}

function randomPattern(rng: Rng, u: Universe): string {
  if (rng.chance(0.04)) return '/';
  if (rng.chance(0.04)) return '/**';
  const depth = 1 + rng.int(4);
  const segs: string[] = [];
  for (let i = 0; i < depth; i++) segs.push(rng.chance(0.25) ? '*' : rng.pick(u.segments));
  if (rng.chance(0.3)) segs.push('**');
  else if (rng.chance(0.05)) segs.push(''); // trailing "/" literal
  return `/${segs.join('/')}`;
}

function randomPeer(rng: Rng, u: Universe): PolicyPeer {
  if (rng.chance(0.2)) return { kind: 'role', role: rng.pick(u.roles) };
  return { kind: 'service', namespace: rng.pick(u.namespaces), service: rng.chance(0.3) ? '*' : rng.pick(u.services) };
}

function peerKey(p: PolicyPeer): string {
  return p.kind === 'role' ? `r:${p.role}` : `${p.namespace}/${p.service}`;
}

/** A random policy set: rules spread over the universe's namespaces, allows and denies, overlapping (oneLine: one from, one path per rule, so rules = casbin lines). */
export function randomPolicies(rng: Rng, u: Universe, rules: number, opts: { denyRate?: number; targetNamespaces?: number; oneLine?: boolean } = {}): NamespacePolicy[] {
  const targets = u.namespaces.slice(0, opts.targetNamespaces ?? u.namespaces.length);
  const byNs = new Map<string, PolicyRule[]>();
  for (let i = 0; i < rules; i++) {
    const namespace = rng.pick(targets);
    const list = byNs.get(namespace) ?? [];
    byNs.set(namespace, list);
    const fromAll = Array.from({ length: opts.oneLine === true ? 1 : 1 + rng.int(3) }, () => randomPeer(rng, u));
    const from = fromAll.filter((p, j) => fromAll.findIndex((q) => peerKey(q) === peerKey(p)) === j);
    const paths = [...new Set(Array.from({ length: opts.oneLine === true ? 1 : 1 + rng.int(3) }, () => randomPattern(rng, u)))];
    list.push({
      namespace,
      name: `r${i}`,
      effect: rng.chance(opts.denyRate ?? 0.25) ? 'deny' : 'allow',
      from,
      service: rng.chance(0.1) ? '*' : rng.pick(u.services),
      methods: rng.chance(0.4) ? '*' : rng.some(METHODS, 3),
      paths,
      order: list.length,
      file: `${namespace}.yaml`,
      line: list.length + 1,
    });
  }
  return [...byNs].map(([namespace, list]) => ({
    namespace, mode: rng.chance(0.2) ? 'dry-run' : 'enforce', file: `${namespace}.yaml`, source: '', rules: list,
  }));
}

function concretePath(rng: Rng, u: Universe, pattern: string): string {
  const segs = pattern.slice(1).split('/');
  const out: string[] = [];
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (s === '**' && i === segs.length - 1) {
      const extra = rng.int(3);
      for (let j = 0; j < extra; j++) out.push(rng.chance(0.1) ? '' : u.spellings ? pathWord(rng, u) : rng.pick(u.segments));
    } else if (s === '*') {
      out.push(rng.chance(0.08) ? '' : u.spellings ? pathWord(rng, u) : rng.pick(u.segments));
    } else {
      out.push(respell(rng, u, s));
    }
  }
  return `/${out.join('/')}`;
}

function randomPath(rng: Rng, u: Universe): string {
  if (rng.chance(0.02)) return rng.pick(['*', '', 'x/y', '//', '/']);
  const depth = rng.int(6);
  const segs: string[] = [];
  for (let i = 0; i < depth; i++) segs.push(rng.chance(0.05) ? '' : rng.chance(0.05) ? '**' : u.spellings ? pathWord(rng, u) : rng.pick(u.segments));
  return `/${segs.join('/')}`;
}

function randomPrincipal(rng: Rng, u: Universe, target: string, wanted?: PolicyPeer): Principal {
  if (wanted?.kind === 'role' || (wanted === undefined && rng.chance(0.2))) {
    const roles: Record<string, string[]> = {};
    // Roles for the target namespace (sometimes none), and some for other namespaces.
    if (!rng.chance(0.15)) roles[rng.chance(0.9) ? target : rng.pick(u.namespaces)] = [...new Set([...(wanted?.kind === 'role' ? [wanted.role] : []), ...rng.some(u.roles, 2)])];
    if (rng.chance(0.4)) roles[rng.pick(u.namespaces)] = rng.some(u.roles, 2);
    return { kind: 'user', userId: 'u', roles };
  }
  const namespace = wanted?.kind === 'service' && !rng.chance(0.1) ? wanted.namespace : rng.pick(u.namespaces);
  const service = wanted?.kind === 'service' && wanted.service !== '*' && !rng.chance(0.1) ? wanted.service : rng.pick(u.services);
  return { kind: 'service', spiffeId: `spiffe://example.org/ns/${namespace}/sa/${service}`, namespace, service, certSerial: '00' };
}

/** A request: about half aimed at a random rule (so hits and near misses are common), the rest random. */
export function randomRequest(rng: Rng, u: Universe, policies: readonly NamespacePolicy[]): AccessRequest {
  const policy = policies.length > 0 && rng.chance(0.6) ? rng.pick(policies) : undefined;
  const rule = policy !== undefined && policy.rules.length > 0 ? rng.pick(policy.rules) : undefined;
  if (rule === undefined) {
    const namespace = rng.chance(0.03) ? 'nowhere' : rng.pick(u.namespaces);
    return { principal: randomPrincipal(rng, u, namespace), namespace, service: rng.pick(u.services), method: rng.chance(0.02) ? 'PROPFIND' : rng.pick(METHODS), path: randomPath(rng, u), ...pathCase(rng, u) };
  }
  const peer = rng.pick(rule.from);
  return {
    principal: randomPrincipal(rng, u, rule.namespace, rng.chance(0.9) ? peer : undefined),
    namespace: rule.namespace,
    service: rule.service === '*' || rng.chance(0.1) ? rng.pick(u.services) : rule.service,
    method: rule.methods === '*' || rng.chance(0.1) ? rng.pick(METHODS) : rng.pick(rule.methods),
    path: rng.chance(0.85) ? concretePath(rng, u, rng.pick(rule.paths)) : randomPath(rng, u),
    ...pathCase(rng, u),
  };
}
