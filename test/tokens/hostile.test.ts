// The hostile-token corpus against Gatehouse's verifier and the SDK's: each token is refused
// with its own code (status 401), none crashes, and the valid controls pass.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GatehouseError } from '../../src/errors.js';
import { text } from '../../src/store/index.js';
import { createVerifier, TokenVerificationError, type TokenVerifier } from '../../src/sdk/index.js';
import { openPrivateKey, RETIRED_GRACE_MS, SIGNING_KEY_PREFIX, SIGNING_POINTER_KEY, TOKEN_LIMITS, type StoredSigningKey, type TokenService } from '../../src/tokens/index.js';
import { HOSTILE_CASES, VALID_CASES, type CaseOptions, type CorpusContext, type CorpusKey } from './corpus.js';
import { AUDIENCE, ISSUER, harness, type Harness } from './helpers.js';

async function loadKey(h: Harness, kid: string): Promise<CorpusKey & { record: StoredSigningKey }> {
  const kv = await h.store.get(SIGNING_KEY_PREFIX + kid);
  assert.ok(kv !== undefined);
  const record = JSON.parse(text(kv.value)) as StoredSigningKey;
  return { kid, record, privateKey: openPrivateKey(h.kek, kid, record.sealedPrivateKey) };
}

async function currentKid(h: Harness): Promise<string> {
  return (JSON.parse(text((await h.store.get(SIGNING_POINTER_KEY))!.value)) as { kid: string }).kid;
}

/** A service whose first key has been rotated out and is past its grace, and the corpus context for it. */
async function setUp(): Promise<{ h: Harness; t: TokenService; ctx: CorpusContext }> {
  const h = await harness();
  const t = await h.open();
  const retired = await loadKey(h, await currentKid(h));
  await h.advance(TOKEN_LIMITS.rotateAfterMs - TOKEN_LIMITS.prepublishMs);
  await h.advance(TOKEN_LIMITS.prepublishMs);
  await h.advance(RETIRED_GRACE_MS + 1000);
  const current = await loadKey(h, await currentKid(h));
  assert.notEqual(current.kid, retired.kid);
  assert.ok(!t.jwks().keys.some((k) => k.kid === retired.kid), 'the retired key is unpublished');
  const ctx: CorpusContext = {
    now: h.clock.now(),
    issuer: ISSUER,
    audience: AUDIENCE,
    namespace: 'payments',
    key: { kid: current.kid, privateKey: current.privateKey, publicKey: createPublicKey(current.privateKey) },
    retired: { kid: retired.kid, privateKey: retired.privateKey },
    certThumbprint: randomBytes(32).toString('base64url'),
  };
  return { h, t, ctx };
}

function serverOptions(ctx: CorpusContext, o: CaseOptions = {}): { audience: string; namespace: string; certThumbprint?: string; requireBinding?: boolean } {
  return {
    audience: ctx.audience,
    namespace: ctx.namespace,
    ...(o.presentCertificate === false ? {} : { certThumbprint: ctx.certThumbprint }),
    ...(o.requireBinding === undefined ? {} : { requireBinding: o.requireBinding }),
  };
}

describe('hostile tokens: Gatehouse verifier', () => {
  let env: Awaited<ReturnType<typeof setUp>>;
  before(async () => {
    env = await setUp();
  });
  after(async () => env.h.close());

  for (const c of HOSTILE_CASES) {
    it(`${c.name} -> ${c.code}`, async () => {
      const token = c.token(env.ctx);
      await assert.rejects(env.t.verify(token, serverOptions(env.ctx, c.options)), (err: unknown) => {
        assert.ok(err instanceof GatehouseError, `not a GatehouseError: ${String(err)}`);
        assert.equal(err.code, c.code);
        assert.equal(err.status, 401);
        assert.ok(!err.message.includes(token.slice(0, 40)) || token.length < 40, 'the message does not echo the token');
        return true;
      });
    });
  }

  for (const c of VALID_CASES) {
    it(`accepts: ${c.name}`, async () => {
      const { claims } = await env.t.verify(c.token(env.ctx), serverOptions(env.ctx, c.options));
      assert.equal(claims.aud, AUDIENCE);
    });
  }

  it('refuses every case again when cached verifications exist (cache never short-circuits a different token)', async () => {
    for (const c of HOSTILE_CASES) {
      await assert.rejects(env.t.verify(c.token(env.ctx), serverOptions(env.ctx, c.options)), (err: unknown) => err instanceof GatehouseError && err.code === c.code);
    }
  });

  it('refuses non-string input without crashing', async () => {
    for (const bad of [undefined, null, 42, {}, ['a.b.c']]) {
      await assert.rejects(env.t.verify(bad as string, serverOptions(env.ctx)), (err: unknown) => err instanceof GatehouseError && err.code === 'ERR_TOKEN_INVALID');
    }
  });
});

describe('hostile tokens: SDK verifier', () => {
  let env: Awaited<ReturnType<typeof setUp>>;
  let server: http.Server;
  let jwksUrl: string;
  const verifiers = new Map<string, TokenVerifier>();
  const verifierFor = (o: CaseOptions = {}): TokenVerifier => {
    const key = String(o.requireBinding === true);
    let v = verifiers.get(key);
    if (v === undefined) {
      v = createVerifier({ jwksUrl, issuer: ISSUER, audience: AUDIENCE, namespace: env.ctx.namespace, requireBinding: o.requireBinding === true, now: () => env.h.clock.now() });
      verifiers.set(key, v);
    }
    return v;
  };
  const call = (ctx: CorpusContext, o: CaseOptions = {}): { certThumbprint?: string } => (o.presentCertificate === false ? {} : { certThumbprint: ctx.certThumbprint });

  before(async () => {
    env = await setUp();
    server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': env.t.jwksCacheControl });
      res.end(JSON.stringify(env.t.jwks()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await env.h.close();
  });

  for (const c of HOSTILE_CASES) {
    it(`${c.name} -> ${c.code}`, async () => {
      await assert.rejects(verifierFor(c.options).verify(c.token(env.ctx), call(env.ctx, c.options)), (err: unknown) => {
        assert.ok(err instanceof TokenVerificationError, `not a TokenVerificationError: ${String(err)}`);
        assert.equal(err.code, c.code);
        assert.equal(err.status, 401);
        return true;
      });
    });
  }

  for (const c of VALID_CASES) {
    it(`accepts: ${c.name}`, async () => {
      const claims = await verifierFor(c.options).verify(c.token(env.ctx), call(env.ctx, c.options));
      assert.equal(claims.aud, AUDIENCE);
    });
  }

  it('unknown kids did not turn into a flood of JWKS fetches', () => {
    for (const v of verifiers.values()) assert.ok(v.jwksFetches <= 2, `fetched ${v.jwksFetches} times`);
  });
});
