// The fast path against casbin: the same allow verdict for every random request, over many
// random policy sets. Seeded: the seed is printed, and POLICY_DIFF_SEED=<seed> replays a run.
// Also checks the deciding rule against a plain scan of the lines (first deny, else first allow),
// and how it matched (exact or case-folded). Paths are respelled (case, escapes, Unicode letters
// that fold to ASCII) and a third of the requests come from case-insensitive routes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AccessRequest } from '../../src/contracts/authz.js';
import { casbinAllows, casbinEnforcer } from '../../src/authorize/casbin.js';
import { stateFromPolicies } from '../../src/authorize/compile.js';
import { decide } from '../../src/authorize/decide.js';
import { lineMatches, ruleMatches } from '../../src/authorize/explain.js';
import { readFileSync } from 'node:fs';
import type { NamespacePolicy, PolicyState } from '../../src/authorize/types.js';
import { Rng, randomPolicies, randomRequest, universe } from './random.js';

const SEED = process.env.POLICY_DIFF_SEED !== undefined ? Number(process.env.POLICY_DIFF_SEED) : Math.floor(Math.random() * 2 ** 31);
console.log(`differential test seed: ${SEED} (replay with POLICY_DIFF_SEED=${SEED})`);
// The model the operator reads, not the built-in copy (model.test.ts checks they are equal).
const MODEL = readFileSync(new URL('../../policies/model.conf', import.meta.url), 'utf8');

interface Tally {
  requests: number;
  allow: number;
  deniedByRule: number;
  noMatch: number;
  /** Decided by a rule that matched only folded. */
  folded: number;
}

function describeFailure(state: PolicyState, req: AccessRequest, set: string, fast: unknown, casbin: boolean, reference: unknown): string {
  const relevant = state.lines.filter((l) => l[5] === req.namespace);
  const shown = state.lines.length <= 300 ? state.lines : relevant.slice(0, 300);
  return [
    `mismatch in ${set} (seed ${SEED}; replay with POLICY_DIFF_SEED=${SEED})`,
    `request: ${JSON.stringify(req)}`,
    `fast path: ${JSON.stringify(fast)}`,
    `casbin allows: ${casbin}; reference rule: ${JSON.stringify(reference)}`,
    `lines matching the request: ${JSON.stringify(state.lines.filter((l) => lineMatches(l, req)))}`,
    `policy (${state.lines.length} lines${shown === state.lines ? '' : `; the first ${shown.length} for namespace ${req.namespace}`}):`,
    ...shown.map((l) => `  ${JSON.stringify(l)}`),
  ].join('\n');
}

/**
 * Every set also holds one enforced namespace whose outcomes are known by construction: a role
 * allowed everywhere but under /fixed-deny/, and another allowed /only/here. Five in every ten
 * requests are fixed (allowed, denied by rule, matching no rule, denied by rule only folded,
 * allowed only folded on a case-insensitive route), so each outcome is at least 10 % of every
 * group for every seed; the other half are random.
 */
const FIXED_NS = 'ns-fixed';
const FIXED_ROLE = 'role-fixed';
const FIXED_ROLE_2 = 'role-fixed-2';
const fixedPolicy: NamespacePolicy = {
  namespace: FIXED_NS,
  mode: 'enforce',
  file: `${FIXED_NS}.yaml`,
  source: '',
  rules: [
    { namespace: FIXED_NS, name: 'fixed-allow', effect: 'allow', from: [{ kind: 'role', role: FIXED_ROLE }], service: '*', methods: '*', paths: ['/**'], order: 0, file: `${FIXED_NS}.yaml`, line: 1 },
    { namespace: FIXED_NS, name: 'fixed-deny', effect: 'deny', from: [{ kind: 'role', role: FIXED_ROLE }], service: '*', methods: '*', paths: ['/fixed-deny/**'], order: 1, file: `${FIXED_NS}.yaml`, line: 2 },
    { namespace: FIXED_NS, name: 'fixed-allow-2', effect: 'allow', from: [{ kind: 'role', role: FIXED_ROLE_2 }], service: '*', methods: '*', paths: ['/only/here'], order: 2, file: `${FIXED_NS}.yaml`, line: 3 },
  ],
};
type Fixed = 0 | 1 | 2 | 3 | 4;
const FIXED_OUTCOMES = ['allow', 'deniedByRule', 'noMatch', 'deniedByRule', 'allow'] as const;
function fixedRequest(kind: Fixed): AccessRequest {
  const principal = { kind: 'user' as const, userId: 'fixed', roles: { [FIXED_NS]: [FIXED_ROLE] } };
  if (kind === 0) return { principal, namespace: FIXED_NS, service: 'svc0', method: 'GET', path: '/open/a' };
  if (kind === 1) return { principal, namespace: FIXED_NS, service: 'svc0', method: 'POST', path: '/fixed-deny/a' };
  if (kind === 2) return { principal, namespace: 'nowhere', service: 'svc0', method: 'GET', path: '/a' };
  if (kind === 3) return { principal, namespace: FIXED_NS, service: 'svc0', method: 'GET', path: '/Fixed-Deny/a' };
  return { principal: { kind: 'user', userId: 'fixed', roles: { [FIXED_NS]: [FIXED_ROLE_2] } }, namespace: FIXED_NS, service: 'svc0', method: 'GET', path: '/ONLY/Here', pathCase: 'case-insensitive' };
}

/** The random requests of every group together (~70,000): each outcome's share there is far from 5 % for any seed. */
const randomTally: Tally = { requests: 0, allow: 0, deniedByRule: 0, noMatch: 0, folded: 0 };

async function runSets(label: string, sets: number, perSet: number, make: (rng: Rng) => NamespacePolicy[], size: Parameters<typeof universe>[0], seedOffset: number): Promise<Tally> {
  const tally: Tally = { requests: 0, allow: 0, deniedByRule: 0, noMatch: 0, folded: 0 };
  for (let s = 0; s < sets; s++) {
    const rng = new Rng(SEED + seedOffset + s * 7919);
    const u = universe(size);
    const policies = [...make(rng), fixedPolicy];
    const state = stateFromPolicies(policies, 1);
    const e = await casbinEnforcer(state.lines, MODEL);
    for (let i = 0; i < perSet; i++) {
      const slot = i % 10;
      const fixed = slot < 5;
      const req = fixed ? fixedRequest(slot as Fixed) : randomRequest(rng, u, policies);
      const fast = decide(state, req);
      const casbin = casbinAllows(e, req);
      const matching = ruleMatches(state, req);
      const reference = matching.find((m) => m.rule.effect === 'deny') ?? matching.find((m) => m.rule.effect === 'allow');
      if (fast.allow !== casbin || fast.rule !== reference?.rule.name || fast.comparison !== reference?.comparison) {
        assert.fail(describeFailure(state, req, `${label} set ${s}`, fast, casbin, reference === undefined ? undefined : [reference.rule.name, reference.comparison]));
      }
      const outcome = fast.allow ? 'allow' : fast.reasons.includes('denied-by-rule') ? 'deniedByRule' : 'noMatch';
      if (fixed) {
        assert.equal(outcome, FIXED_OUTCOMES[slot], `fixed request ${slot} in ${label} set ${s}`);
        assert.equal(fast.comparison, slot === 2 ? undefined : slot >= 3 ? 'case-folded' : 'exact', `fixed request ${slot} in ${label} set ${s}`);
      }
      for (const t of fixed ? [tally] : [tally, randomTally]) {
        t.requests++;
        t[outcome]++;
        if (fast.comparison === 'case-folded') t.folded++;
      }
    }
  }
  return tally;
}

/** Every group must exercise all three outcomes, or it proves nothing (the fixed half guarantees it). */
function assertMix(t: Tally): void {
  console.log(`  ${JSON.stringify(t)}`);
  for (const k of ['allow', 'deniedByRule', 'noMatch'] as const) assert.ok(t[k] > t.requests * 0.05, `too few ${k} outcomes: ${JSON.stringify(t)}`);
}

describe('fast path == casbin (differential)', () => {
  const small = { namespaces: 4, services: 3, roles: 3, segments: 4, spellings: true };
  const medium = { namespaces: 8, services: 6, roles: 4, segments: 8, spellings: true };
  const large = { namespaces: 20, services: 10, roles: 6, segments: 12, spellings: true };
  let total = 0;

  // casbin costs ~5 µs per line per request here, so the bulk runs on many small sets.
  it('1,000 small dense sets (1-12 rules) x 97 requests', async () => {
    const u = universe(small);
    const t = await runSets('small', 1000, 97, (rng) => randomPolicies(rng, u, 1 + rng.int(12)), small, 1);
    total += t.requests;
    assertMix(t);
  });

  it('20 medium sets (50-150 rules) x 150 requests', async () => {
    const u = universe(medium);
    const t = await runSets('medium', 20, 150, (rng) => randomPolicies(rng, u, 50 + rng.int(101), { targetNamespaces: 4 }), medium, 1_000_003);
    total += t.requests;
    assertMix(t);
  });

  it('2 large sets (1,500 rules) x 60 requests', async () => {
    const u = universe(large);
    const t = await runSets('large', 2, 60, (rng) => randomPolicies(rng, u, 1500, { targetNamespaces: 6 }), large, 2_000_003);
    total += t.requests;
    assertMix(t);
  });

  it('covered at least 100,000 requests, the random ones a mix of all three outcomes, some decided only folded', () => {
    assert.ok(total >= 100_000, `only ${total} requests`);
    assertMix(randomTally);
    // ~2 % of random requests over ~50,000: zero would be a generator that stopped respelling
    assert.ok(randomTally.folded > randomTally.requests * 0.002, `too few folded decisions: ${JSON.stringify(randomTally)}`);
  });
});
