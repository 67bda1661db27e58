import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSecretKey, randomBytes } from 'node:crypto';
import { GatehouseError, isGatehouseError } from '../../src/errors.js';
import { SEAL_AAD, openSealed, seal } from '../../src/lib/seal.js';

const refuse = (why: string, cause?: unknown): GatehouseError => new GatehouseError('ERR_TOTP_SEED_UNSEALABLE', why, cause === undefined ? {} : { cause });
const refused = (e: unknown): boolean => isGatehouseError(e, 'ERR_TOTP_SEED_UNSEALABLE');

describe('seal', () => {
  const kek = createSecretKey(randomBytes(32));
  const aad = SEAL_AAD.totpSeed('T-1');

  it('opens what it sealed, with a fresh nonce each time', () => {
    const plain = Buffer.from('the seed');
    const a = seal(kek, aad, plain);
    const b = seal(kek, aad, plain);
    assert.notEqual(a, b);
    assert.match(a, /^v1\.[A-Za-z0-9_-]+$/);
    assert.deepEqual(openSealed(kek, aad, a, refuse), plain);
  });

  it('refuses another AAD, another KEK, any changed byte and unknown versions, in the caller\'s code', () => {
    const sealed = seal(kek, aad, Buffer.from('x'));
    assert.throws(() => openSealed(kek, SEAL_AAD.totpSeed('T-2'), sealed, refuse), refused);
    assert.throws(() => openSealed(kek, SEAL_AAD.signingKey('T-1'), sealed, refuse), refused);
    assert.throws(() => openSealed(createSecretKey(randomBytes(32)), aad, sealed, refuse), refused);
    const body = Buffer.from(sealed.slice(3), 'base64url');
    for (let i = 0; i < body.length; i++) {
      const bent = Buffer.from(body);
      bent[i]! ^= 1;
      assert.throws(() => openSealed(kek, aad, `v1.${bent.toString('base64url')}`, refuse), refused, `byte ${i}`);
    }
    for (const bad of ['v2.AAAA', 'v1.AAAA', '', 'nope']) assert.throws(() => openSealed(kek, aad, bad, refuse), refused, bad);
  });

  it('needs a 32-byte secret KEK', () => {
    assert.throws(() => seal(createSecretKey(randomBytes(16)), aad, Buffer.from('x')), (e: unknown) => isGatehouseError(e, 'ERR_TOKEN_KEK_INVALID'));
  });
});
