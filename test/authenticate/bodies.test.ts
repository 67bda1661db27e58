import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isGatehouseError } from '../../src/errors.js';
import { ENROLL_BODY, LOGIN_START_BODY, RETURN_TO_BODY, TOTP_BODY, WEBAUTHN_BODY } from '../../src/authenticate/http/bodies.js';

describe('human listener bodies', () => {
  it('reads what each route reads and ignores other keys', () => {
    assert.deepEqual(LOGIN_START_BODY.read({ username: 'alice', rd: '/x', extra: 1 }), { username: 'alice', rd: '/x', extra: 1 });
    assert.deepEqual(TOTP_BODY.read({ code: '123456' }), { code: '123456' });
    assert.deepEqual(WEBAUTHN_BODY.read({ response: { id: 'x' } }), { response: { id: 'x' } });
    assert.deepEqual(RETURN_TO_BODY.read({}), {});
    assert.deepEqual(ENROLL_BODY.read({ token: 't', code1: '1', code2: '2' }), { token: 't', code1: '1', code2: '2' });
  });

  it('refuses other shapes with ERR_BAD_REQUEST naming the field', () => {
    for (const [reader, body, msg] of [
      [LOGIN_START_BODY, { username: 5 }, /^username must be a string/],
      [LOGIN_START_BODY, { username: 'a'.repeat(300) }, /^username must be at most 256 characters/],
      [LOGIN_START_BODY, { rd: 5 }, /^rd /],
      [TOTP_BODY, { code: 123456 }, /^code must be a string/],
      [TOTP_BODY, [], /^the body must be a map/],
      [ENROLL_BODY, { token: {} }, /^token must be a string/],
      [WEBAUTHN_BODY, 'x', /^the body must be a map/],
    ] as const) {
      assert.throws(() => reader.read(body), (e: unknown) => isGatehouseError(e, 'ERR_BAD_REQUEST') && msg.test(e.message), JSON.stringify(body));
    }
  });
});
