import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../src/errors.js';
import { toBytes, type KeyValue } from '../../src/store/index.js';
import * as keys from '../../src/store/keys.js';

const kv = (key: string, value: string): KeyValue => ({ key: toBytes(key), value: toBytes(value), createRevision: 1, modRevision: 1, version: 1 });

describe('store/keys', () => {
  it('names every key under /gatehouse/ as DESIGN.md lays them out', () => {
    const k = keys.storeKeys;
    assert.equal(k.user('alice'), '/gatehouse/users/alice');
    assert.equal(k.credential('Y3JlZA'), '/gatehouse/webauthn/Y3JlZA');
    assert.equal(k.totp('alice'), '/gatehouse/totp/alice');
    assert.equal(k.session('ab12'), '/gatehouse/sessions/ab12');
    assert.equal(k.userSession('alice', 'ab12'), '/gatehouse/user-sessions/alice/ab12');
    assert.equal(k.revoked('service', 'spiffe://td/ns/a/sa/b'), '/gatehouse/revoked/service/spiffe%3A%2F%2Ftd%2Fns%2Fa%2Fsa%2Fb');
    assert.equal(k.revokedCert('0a'), '/gatehouse/revoked/cert/0a');
    assert.equal(k.signingKey('kid'), '/gatehouse/keys/signing/kid');
    assert.equal(k.auditKey('kid'), '/gatehouse/keys/audit/kid');
    assert.equal(k.policy('payments'), '/gatehouse/policy/payments');
    assert.equal(k.regulation('Alice/X'), '/gatehouse/regulation/alice%2Fx');
    assert.equal(keys.CHECKPOINT_PREFIX, '/gatehouse/audit-checkpoints/');
    // no prefix is a prefix of another (a range over one never reads the other's keys)
    const prefixes = Object.entries(keys).filter(([n, v]) => n.endsWith('_PREFIX') && typeof v === 'string' && n !== 'REVOKED_CERT_PREFIX').map(([, v]) => v as string);
    for (const a of prefixes) for (const b of prefixes) if (a !== b) assert.ok(!b.startsWith(a), `${a} is a prefix of ${b}`);
  });

  it('decodes records to a value or a coded error, never a throw', () => {
    const codec = keys.jsonCodec<{ n: number }>('counter', (v) => (typeof v.n === 'number' ? undefined : 'n is not a number'));
    assert.deepEqual(codec.decode(kv('/gatehouse/x', '{"n":1}')), { n: 1 });
    for (const bad of ['nope', '[]', 'null', '"s"', '{"n":"1"}']) {
      const r = codec.decode(kv('/gatehouse/x', bad));
      assert.ok(r instanceof GatehouseError && r.code === 'ERR_STORE_CORRUPT' && r.message.startsWith('/gatehouse/x: counter'), bad);
    }
    assert.throws(() => keys.decodeOrThrow(codec, kv('/gatehouse/x', 'nope')), (e: unknown) => e instanceof GatehouseError && e.code === 'ERR_STORE_CORRUPT');
    assert.equal(codec.encode({ n: 2 }), '{"n":2}');
  });

  it('shows a session key in messages by its hash\'s start only (the hash stands in for the cookie)', () => {
    const hash = 'ab'.repeat(32);
    const codec = keys.jsonCodec<object>('session', undefined, { describeKey: keys.describeSessionKey });
    const r = codec.decode(kv(keys.storeKeys.session(hash), 'nope'));
    assert.ok(r instanceof GatehouseError && r.code === 'ERR_STORE_CORRUPT');
    assert.equal(r.message, `/gatehouse/sessions/${hash.slice(0, 8)}…: session is not JSON`);
    const summary = keys.SESSION_SUMMARY.decode(kv(keys.storeKeys.session(hash), JSON.stringify({ kind: 'alias' })));
    assert.ok(summary instanceof GatehouseError && !summary.message.includes(hash));
  });

  it('reads a primary session summary and refuses aliases and junk', () => {
    const s = keys.SESSION_SUMMARY.decode(kv('/gatehouse/sessions/h', JSON.stringify({ kind: 'primary', sid: 's', userId: 'u', expiresAt: 5, lease: '7', roles: { ns: ['r'] } })));
    assert.deepEqual(s, { kind: 'primary', sid: 's', userId: 'u', roles: { ns: ['r'] }, createdAt: 0, lastSeen: 0, expiresAt: 5, ip: '', userAgent: '', lease: '7' });
    assert.ok(keys.SESSION_SUMMARY.decode(kv('/gatehouse/sessions/h', JSON.stringify({ kind: 'alias', primary: 'p' }))) instanceof GatehouseError);
    assert.ok(keys.SESSION_SUMMARY.decode(kv('/gatehouse/sessions/h', '{')) instanceof GatehouseError);
  });
});
