import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT, tokenExchange, type TokenExchangeInput, type TokenService } from '../../src/tokens/index.js';
import { AUDIENCE, CALLER, harness, type Harness } from './helpers.js';

const THUMB = 'c'.repeat(43);
const caller = { spiffeId: CALLER, namespace: 'shop', service: 'web', certThumbprint: THUMB };

describe('tokenExchange (RFC 8693 shape)', () => {
  let h: Harness;
  let t: TokenService;
  const reachable = new Set([AUDIENCE]);
  const exchange = (form: Record<string, string>, extra: Partial<TokenExchangeInput> = {}): ReturnType<typeof tokenExchange> =>
    tokenExchange({ form, caller, canReach: (aud) => reachable.has(aud), rolesFor: () => ['reader'], service: t, ...extra });

  beforeEach(async () => {
    h = await harness();
    t = await h.open();
  });
  afterEach(async () => h.close());

  it('issues a token for the audience, bound to the caller certificate, never cached by clients', async () => {
    const r = await exchange({ grant_type: TOKEN_EXCHANGE_GRANT, audience: AUDIENCE });
    assert.equal(r.status, 200);
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.headers.pragma, 'no-cache');
    assert.ok('access_token' in r.body);
    assert.equal(r.body.issued_token_type, JWT_TOKEN_TYPE);
    assert.equal(r.body.token_type, 'Bearer');
    assert.equal(r.body.expires_in, 300);
    const { claims } = await t.verify(r.body.access_token, { audience: AUDIENCE, certThumbprint: THUMB, requireBinding: true });
    assert.equal(claims.sub, CALLER);
    assert.equal(claims.ns, 'payments');
    assert.deepEqual(claims.roles, ['reader']);
    assert.deepEqual(claims.cnf, { 'x5t#S256': THUMB });
    // Another certificate cannot use it.
    await assert.rejects(t.verify(r.body.access_token, { audience: AUDIENCE, certThumbprint: 'd'.repeat(43) }), { code: 'ERR_TOKEN_BINDING' });
  });

  it('accepts requested_token_type jwt or access_token', async () => {
    for (const type of [JWT_TOKEN_TYPE, 'urn:ietf:params:oauth:token-type:access_token']) {
      assert.equal((await exchange({ grant_type: TOKEN_EXCHANGE_GRANT, audience: AUDIENCE, requested_token_type: type })).status, 200);
    }
  });

  const refusals: [string, Record<string, string>, string][] = [
    ['no grant_type', { audience: AUDIENCE }, 'invalid_request'],
    ['another grant', { grant_type: 'client_credentials', audience: AUDIENCE }, 'unsupported_grant_type'],
    ['no audience', { grant_type: TOKEN_EXCHANGE_GRANT }, 'invalid_request'],
    ['audience not a SPIFFE ID', { grant_type: TOKEN_EXCHANGE_GRANT, audience: 'https://ledger.internal' }, 'invalid_target'],
    ['audience with a trailing slash', { grant_type: TOKEN_EXCHANGE_GRANT, audience: `${AUDIENCE}/` }, 'invalid_target'],
    ['audience in another trust domain', { grant_type: TOKEN_EXCHANGE_GRANT, audience: 'spiffe://evil.test/ns/payments/sa/ledger' }, 'invalid_target'],
    ['audience policy does not allow', { grant_type: TOKEN_EXCHANGE_GRANT, audience: 'spiffe://gatehouse.test/ns/payments/sa/vault' }, 'invalid_target'],
    ['subject_token (delegation)', { grant_type: TOKEN_EXCHANGE_GRANT, audience: AUDIENCE, subject_token: 'x', subject_token_type: JWT_TOKEN_TYPE }, 'invalid_request'],
    ['actor_token', { grant_type: TOKEN_EXCHANGE_GRANT, audience: AUDIENCE, actor_token: 'x' }, 'invalid_request'],
    ['scope', { grant_type: TOKEN_EXCHANGE_GRANT, audience: AUDIENCE, scope: 'admin' }, 'invalid_scope'],
    ['resource', { grant_type: TOKEN_EXCHANGE_GRANT, audience: AUDIENCE, resource: 'https://ledger' }, 'invalid_target'],
    ['unknown requested_token_type', { grant_type: TOKEN_EXCHANGE_GRANT, audience: AUDIENCE, requested_token_type: 'urn:ietf:params:oauth:token-type:saml2' }, 'invalid_request'],
  ];
  for (const [name, form, error] of refusals) {
    it(`refuses ${name} with ${error}`, async () => {
      const r = await exchange(form);
      assert.equal(r.status, 400);
      assert.equal((r.body as { error: string }).error, error);
      assert.equal(typeof (r.body as { error_description: string }).error_description, 'string');
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.equal(t.stats().mint.signed, 0, 'nothing was signed');
    });
  }

  it('answers 503 temporarily_unavailable when no key can sign', async () => {
    await t.close();
    const r = await exchange({ grant_type: TOKEN_EXCHANGE_GRANT, audience: AUDIENCE });
    assert.equal(r.status, 503);
    assert.equal((r.body as { error: string }).error, 'temporarily_unavailable');
  });
});
