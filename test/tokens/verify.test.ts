import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isGatehouseError, type ErrorCode } from '../../src/errors.js';
import { initCa, issueCertificate } from '../../src/pki/index.js';
import { certThumbprint, type MintInput, type TokenClaims, type TokenService } from '../../src/tokens/index.js';
import { AUDIENCE, CALLER, harness, type Harness } from './helpers.js';

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => isGatehouseError(err, code) || assert.fail(`expected ${code}, got ${String((err as { code?: string }).code ?? err)}`));
}

describe('certThumbprint', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-thumb-'));
  let certPem = '';
  before(async () => {
    const ca = await initCa({ dir, trustDomain: 'gatehouse.test' });
    certPem = (await issueCertificate(ca, { namespace: 'shop', service: 'web' })).certPem;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is base64url SHA-256 of the DER, whatever form the certificate comes in', () => {
    const x = new X509Certificate(certPem);
    const t = certThumbprint(certPem);
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(certThumbprint(x.raw), t);
    assert.equal(certThumbprint(x), t);
    assert.equal(certThumbprint({ raw: x.raw }), t);
  });

  it('refuses what is not a certificate', () => {
    for (const bad of ['not pem', Buffer.from('nope'), new Uint8Array(0)]) {
      assert.throws(() => certThumbprint(bad), (err: unknown) => isGatehouseError(err, 'ERR_BAD_REQUEST'));
    }
  });
});

describe('verify', () => {
  let h: Harness;
  let t: TokenService;
  const revoked = new Set<string>();
  const THUMB = 'z'.repeat(43);
  const input: MintInput = { subject: CALLER, audience: AUDIENCE, namespace: 'payments', roles: ['reader'], certThumbprint: THUMB };
  const opts = { audience: AUDIENCE, certThumbprint: THUMB, namespace: 'payments' };

  beforeEach(async () => {
    h = await harness();
    revoked.clear();
    t = await h.open({ isRevoked: (c: TokenClaims) => revoked.has(`sub:${c.sub}`) || revoked.has(`jti:${c.jti}`) });
  });
  afterEach(async () => h.close());

  it('returns typed claims and caches the verification', async () => {
    const m = await t.mint(input);
    const first = await t.verify(m.token, opts);
    assert.equal(first.cached, false);
    assert.equal(first.kid, m.kid);
    assert.equal(first.claims.sub, CALLER);
    assert.deepEqual(first.claims.cnf, { 'x5t#S256': THUMB });
    const second = await t.verify(m.token, opts);
    assert.equal(second.cached, true);
    assert.deepEqual(second.claims, first.claims);
    assert.deepEqual(t.stats().verify, { verified: 1, cacheHits: 1, refused: 0, cacheSize: 1 });
  });

  it('a cache hit still checks audience, namespace and binding for this caller', async () => {
    const m = await t.mint(input);
    await t.verify(m.token, opts);
    await rejectsWith(t.verify(m.token, { ...opts, audience: 'spiffe://gatehouse.test/ns/payments/sa/other' }), 'ERR_TOKEN_AUDIENCE');
    await rejectsWith(t.verify(m.token, { ...opts, namespace: 'other' }), 'ERR_TOKEN_NAMESPACE');
    await rejectsWith(t.verify(m.token, { ...opts, certThumbprint: 'y'.repeat(43) }), 'ERR_TOKEN_BINDING');
    await rejectsWith(t.verify(m.token, { audience: AUDIENCE }), 'ERR_TOKEN_BINDING');
  });

  it('a cached token stops verifying when it expires (plus skew)', async () => {
    const m = await t.mint(input);
    await t.verify(m.token, opts);
    await h.advance(300_000 + 29_000);
    assert.equal((await t.verify(m.token, opts)).cached, true);
    await h.advance(1_000);
    await rejectsWith(t.verify(m.token, opts), 'ERR_TOKEN_EXPIRED');
  });

  it('a revoked subject is not served from the cache, and its next token is a new one', async () => {
    const m = await t.mint(input);
    await t.verify(m.token, opts);
    // What revocation does: record it, then forget the subject.
    revoked.add(`sub:${CALLER}`);
    t.forgetSubject(CALLER);
    assert.equal(t.stats().verify.cacheSize, 0);
    await rejectsWith(t.verify(m.token, opts), 'ERR_TOKEN_REVOKED');
    const next = await t.mint(input);
    assert.notEqual(next.token, m.token, 'the minted-token cache was emptied too');
  });

  it('forgetToken drops one verification; a revoked jti is refused', async () => {
    const a = await t.mint(input);
    const b = await t.mint({ ...input, roles: ['writer'] });
    await t.verify(a.token, opts);
    await t.verify(b.token, opts);
    revoked.add(`jti:${a.jti}`);
    t.forgetToken(a.jti);
    assert.equal(t.stats().verify.cacheSize, 1);
    await rejectsWith(t.verify(a.token, opts), 'ERR_TOKEN_REVOKED');
    assert.equal((await t.verify(b.token, opts)).cached, true);
  });

  it('requireBinding needs a certificate, and refuses an unbound token', async () => {
    const bound = await t.mint(input);
    const { certThumbprint: _drop, ...unboundInput } = input;
    const unbound = await t.mint(unboundInput);
    assert.equal((await t.verify(bound.token, { ...opts, requireBinding: true })).claims.cnf?.['x5t#S256'], THUMB);
    await rejectsWith(t.verify(unbound.token, { ...opts, requireBinding: true }), 'ERR_TOKEN_BINDING');
    await rejectsWith(t.verify(bound.token, { audience: AUDIENCE, requireBinding: true }), 'ERR_TOKEN_BINDING');
    assert.equal((await t.verify(unbound.token, { audience: AUDIENCE })).claims.cnf, undefined);
  });

  it('a token of another issuer (another gateway, same store) is refused', async () => {
    const other = await h.open({ issuer: 'https://other.test' });
    const m = await other.mint(input);
    await rejectsWith(t.verify(m.token, opts), 'ERR_TOKEN_ISSUER');
  });

  it('the JWKS publishes public keys only, with a Cache-Control below the prepublish time', async () => {
    const jwks = t.jwks();
    assert.equal(jwks.keys.length, 1);
    assert.deepEqual(Object.keys(jwks.keys[0]!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    assert.equal(t.jwksCacheControl, 'public, max-age=300');
    await t.rotate();
    assert.equal(t.jwks().keys.length, 2, 'a new key is published before it signs');
  });

  it('after close, verifying fails with ERR_TOKEN_UNAVAILABLE', async () => {
    const m = await t.mint(input);
    await t.close();
    await rejectsWith(t.verify(m.token, opts), 'ERR_TOKEN_UNAVAILABLE');
  });
});
