// The hostile-path corpus: every entry must be refused with the named problem; the
// accepted ones must come back byte-for-byte unchanged (the upstream gets what policy saw).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkRequestTarget } from '../../src/gateway/path.js';
import { HOSTILE_PATHS } from './hostile-paths.js';

describe('path safety', () => {
  for (const [target, problem] of HOSTILE_PATHS) {
    it(`refuses ${JSON.stringify(target.length > 60 ? target.slice(0, 60) + '…' : target)} (${problem})`, () => {
      assert.deepEqual(checkRequestTarget(target), { ok: false, problem });
    });
  }

  for (const target of ['/', '/v1/charges', '/v1/charges/', '/v1/charges/7?expand=customer&x=%2F', '/files/a%20b', '/u/%C3%A9', '/a-b_c.d~e/f.json', '/q?x=%0a']) {
    it(`accepts ${target} unchanged`, () => {
      const r = checkRequestTarget(target);
      assert.ok(r.ok);
      assert.equal(r.path + r.query, target);
    });
  }
});
