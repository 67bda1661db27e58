import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSecretKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isGatehouseError, type ErrorCode } from '../../src/errors.js';
import { initCa } from '../../src/pki/index.js';
import { text } from '../../src/store/index.js';
import { loadKek, openPrivateKey, openTokenService, sealPrivateKey, SIGNING_KEY_PREFIX } from '../../src/tokens/index.js';
import { harness } from './helpers.js';

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<void> {
  await assert.rejects(async () => (typeof p === 'function' ? p() : p), (err: unknown) => isGatehouseError(err, code) || assert.fail(`expected ${code}, got ${String((err as { code?: string }).code ?? err)}`));
}

describe('loadKek', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-kek-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const good = randomBytes(32).toString('base64');

  it('reads GATEHOUSE_KEK first, as a 32-byte secret key that never prints its bytes', async () => {
    const kek = await loadKek({ env: { GATEHOUSE_KEK: `${good}\n` }, file: path.join(dir, 'absent') });
    assert.equal(kek.type, 'secret');
    assert.equal(kek.symmetricKeySize, 32);
    assert.ok(kek.export().equals(Buffer.from(good, 'base64')));
    assert.ok(!JSON.stringify(kek).includes(good.slice(0, 10)));
  });

  it('reads the file written by gatehouse ca init', async () => {
    const pki = path.join(dir, 'pki');
    await initCa({ dir: pki, trustDomain: 'gatehouse.test' });
    const kek = await loadKek({ env: {}, file: path.join(pki, 'kek') });
    assert.equal(kek.symmetricKeySize, 32);
  });

  it('refuses a KEK file readable by group or others', async () => {
    const file = path.join(dir, 'open-kek');
    writeFileSync(file, good, { mode: 0o644 });
    chmodSync(file, 0o644);
    await rejectsWith(loadKek({ env: {}, file }), 'ERR_TOKEN_KEK_PERMISSIONS');
    chmodSync(file, 0o640);
    await rejectsWith(loadKek({ env: {}, file }), 'ERR_TOKEN_KEK_PERMISSIONS');
    chmodSync(file, 0o600);
    assert.equal((await loadKek({ env: {}, file })).symmetricKeySize, 32);
  });

  it('refuses wrong lengths, non-base64, empty values and non-files, naming no secret', async () => {
    const short = randomBytes(16).toString('base64');
    await rejectsWith(loadKek({ env: { GATEHOUSE_KEK: short } }), 'ERR_TOKEN_KEK_INVALID');
    await rejectsWith(loadKek({ env: { GATEHOUSE_KEK: randomBytes(33).toString('base64') } }), 'ERR_TOKEN_KEK_INVALID');
    await rejectsWith(loadKek({ env: { GATEHOUSE_KEK: 'not base64 at all!' } }), 'ERR_TOKEN_KEK_INVALID');
    await rejectsWith(loadKek({ env: { GATEHOUSE_KEK: '' } }), 'ERR_TOKEN_KEK_INVALID');
    const sub = path.join(dir, 'a-dir');
    mkdirSync(sub, { mode: 0o700 });
    await rejectsWith(loadKek({ env: {}, file: sub }), 'ERR_TOKEN_KEK_INVALID');
    const err = await loadKek({ env: { GATEHOUSE_KEK: short } }).catch((e: unknown) => e as Error);
    assert.ok(!(err as Error).message.includes(short));
  });

  it('says when there is no KEK at all', async () => {
    await rejectsWith(loadKek({ env: {}, file: path.join(dir, 'nope') }), 'ERR_TOKEN_KEK_NOT_FOUND');
    await rejectsWith(loadKek({ env: {} }), 'ERR_TOKEN_KEK_NOT_FOUND');
  });
});

describe('sealPrivateKey / openPrivateKey', () => {
  const kek = createSecretKey(randomBytes(32));
  const { privateKey } = generateKeyPairSync('ed25519');

  it('round-trips, with a fresh nonce each time', () => {
    const a = sealPrivateKey(kek, 'kid-aaaaaaaaaaaaaaaa', privateKey);
    const b = sealPrivateKey(kek, 'kid-aaaaaaaaaaaaaaaa', privateKey);
    assert.notEqual(a, b);
    const opened = openPrivateKey(kek, 'kid-aaaaaaaaaaaaaaaa', a);
    assert.deepEqual(opened.export({ format: 'jwk' }), privateKey.export({ format: 'jwk' }));
  });

  it('cannot be opened under another kid, another KEK, or after any change', async () => {
    const sealed = sealPrivateKey(kek, 'kid-aaaaaaaaaaaaaaaa', privateKey);
    await rejectsWith(() => openPrivateKey(kek, 'kid-bbbbbbbbbbbbbbbb', sealed), 'ERR_TOKEN_KEY_UNSEALABLE');
    await rejectsWith(() => openPrivateKey(createSecretKey(randomBytes(32)), 'kid-aaaaaaaaaaaaaaaa', sealed), 'ERR_TOKEN_KEY_UNSEALABLE');
    const body = Buffer.from(sealed.slice(3), 'base64url');
    for (const at of [0, 12, body.length - 1]) {
      const bent = Buffer.from(body);
      bent[at]! ^= 1;
      await rejectsWith(() => openPrivateKey(kek, 'kid-aaaaaaaaaaaaaaaa', `v1.${bent.toString('base64url')}`), 'ERR_TOKEN_KEY_UNSEALABLE');
    }
    await rejectsWith(() => openPrivateKey(kek, 'kid-aaaaaaaaaaaaaaaa', 'v2.AAAA'), 'ERR_TOKEN_KEY_UNSEALABLE');
    await rejectsWith(() => openPrivateKey(kek, 'kid-aaaaaaaaaaaaaaaa', 'v1.AAAA'), 'ERR_TOKEN_KEY_UNSEALABLE');
  });

  it('leaves no private key material in the store', async () => {
    const h = await harness();
    try {
      await h.open();
      const r = await h.store.range({ prefix: SIGNING_KEY_PREFIX });
      assert.equal(r.kvs.length, 1);
      const stored = JSON.parse(text(r.kvs[0]!.value)) as Record<string, unknown>;
      assert.equal((stored.publicJwk as Record<string, unknown>).d, undefined);
      assert.match(String(stored.sealedPrivateKey), /^v1\./);
      // A replica with another KEK publishes the key but cannot sign with it.
      const errors: string[] = [];
      const foreign = await openTokenService({ store: h.store, clock: h.clock, kek: createSecretKey(randomBytes(32)), issuer: 'https://gatehouse.test', onError: (e) => errors.push(e.code) });
      try {
        assert.ok(errors.includes('ERR_TOKEN_KEY_UNSEALABLE'));
        assert.equal(foreign.jwks().keys.length, 1);
        await rejectsWith(foreign.mint({ subject: 'u1', audience: 'a', namespace: 'ns', roles: [] }), 'ERR_TOKEN_UNAVAILABLE');
      } finally {
        await foreign.close();
      }
    } finally {
      await h.close();
    }
  });
});
