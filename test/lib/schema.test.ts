import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isGatehouseError } from '../../src/errors.js';
import { Duration, Type, applyDefaults, bodyReader, issuesOf } from '../../src/lib/schema.js';

describe('lib/schema', () => {
  it('reads a body or refuses it with ERR_BAD_REQUEST naming the field', () => {
    const r = bodyReader(Type.Object({ username: Type.String({ minLength: 1, maxLength: 8 }), n: Type.Optional(Type.Integer()) }));
    assert.deepEqual(r.read({ username: 'alice' }), { username: 'alice' });
    for (const [body, msg] of [
      [{ username: 5 }, /^username must be a string, got number 5$/],
      [{}, /^username is required$/],
      [{ username: 'alice', n: 1.5 }, /^n must be an integer/],
      [{ username: 'x'.repeat(9) }, /^username must be at most 8 characters$/],
      [[], /^the body must be a map, got a list$/],
      [null, /^the body must be a map, got null$/],
      ['s', /^the body must be a map/],
    ] as const) {
      assert.throws(() => r.read(body), (e: unknown) => isGatehouseError(e, 'ERR_BAD_REQUEST') && msg.test(e.message), JSON.stringify(body));
    }
    const coded = bodyReader(Type.Object({ kind: Type.String() }), 'ERR_REVOCATION_INVALID');
    assert.throws(() => coded.read({}), (e: unknown) => isGatehouseError(e, 'ERR_REVOCATION_INVALID'));
  });

  it('decodes durations to ms and words their problems', () => {
    const s = Type.Object({ t: Duration({ minMs: 1_000, maxMs: 60_000 }, 5_000) });
    assert.deepEqual(bodyReader(s).read({ t: '30s' }), { t: 30_000 });
    assert.deepEqual(issuesOf(s, { t: '2m' }), [{ path: ['t'], message: 'must be at most 60s' }]);
    assert.deepEqual(issuesOf(s, { t: '1.5s' }), [{ path: ['t'], message: 'must be a duration like 300s, 15m or 24h, got string "1.5s"' }]);
    assert.deepEqual(applyDefaults(s, {}), { t: '5s' });
  });

  it('names the kind of a map chosen by kind, or the chosen shape\'s problems', () => {
    const s = Type.Object({
      store: Type.Union([
        Type.Object({ kind: Type.Literal('a'), x: Type.String() }, { additionalProperties: false }),
        Type.Object({ kind: Type.Literal('b'), y: Type.Integer() }, { additionalProperties: false }),
      ]),
    });
    assert.deepEqual(issuesOf(s, { store: { kind: 'c' } }), [{ path: ['store', 'kind'], message: 'must be one of a, b, got string "c"' }]);
    assert.deepEqual(issuesOf(s, { store: { kind: 'b', x: 's' } }), [
      { path: ['store', 'y'], message: 'is required' },
      { path: ['store', 'x'], message: 'unknown key (allowed here: kind, y)' },
    ]);
    assert.deepEqual(issuesOf(s, { store: [1] }), [{ path: ['store'], message: 'must be a map, got a list' }]);
  });
});
