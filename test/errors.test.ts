import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, GatehouseError, isGatehouseError } from '../src/errors.js';

describe('error codes', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));

  it('docs/errors.md lists every code with its status', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      assert.equal(rows.get(code), spec.status, `${code} missing or wrong status in docs/errors.md`);
    }
  });

  it('docs/errors.md lists no code that does not exist', () => {
    for (const code of rows.keys()) assert.ok(code in ERROR_CODES, `${code} is documented but not defined`);
  });

  it('serialises without stack or cause', () => {
    const err = new GatehouseError('ERR_STORE_CONFLICT', 'changed', { cause: new Error('secret detail'), retryable: false });
    assert.deepEqual(JSON.parse(JSON.stringify(err)), { code: 'ERR_STORE_CONFLICT', message: 'changed' });
    assert.equal(err.status, 409);
    assert.ok(isGatehouseError(err, 'ERR_STORE_CONFLICT'));
    assert.ok(!isGatehouseError(err, 'ERR_NOT_FOUND'));
    assert.ok(!isGatehouseError(new Error('x')));
  });
});
