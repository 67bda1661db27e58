import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bearerToken, parseBearer } from '../../src/lib/bearer.js';
import { isGatehouseError } from '../../src/errors.js';

describe('bearer', () => {
  it('reads the token of a Bearer header, the scheme in any case', () => {
    for (const [h, token] of [
      ['Bearer abc.def-ghi_jkl', 'abc.def-ghi_jkl'],
      ['bearer abc', 'abc'],
      ['BEARER abc', 'abc'],
      ['Bearer   abc', 'abc'],
      ['Bearer abc ', 'abc'],
      ['Bearer a~b+c/d==', 'a~b+c/d=='],
    ] as const) {
      assert.deepEqual(parseBearer(h), { kind: 'bearer', token }, h);
      assert.equal(bearerToken(h), token);
    }
  });

  it('tells absent and other schemes apart from malformed bearer headers', () => {
    assert.deepEqual(parseBearer(undefined), { kind: 'absent' });
    assert.deepEqual(parseBearer('Basic dXNlcjpwYXNz'), { kind: 'other' });
    assert.deepEqual(parseBearer(''), { kind: 'other' });
    for (const bad of ['Bearer', 'Bearer ', 'Bearer a b', 'Bearer\tabc', 'Bearerabc', 'Bearer =abc', 'Bearer a=b', 'Bearer ab\u00e9', 'Bearer a,b', `Bearer ${'a'.repeat(20_000)}`]) {
      assert.deepEqual(parseBearer(bad), { kind: 'malformed' }, bad);
    }
    // a repeated header is ambiguous
    assert.deepEqual(parseBearer(['Bearer a', 'Bearer b']), { kind: 'malformed' });
  });

  it('bearerToken refuses with the code the caller names', () => {
    assert.throws(() => bearerToken(undefined), (e: unknown) => isGatehouseError(e, 'ERR_TOKEN_INVALID'));
    assert.throws(() => bearerToken('Basic abc', 'ERR_ADMIN_UNAUTHORIZED'), (e: unknown) => isGatehouseError(e, 'ERR_ADMIN_UNAUTHORIZED'));
    assert.throws(() => bearerToken('Bearer a b', 'ERR_ADMIN_UNAUTHORIZED'), (e: unknown) => isGatehouseError(e, 'ERR_ADMIN_UNAUTHORIZED'));
  });
});
