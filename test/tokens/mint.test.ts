import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { isGatehouseError, type ErrorCode } from '../../src/errors.js';
import type { MintInput, TokenService } from '../../src/tokens/index.js';
import { AUDIENCE, CALLER, harness, START, type Harness } from './helpers.js';

const THUMB = 'q'.repeat(43);
const base: MintInput = { subject: CALLER, audience: AUDIENCE, namespace: 'payments', roles: ['writer', 'reader', 'reader'], certThumbprint: THUMB };

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(p, (err: unknown) => isGatehouseError(err, code) || assert.fail(`expected ${code}, got ${String((err as { code?: string }).code ?? err)}`));
}

describe('mint', () => {
  let h: Harness;
  let t: TokenService;
  let counter = 0;
  beforeEach(async () => {
    h = await harness();
    counter = 0;
    // Injected randomness: jti is predictable in tests.
    t = await h.open({ random: (n) => new Uint8Array(n).fill(++counter) });
  });
  afterEach(async () => h.close());

  it('mints the documented claims, header and lifetime', async () => {
    const m = await t.mint({ ...base, amr: ['user', 'hwk'], acr: 'aal3', sid: 'sess-1' });
    const header = decodeProtectedHeader(m.token);
    assert.deepEqual(header, { alg: 'EdDSA', typ: 'at+jwt', kid: m.kid });
    const iat = START / 1000;
    assert.deepEqual(decodeJwt(m.token), {
      iss: 'https://gatehouse.test',
      sub: CALLER,
      aud: AUDIENCE,
      ns: 'payments',
      roles: ['reader', 'writer'],
      amr: ['hwk', 'user'],
      acr: 'aal3',
      sid: 'sess-1',
      cnf: { 'x5t#S256': THUMB },
      jti: Buffer.alloc(16, 1).toString('base64url'),
      iat,
      nbf: iat,
      exp: iat + 300,
    });
    assert.equal(m.expiresIn, 300);
    assert.equal(m.expiresAt, START + 300_000);
    assert.equal(m.cached, false);
  });

  it('takes a lifetime up to 900 s and refuses more', async () => {
    const m = await t.mint({ ...base, ttlSeconds: 900 });
    const c = decodeJwt(m.token);
    assert.equal(c.exp! - c.iat!, 900);
    for (const ttl of [901, 0, -1, 1.5, Number.NaN]) await rejectsWith(t.mint({ ...base, ttlSeconds: ttl }), 'ERR_TOKEN_BAD_TTL');
    await rejectsWith(h.open({ ttlSeconds: 3600 }), 'ERR_TOKEN_BAD_TTL');
  });

  it('refuses malformed input, naming the field', async () => {
    const cases: [Partial<MintInput> & Record<string, unknown>, string][] = [
      [{ subject: '' }, 'subject'],
      [{ audience: 'a\nb' }, 'audience'],
      [{ namespace: 'Payments' }, 'namespace'],
      [{ roles: 'admin' as unknown as string[] }, 'roles'],
      [{ roles: [''] }, 'roles'],
      [{ amr: [1 as unknown as string] }, 'amr'],
      [{ acr: '' }, 'acr'],
      [{ certThumbprint: 'short' }, 'certThumbprint'],
    ];
    for (const [patch, field] of cases) {
      await assert.rejects(t.mint({ ...base, ...patch }), (err: unknown) => isGatehouseError(err, 'ERR_TOKEN_MINT_INVALID') && err.details?.field === field);
    }
  });

  it('reuses a token until less than a third of its life is left', async () => {
    const first = await t.mint(base);
    const again = await t.mint({ ...base, roles: ['reader', 'writer'] });
    assert.equal(again.token, first.token, 'same roles in another order: same token');
    assert.equal(again.cached, true);
    await h.advance(199_000); // 101 s of 300 left: more than a third
    const stillOld = await t.mint(base);
    assert.equal(stillOld.token, first.token);
    assert.equal(stillOld.expiresIn, 101);
    await h.advance(1_000); // exactly a third left: renew
    const renewed = await t.mint(base);
    assert.notEqual(renewed.token, first.token);
    assert.equal(renewed.cached, false);
    assert.deepEqual(t.stats().mint, { signed: 2, cacheHits: 2, cacheSize: 1 });
  });

  it('mints separately per audience, certificate, roles, amr/acr/sid and ttl', async () => {
    const tokens = new Set<string>();
    for (const patch of [{}, { audience: `${AUDIENCE}2` }, { certThumbprint: 'r'.repeat(43) }, { roles: ['admin'] }, { amr: ['hwk'] }, { acr: 'aal2' }, { sid: 's2' }, { ttlSeconds: 60 }, { namespace: 'other' }]) {
      tokens.add((await t.mint({ ...base, ...patch })).token);
    }
    assert.equal(tokens.size, 9);
  });

  it('concurrent requests for the same token share one signature', async () => {
    const all = await Promise.all(Array.from({ length: 20 }, () => t.mint(base)));
    assert.equal(new Set(all.map((m) => m.token)).size, 1);
    assert.equal(t.stats().mint.signed, 1);
  });

  it('forgetSubject empties that subject at once, and only that subject', async () => {
    const { certThumbprint: _none, ...unbound } = base;
    const person: MintInput = { ...unbound, subject: 'user-7' };
    const a = await t.mint(base);
    const b = await t.mint(person);
    t.forgetSubject(CALLER);
    assert.notEqual((await t.mint(base)).token, a.token);
    assert.equal((await t.mint(person)).token, b.token);
  });

  it('a token being signed when its subject is forgotten is not cached', async () => {
    const pending = t.mint(base);
    t.forgetSubject(CALLER);
    const first = await pending;
    const next = await t.mint(base);
    assert.notEqual(next.token, first.token);
  });

  it('forgetToken drops one minted token by jti', async () => {
    const a = await t.mint(base);
    t.forgetToken(a.jti);
    assert.notEqual((await t.mint(base)).token, a.token);
  });

  it('keeps the cache bounded (least recently used goes first)', async () => {
    const small = await h.open({ cacheSize: 2 });
    const one = await small.mint({ ...base, subject: 'u1' });
    await small.mint({ ...base, subject: 'u2' });
    await small.mint({ ...base, subject: 'u3' });
    assert.equal(small.stats().mint.cacheSize, 2);
    assert.notEqual((await small.mint({ ...base, subject: 'u1' })).token, one.token);
  });

  it('after close, minting fails with ERR_TOKEN_UNAVAILABLE', async () => {
    await t.close();
    await rejectsWith(t.mint(base), 'ERR_TOKEN_UNAVAILABLE');
  });

  it('refuses an issuer that is not an http(s) URL', async () => {
    for (const issuer of ['gatehouse', 'ftp://x', 'https://x/?q=1', 'https://u:p@x']) await rejectsWith(h.open({ issuer }), 'ERR_CONFIG_INVALID');
  });
});
