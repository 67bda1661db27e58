// `gatehouse policy check | test | explain | apply`.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../config/index.js';
import { runOp } from './store-access.js';
import { GatehouseError } from '../errors.js';
import type { AccessRequest, PathCase, Principal } from '../contracts/authz.js';
import { checkPolicies, compilePolicies, decide, formatIssue, readPolicyDir, type PolicyIssue, type PolicyState } from '../authorize/index.js';
import { casbinAllows, casbinEnforcer } from '../authorize/casbin.js';
import { parseCases, runCases, type HostRoute, type PolicyCase } from '../authorize/cases.js';
import { ruleMatches } from '../authorize/explain.js';
import { tryParseSpiffeId } from '../pki/spiffe.js';
import { configOption, str, usageError, type CliIO, type Command } from './command.js';

const dirOption = { dir: { type: 'string', short: 'd', default: './policies' } } as const;

/** Prints every problem and fails with ERR_POLICY_INVALID when there is any. */
function report(issues: readonly PolicyIssue[], io: CliIO, what: string): void {
  if (issues.length === 0) return;
  for (const i of issues) io.err(formatIssue(i));
  throw new GatehouseError('ERR_POLICY_INVALID', `${issues.length} problem(s) in ${what}`);
}

async function loadDir(dir: string, io: CliIO): Promise<PolicyState> {
  const { sources, issues } = await readPolicyDir(dir);
  report([...issues, ...checkPolicies(sources).issues], io, dir);
  return compilePolicies(sources, 1);
}

async function routesFrom(config: unknown, io: CliIO): Promise<HostRoute[] | undefined> {
  if (typeof config !== 'string') return undefined;
  return (await loadConfig(config, io.env)).routes;
}

export const policyCheckCommand: Command = {
  name: ['policy', 'check'],
  summary: 'Check every policy file in a folder; prints each problem as file:line',
  usage: 'gatehouse policy check [--dir policies]',
  options: { ...dirOption },
  async run({ values }, io) {
    const dir = String(values.dir);
    const state = await loadDir(dir, io);
    const rules = [...state.namespaces.values()].reduce((n, p) => n + p.rules.length, 0);
    io.out(`ok: ${state.namespaces.size} namespace(s), ${rules} rule(s), ${state.lines.length} casbin line(s) in ${dir}`);
    return 0;
  },
};

export const policyTestCommand: Command = {
  name: ['policy', 'test'],
  summary: 'Run policy test cases (from, to, expect: allow|deny); exit 1 if any fails',
  usage: 'gatehouse policy test <cases.yaml...> [--dir policies] [--config gatehouse.yaml (to resolve to.host)]',
  options: { ...dirOption, config: { type: 'string', short: 'c' } },
  async run({ values, positionals }, io) {
    if (positionals.length === 0) throw usageError(this, 'name at least one cases file');
    const state = await loadDir(String(values.dir), io);
    const routes = await routesFrom(values.config, io);
    const issues: PolicyIssue[] = [];
    const cases: PolicyCase[] = [];
    for (const file of positionals) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (cause) {
        throw new GatehouseError('ERR_POLICY_NOT_FOUND', `cannot read cases file ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
      }
      cases.push(...parseCases(file, text, routes, issues));
    }
    report(issues, io, 'the cases');
    let failed = 0;
    for (const r of runCases(state, cases)) {
      const got = `${r.decision.allow ? 'allow' : 'deny'}${r.decision.rule === undefined ? '' : ` by ${r.decision.rule}`} (${r.decision.reasons.join(', ')})`;
      if (r.ok) io.out(`ok   ${r.case.file}:${r.case.line} ${r.case.name}: ${got}`);
      else {
        failed++;
        io.out(`FAIL ${r.case.file}:${r.case.line} ${r.case.name}: expected ${r.case.expect}, got ${got}`);
      }
    }
    io.out(`${cases.length - failed} passed, ${failed} failed`);
    if (failed > 0) throw new GatehouseError('ERR_POLICY_TEST_FAILED', `${failed} of ${cases.length} case(s) failed`);
    return 0;
  },
};

export const policyExplainCommand: Command = {
  name: ['policy', 'explain'],
  summary: 'Show the verdict, deciding rule, reasons and mode for one request (and what casbin says)',
  usage:
    'gatehouse policy explain (--from spiffe://<td>/ns/<ns>/sa/<svc> | --role <role>...) (--namespace <ns> --service <svc> | --host <host> --config gatehouse.yaml) [--method GET] --path </p> [--paths exact|case-insensitive (default: the route\'s)] [--dir policies] [--json]',
  options: {
    ...dirOption,
    config: { type: 'string', short: 'c' },
    from: { type: 'string' },
    role: { type: 'string', multiple: true },
    namespace: { type: 'string' },
    service: { type: 'string' },
    host: { type: 'string' },
    method: { type: 'string', default: 'GET' },
    path: { type: 'string' },
    paths: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run({ values }, io) {
    const from = str(values.from);
    const roles = Array.isArray(values.role) ? values.role : [];
    const reqPath = str(values.path);
    if (reqPath === undefined) throw usageError(this, '--path is required');
    if ((from === undefined) === (roles.length === 0)) throw usageError(this, 'give either --from (a SPIFFE ID) or --role');
    let namespace = str(values.namespace);
    let service = str(values.service);
    const pathsOption = str(values.paths);
    if (pathsOption !== undefined && pathsOption !== 'exact' && pathsOption !== 'case-insensitive') throw usageError(this, `--paths must be exact or case-insensitive, got ${pathsOption}`);
    let pathCase: PathCase = pathsOption ?? 'exact';
    const host = str(values.host);
    if (host !== undefined) {
      if (namespace !== undefined || service !== undefined) throw usageError(this, 'give --host or --namespace/--service, not both');
      const routes = await routesFrom(values.config, io);
      if (routes === undefined) throw usageError(this, '--host needs --config (its routes map hosts to namespace and service)');
      const route = routes.find((r) => r.host.toLowerCase() === host.toLowerCase());
      if (route === undefined) throw new GatehouseError('ERR_NOT_FOUND', `no route for host ${host} in ${String(values.config)}`);
      ({ namespace, service } = route);
      pathCase = pathsOption ?? route.paths ?? 'exact';
    }
    if (namespace === undefined || service === undefined) throw usageError(this, '--namespace and --service (or --host) are required');
    let principal: Principal;
    if (from !== undefined) {
      const id = tryParseSpiffeId(from);
      if (id === undefined) throw usageError(this, `--from must be a SPIFFE ID like spiffe://example.org/ns/frontend/sa/web, got ${from}`);
      principal = { kind: 'service', spiffeId: from, namespace: id.namespace, service: id.service, certSerial: '' };
    } else {
      principal = { kind: 'user', userId: 'explain', roles: { [namespace]: roles } };
    }
    const request: AccessRequest = { principal, namespace, service, method: String(values.method), path: reqPath, pathCase };

    const state = await loadDir(String(values.dir), io);
    const decision = decide(state, request);
    const matching = ruleMatches(state, request);
    const casbin = casbinAllows(await casbinEnforcer(state.lines), request);
    const ruleOf = matching.find((m) => m.rule.name === decision.rule)?.rule;
    if (values.json === true) {
      io.out(JSON.stringify({ decision, matching: matching.map(({ rule: r, comparison }) => ({ name: r.name, effect: r.effect, at: `${r.file}:${r.line}`, comparison })), casbin: { allow: casbin, agrees: casbin === decision.allow } }));
    } else {
      const who = principal.kind === 'service' ? principal.spiffeId : `a person with role(s) ${roles.join(', ')} in ${namespace}`;
      io.out(`request: ${who} -> ${namespace}/${service} ${request.method} ${request.path}${pathCase === 'exact' ? '' : ` (paths: ${pathCase})`}`);
      io.out(`verdict: ${decision.allow ? 'allow' : 'deny'}${decision.pass && !decision.allow ? ' (passes: dry-run)' : ''}`);
      io.out(`rule:    ${decision.rule === undefined ? '(none: default deny)' : `${decision.rule}${ruleOf === undefined ? '' : ` (${ruleOf.file}:${ruleOf.line})`}`}`);
      // which comparison decided: a deny always compares the folded path too, an allow only on a case-insensitive route
      if (decision.comparison !== undefined) io.out(`compare: ${decision.comparison === 'exact' ? 'exact' : 'case-folded (the path decoded and case-folded matched; byte for byte it would not)'}`);
      io.out(`reasons: ${decision.reasons.join(', ')}`);
      io.out(`mode:    ${decision.mode}${state.namespaces.has(namespace) ? '' : ` (no policy file for namespace ${namespace})`}`);
      io.out(`matches: ${matching.length === 0 ? '(none)' : matching.map(({ rule: r, comparison }) => `${r.name} (${r.effect}, ${r.file}:${r.line}${comparison === 'exact' ? '' : ', case-folded'})`).join('; ')}`);
      io.out(`casbin:  ${casbin ? 'allow' : 'deny'} (${casbin === decision.allow ? 'agrees' : 'DISAGREES: please report this'})`);
    }
    return 0;
  },
};

export const policyApplyCommand: Command = {
  name: ['policy', 'apply'],
  summary: "Check the policies folder and write it to the store in one transaction (every replica reloads)",
  usage: 'gatehouse policy apply [--dir <policies.dir from the config>] [--config gatehouse.yaml]',
  options: { ...configOption, dir: { type: 'string', short: 'd' } },
  async run({ values }, io) {
    const config = await loadConfig(String(values.config), io.env);
    const dir = str(values.dir) ?? config.policies.dir;
    await loadDir(dir, io); // every problem printed with file:line before the store is opened
    const { sources } = await readPolicyDir(dir);
    const { result, via } = await runOp(config, 'policy.apply', { sources }, undefined, { env: io.env });
    io.out(JSON.stringify({ applied: path.resolve(dir), via, ...(result as object) }));
    return 0;
  },
};

export const POLICY_COMMANDS: Command[] = [policyCheckCommand, policyTestCommand, policyExplainCommand, policyApplyCommand];
