// The loader refuses every kind of mistake, naming file and line, and reports all at once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isGatehouseError } from '../../src/errors.js';
import { checkPolicies, compilePolicies, formatIssue } from '../../src/authorize/compile.js';
import { loadPolicyDir, checkPolicyDir } from '../../src/authorize/dir.js';
import { MODEL_CONF } from '../../src/authorize/model.js';

const POLICIES = path.join(import.meta.dirname, '../../policies');

function problems(file: string, text: string): string[] {
  return checkPolicies([{ file, text }]).issues.map(formatIssue);
}

describe('policy loader', () => {
  it('the shipped policies compile, and policies/model.conf is the built-in model', async () => {
    assert.equal(await readFile(path.join(POLICIES, 'model.conf'), 'utf8'), MODEL_CONF);
    const state = await loadPolicyDir(POLICIES);
    assert.deepEqual([...state.namespaces.keys()].sort(), ['frontend', 'payments']);
    assert.equal(state.namespaces.get('frontend')?.mode, 'dry-run');
  });

  it('reports every problem with its line', () => {
    const text = [
      'namespace: payments', //                          1
      'mode: enforcing', //                               2
      'colour: blue', //                                  3
      'rules:', //                                        4
      '  - name: ok-rule', //                             5
      '    from: [{ namespace: frontend }]', //           6
      '    to: { service: api }', //                      7
      '  - name: ok-rule', //                             8
      '    effect: permit', //                            9
      '    from: [{ namespace: frontend, role: x }]', // 10
      '    to:', //                                      11
      '      service: Api', //                           12
      '      methods: [post, FETCH, "*"]', //            13
      '      paths: ["/a/**/b", "v1", "/a/b*", "/a//b", "/ok", "/ok"]', // 14
      '      port: 80', //                               15
      '  - name: no-from', //                            16
      '    to: { service: api }', //                     17
      '  - name: empty-lists', //                        18
      '    from: []', //                                 19
      '    to: { service: api, methods: [], paths: [] }', // 20
    ].join('\n');
    const got = problems('policies/payments.yaml', text);
    const expect: [number, RegExp][] = [
      [2, /mode must be one of enforce, dry-run/],
      [3, /colour unknown key/],
      [8, /rules\[1\]\.name "ok-rule" is already the name of the rule at line 5/],
      [9, /effect must be one of allow, deny/],
      [10, /from\[0\] names a role and a namespace/],
      [12, /to\.service must be a service/],
      [13, /methods\[0\] .*"post".*upper case/],
      [13, /methods\[1\] must be one of GET/],
      [13, /methods\[2\] .*omit methods/],
      [14, /paths\[0\] "\/a\/\*\*\/b" "\*\*" is allowed only as the last segment/],
      [14, /paths\[1\] "v1" must start with "\/"/],
      [14, /paths\[2\] "\/a\/b\*" "\*" must be a whole segment/],
      [14, /paths\[3\] "\/a\/\/b" has an empty segment/],
      [14, /paths\[5\] repeats "\/ok"/],
      [15, /to\.port unknown key/],
      [16, /rules\[2\]\.from is required/],
      [19, /from must not be empty/],
      [20, /methods must not be empty/],
      [20, /paths must not be empty/],
    ];
    for (const [line, re] of expect) {
      assert.ok(got.some((g) => g.startsWith(`policies/payments.yaml:${line}: `) && re.test(g)), `missing line ${line} ${String(re)} in:\n${got.join('\n')}`);
    }
    assert.equal(got.length, expect.length, got.join('\n'));
  });

  it('refuses duplicate rule names, naming the first one', () => {
    const got = problems('p.yaml', 'namespace: p\nrules:\n  - { name: a, from: [{ namespace: x }], to: { service: s } }\n  - { name: a, from: [{ namespace: y }], to: { service: s } }\n');
    assert.deepEqual(got, ['p.yaml:4: rules[1].name "a" is already the name of the rule at line 3']);
  });

  it('refuses a namespace that is not the file name', () => {
    assert.deepEqual(problems('dir/payments.yaml', 'namespace: billing\nrules: []\n'), ['dir/payments.yaml:1: namespace is "billing" but the file is named for "payments": name the file billing.yaml']);
  });

  it('refuses YAML syntax errors, duplicate keys, aliases, wrong types and an empty file', () => {
    assert.match(problems('a.yaml', 'namespace: a\nrules: [\n')[0]!, /^a\.yaml:\d+: /);
    assert.match(problems('a.yaml', 'namespace: a\nnamespace: a\nrules: []\n')[0]!, /^a\.yaml:2: .*[Mm]ap keys must be unique/);
    assert.deepEqual(problems('a.yaml', 'namespace: a\nrules:\n  - &r { name: x, from: [{ namespace: b }], to: { service: s } }\n  - *r\n'), ['a.yaml:4: uses a YAML alias; write policies out in full']);
    assert.deepEqual(problems('a.yaml', 'namespace: a\nrules: {}\n'), ['a.yaml:2: rules must be a list, got a map']);
    assert.deepEqual(problems('a.yaml', 'namespace: 12\nrules: []\n'), ['a.yaml:1: namespace must be a string, got number 12']);
    assert.deepEqual(problems('a.yaml', ''), ['a.yaml:1: the top level must be a map, got nothing']);
    assert.deepEqual(problems('a.yaml', 'namespace: a\n'), ['a.yaml:1: rules is required']);
  });

  it('refuses two files for one namespace', () => {
    const r = checkPolicies([{ file: 'x/a.yaml', text: 'namespace: a\nrules: []\n' }, { file: 'x/a.yml', text: 'namespace: a\nrules: []\n' }]);
    assert.deepEqual(r.issues.map(formatIssue), ['x/a.yml: namespace "a" is already governed by x/a.yaml']);
  });

  it('compilePolicies throws ERR_POLICY_INVALID with every issue in details', () => {
    try {
      compilePolicies([{ file: 'a.yaml', text: 'namespace: b\nmode: x\nrules: []\n' }], 1);
      assert.fail('compiled');
    } catch (err) {
      assert.ok(isGatehouseError(err, 'ERR_POLICY_INVALID'));
      assert.equal(err.status, 400);
      assert.deepEqual(err.details?.issues, ['a.yaml:1: namespace is "b" but the file is named for "a": name the file b.yaml', 'a.yaml:2: mode must be one of enforce, dry-run, got string "x"']);
    }
  });

  it('a folder whose model.conf was edited is refused; a missing folder is ERR_POLICY_NOT_FOUND', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gh-pol-'));
    try {
      await cp(POLICIES, dir, { recursive: true });
      await writeFile(path.join(dir, 'model.conf'), MODEL_CONF.replace('!some(where (p.eft == deny))', 'true'));
      const issues = await checkPolicyDir(dir);
      assert.equal(issues.length, 1);
      assert.equal(issues[0]!.file, path.join(dir, 'model.conf'));
      assert.equal(issues[0]!.line, MODEL_CONF.split('\n').findIndex((l) => l.includes('!some(where (p.eft == deny))')) + 1);
      await assert.rejects(loadPolicyDir(dir), (e) => isGatehouseError(e, 'ERR_POLICY_INVALID'));
      await assert.rejects(loadPolicyDir(path.join(dir, 'nope')), (e) => isGatehouseError(e, 'ERR_POLICY_NOT_FOUND'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
