// The hostile-path corpus: every entry must be refused with the named problem; the
// accepted ones must come back byte-for-byte unchanged (the upstream gets what policy saw).
// Entries whose problem is a route-dependent form (PATH_FORMS) are accepted, unchanged, only
// where the route allows that form.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PATH_FORMS, checkRequestTarget, type PathForm, type PathProblem } from '../../src/gateway/path.js';
import { HOSTILE_PATHS } from './hostile-paths.js';

const isForm = (p: PathProblem): p is PathForm => (PATH_FORMS as readonly string[]).includes(p);

describe('path safety', () => {
  for (const [target, problem] of HOSTILE_PATHS) {
    it(`refuses ${JSON.stringify(target.length > 60 ? target.slice(0, 60) + '…' : target)} (${problem})`, () => {
      assert.deepEqual(checkRequestTarget(target), { ok: false, problem });
    });
  }

  for (const target of ['/', '/v1/charges', '/v1/charges/', '/v1/charges/7?expand=customer&x=%2F', '/u/%C3%A9', '/a-b_c.d~e/f.json', '/q?x=%0a', '/100%25', '/a.b/c', '/%C3%80%AE', '/%E0%A0%80', '/q?x=%252e&y=%20']) {
    it(`accepts ${target} unchanged`, () => {
      const r = checkRequestTarget(target);
      assert.ok(r.ok);
      assert.equal(r.path + r.query, target);
      assert.deepEqual(r.forms, []);
    });
  }

  for (const [target, problem] of HOSTILE_PATHS.filter(([, p]) => isForm(p))) {
    it(`${JSON.stringify(target)} passes unchanged only where the route allows ${problem}`, () => {
      const all = checkRequestTarget(target, PATH_FORMS);
      assert.ok(all.ok, JSON.stringify(all));
      assert.equal(all.path + all.query, target);
      assert.ok(all.forms.includes(problem as PathForm));
      assert.deepEqual(checkRequestTarget(target, all.forms), all);
      assert.deepEqual(checkRequestTarget(target, PATH_FORMS.filter((f) => f !== problem)), { ok: false, problem });
    });
  }

  it('reports every form a target holds, and refuses the first one not allowed', () => {
    const r = checkRequestTarget('/a%20b/c%3B./%252e', PATH_FORMS);
    assert.ok(r.ok);
    assert.deepEqual([...r.forms].sort(), ['double-encoding', 'encoded-semicolon', 'encoded-space', 'trailing-dot']);
    assert.deepEqual(checkRequestTarget('/a%20b/c%3B./%252e', ['encoded-space', 'trailing-dot']), { ok: false, problem: 'encoded-semicolon' });
    // a problem no route may allow wins over any form
    assert.deepEqual(checkRequestTarget('/a%20b/../c', PATH_FORMS), { ok: false, problem: 'dot-segment' });
  });
});
