// `gatehouse policy check | test | explain | apply`, run in-process through runCli.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../../src/cli/index.js';
import type { CliIO } from '../../src/cli/command.js';
import { openStore, text } from '../../src/store/index.js';

const POLICIES = path.join(import.meta.dirname, '../../policies');

async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, stopSignal: new Promise(() => {}) };
  const code = await runCli(args, io);
  return { code, out, err };
}

describe('gatehouse policy', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'gh-polcli-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('check passes on the shipped policies', async () => {
    const r = await cli(['policy', 'check', '--dir', POLICIES]);
    assert.equal(r.code, 0, r.err.join('\n'));
    assert.match(r.out[0]!, /^ok: 2 namespace\(s\), 6 rule\(s\)/);
  });

  it('check prints every problem as file:line and exits 1 with ERR_POLICY_INVALID', async () => {
    const dir = path.join(root, 'bad');
    await cp(POLICIES, dir, { recursive: true });
    await writeFile(path.join(dir, 'payments.yaml'), 'namespace: payments\nrules:\n  - name: a\n    from: [{ namespace: Frontend }]\n    to: { service: api, methods: [get] }\n');
    await writeFile(path.join(dir, 'ledger.yaml'), 'namespace: ledgr\nrules: []\n');
    const r = await cli(['policy', 'check', '--dir', dir]);
    assert.equal(r.code, 1);
    assert.deepEqual(r.err.slice(0, -1).map((l) => l.replace(dir + path.sep, '')), [
      'ledger.yaml:1: namespace is "ledgr" but the file is named for "ledger": name the file ledgr.yaml',
      'payments.yaml:4: rules[0].from[0].namespace must be a namespace (a DNS label), got "Frontend"',
      'payments.yaml:5: rules[0].to.methods[0] must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT, got string "get" (methods are upper case)',
    ]);
    assert.match(r.err.at(-1)!, /^gatehouse: ERR_POLICY_INVALID: 3 problem\(s\)/);
  });

  it('test runs the shipped cases; all pass', async () => {
    const r = await cli(['policy', 'test', path.join(POLICIES, 'tests/payments.yaml'), path.join(POLICIES, 'tests/frontend.yaml'), '--dir', POLICIES]);
    assert.equal(r.code, 0, [...r.out, ...r.err].join('\n'));
    assert.equal(r.out.at(-1), '12 passed, 0 failed');
    assert.ok(r.out.slice(0, -1).every((l) => l.startsWith('ok   ')));
  });

  it('test reports a failing case like a unit test and exits 1 with ERR_POLICY_TEST_FAILED; hosts resolve through --config', async () => {
    const cases = path.join(root, 'cases.yaml');
    const config = path.join(root, 'gatehouse.yaml');
    await writeFile(config, 'routes:\n  - { host: api.payments, namespace: payments, service: api, upstream: "http://127.0.0.1:7001" }\n');
    await writeFile(cases, [
      '- name: wrong expectation',
      '  from: spiffe://example.org/ns/frontend/sa/web',
      '  to: { namespace: payments, service: api, method: DELETE, path: /v1/charges/1 }',
      '  expect: allow',
      '- name: by host',
      '  from: spiffe://example.org/ns/frontend/sa/web',
      '  to: { host: api.payments, method: POST, path: /v1/charges }',
      '  expect: allow',
    ].join('\n'));
    const r = await cli(['policy', 'test', cases, '--dir', POLICIES, '--config', config]);
    assert.equal(r.code, 1);
    assert.equal(r.out[0], `FAIL ${cases}:1 wrong expectation: expected allow, got deny (no-matching-rule)`);
    assert.equal(r.out[1], `ok   ${cases}:5 by host: allow by web-creates-charges (allowed-by-rule)`);
    assert.equal(r.out[2], '1 passed, 1 failed');
    assert.equal(r.err[0], 'gatehouse: ERR_POLICY_TEST_FAILED: 1 of 2 case(s) failed');
  });

  it('test refuses a host without --config, naming the line', async () => {
    const cases = path.join(root, 'hosts.yaml');
    await writeFile(cases, '- from: { role: ops-admin }\n  to: { host: api.payments, method: GET, path: / }\n  expect: deny\n');
    const r = await cli(['policy', 'test', cases, '--dir', POLICIES]);
    assert.equal(r.code, 1);
    assert.equal(r.err[0], `${cases}:2: [0].to.host needs the routes of a config: pass --config (or give namespace and service)`);
    assert.match(r.err[1]!, /ERR_POLICY_INVALID/);
  });

  it('explain prints verdict, rule with its line, reasons, mode, and casbin agreeing', async () => {
    const r = await cli(['policy', 'explain', '--from', 'spiffe://example.org/ns/frontend/sa/web', '--namespace', 'payments', '--service', 'api', '--method', 'POST', '--path', '/v1/charges/7', '--dir', POLICIES]);
    assert.equal(r.code, 0, r.err.join('\n'));
    assert.deepEqual(r.out.map((l) => l.replace(POLICIES + path.sep, '')), [
      'request: spiffe://example.org/ns/frontend/sa/web -> payments/api POST /v1/charges/7',
      'verdict: allow',
      'rule:    web-creates-charges (payments.yaml:5)',
      'compare: exact',
      'reasons: allowed-by-rule',
      'mode:    enforce',
      'matches: web-creates-charges (allow, payments.yaml:5)',
      'casbin:  allow (agrees)',
    ]);
    const j = await cli(['policy', 'explain', '--role', 'nobody', '--namespace', 'frontend', '--service', 'web', '--path', '/', '--dir', POLICIES, '--json']);
    const body = JSON.parse(j.out[0]!) as { decision: unknown; casbin: unknown };
    assert.deepEqual(body.decision, { allow: false, pass: true, reasons: ['no-matching-rule', 'dry-run'], mode: 'dry-run', policyVersion: 1 });
    assert.deepEqual(body.casbin, { allow: false, agrees: true });
  });

  it('explain says a deny decided case-folded: GET /ADMIN/users from frontend is no-admin-from-frontend, not a bypass', async () => {
    const r = await cli(['policy', 'explain', '--from', 'spiffe://example.org/ns/frontend/sa/web', '--namespace', 'payments', '--service', 'api', '--path', '/ADMIN/users', '--dir', POLICIES]);
    assert.equal(r.code, 0, r.err.join('\n'));
    assert.deepEqual(r.out.map((l) => l.replace(POLICIES + path.sep, '')), [
      'request: spiffe://example.org/ns/frontend/sa/web -> payments/api GET /ADMIN/users',
      'verdict: deny',
      'rule:    no-admin-from-frontend (payments.yaml:14)',
      'compare: case-folded (the path decoded and case-folded matched; byte for byte it would not)',
      'reasons: denied-by-rule',
      'mode:    enforce',
      'matches: no-admin-from-frontend (deny, payments.yaml:14, case-folded)',
      'casbin:  deny (agrees)',
    ]);
  });

  it('explain and test compare allow rules folded for a case-insensitive route (--paths, or the route\'s paths through --config)', async () => {
    const args = ['policy', 'explain', '--from', 'spiffe://example.org/ns/frontend/sa/web', '--namespace', 'payments', '--service', 'api', '--path', '/V1/Charges/7', '--dir', POLICIES, '--json'];
    const exact = JSON.parse((await cli(args)).out[0]!) as { decision: { allow: boolean; comparison?: string } };
    assert.deepEqual([exact.decision.allow, exact.decision.comparison], [false, undefined]);
    const folded = JSON.parse((await cli([...args, '--paths', 'case-insensitive'])).out[0]!) as { decision: { allow: boolean; rule: string; comparison: string }; matching: { name: string; comparison: string }[]; casbin: { agrees: boolean } };
    assert.deepEqual([folded.decision.allow, folded.decision.rule, folded.decision.comparison, folded.casbin.agrees], [true, 'web-reads-charges', 'case-folded', true]);
    assert.deepEqual(folded.matching.map((m) => [m.name, m.comparison]), [['web-reads-charges', 'case-folded']]);
    assert.equal((await cli([...args, '--paths', 'insensitive'])).code, 2);

    const config = path.join(root, 'lenient.yaml');
    const cases = path.join(root, 'lenient-cases.yaml');
    await writeFile(config, 'routes:\n  - { host: api.payments, namespace: payments, service: api, upstream: "http://127.0.0.1:7001", paths: case-insensitive }\n');
    await writeFile(cases, '- from: spiffe://example.org/ns/frontend/sa/web\n  to: { host: api.payments, method: GET, path: /V1/CHARGES/7 }\n  expect: allow\n');
    const t = await cli(['policy', 'test', cases, '--dir', POLICIES, '--config', config]);
    assert.equal(t.code, 0, [...t.out, ...t.err].join('\n'));
    const e = await cli(['policy', 'explain', '--from', 'spiffe://example.org/ns/frontend/sa/web', '--host', 'api.payments', '--config', config, '--path', '/V1/CHARGES/7', '--dir', POLICIES]);
    assert.equal(e.out[0], 'request: spiffe://example.org/ns/frontend/sa/web -> payments/api GET /V1/CHARGES/7 (paths: case-insensitive)');
    assert.equal(e.out[1], 'verdict: allow');
  });

  it('explain without a caller is a usage error (exit 2)', async () => {
    const r = await cli(['policy', 'explain', '--namespace', 'payments', '--service', 'api', '--path', '/']);
    assert.equal(r.code, 2);
    assert.match(r.err[0]!, /ERR_USAGE: give either --from/);
  });

  it('apply writes the folder to the store named by the config', async () => {
    const config = path.join(root, 'apply.yaml');
    await writeFile(config, `store: { kind: embedded, path: ./apply-data }\npolicies: { dir: ${JSON.stringify(POLICIES)} }\n`);
    const r = await cli(['policy', 'apply', '--config', config]);
    assert.equal(r.code, 0, r.err.join('\n'));
    const result = JSON.parse(r.out[0]!) as { written: string[]; revision: number };
    assert.deepEqual(result.written.sort(), ['frontend', 'payments']);
    const store = await openStore({ kind: 'embedded', path: path.join(root, 'apply-data') });
    try {
      const kv = await store.get('/gatehouse/policy/payments');
      const stored = JSON.parse(text(kv!.value)) as { file: string; namespace: string };
      assert.deepEqual([stored.file, stored.namespace, kv!.modRevision], ['payments.yaml', 'payments', result.revision]);
    } finally {
      await store.close();
    }
  });
});
