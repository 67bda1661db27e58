import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { installErrorHandlers, parseJsonBodies, type ErrorBody } from '../../src/lib/http-errors.js';

const codeOf = (r: { json(): unknown }): string => (r.json() as ErrorBody).error.code;

async function app() {
  const a = Fastify();
  installErrorHandlers(a);
  await a.register(async (scope) => {
    parseJsonBodies(scope, 1024);
    scope.post('/echo', async (req) => ({ got: req.body, polluted: ({} as Record<string, unknown>).polluted ?? null }));
  });
  return a;
}

describe('parseJsonBodies', () => {
  it('parses a JSON object body', async () => {
    const a = await app();
    const r = await a.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload: '{"a":1}' });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { got: { a: 1 }, polluted: null });
  });

  it('refuses __proto__ and constructor.prototype keys with a coded 400', async () => {
    const a = await app();
    for (const payload of ['{"__proto__": {"polluted": true}}', '{"a": {"__proto__": {"polluted": true}}}', '{"constructor": {"prototype": {"polluted": true}}}']) {
      const r = await a.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload });
      assert.equal(r.statusCode, 400, payload);
      assert.equal(codeOf(r), 'ERR_BAD_REQUEST');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    }
  });

  it('refuses bodies that are not JSON, empty or over the limit, never with a 500', async () => {
    const a = await app();
    for (const [payload, status] of [['{nope', 400], ['', 400], [JSON.stringify({ a: 'x'.repeat(2000) }), 400]] as const) {
      const r = await a.inject({ method: 'POST', url: '/echo', headers: { 'content-type': 'application/json' }, payload });
      assert.equal(r.statusCode, status, payload.slice(0, 20));
      assert.equal(codeOf(r), 'ERR_BAD_REQUEST');
    }
  });
});
