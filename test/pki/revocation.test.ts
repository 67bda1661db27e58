// Revocation in a real embedded store: records, leases, the live list every replica keeps, the CRL.
import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import forge from 'node-forge';
import { ManualClock } from '../../src/lib/clock.js';
import { openStore, type Store, type WatchOptions } from '../../src/store/index.js';
import {
  CertRevocationList, crlPublisher, initCa, issueCertificate, lookupIssued, recordIssued, revokeCertificate, revokedCertKey,
  REVOCATION_GRACE_MS, type CertificateAuthority, type CertRevocation,
} from '../../src/pki/index.js';
import { rejectsWith, tempDir } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const HOUR = 3_600_000;
const S1 = '4aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const S2 = '5bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const S3 = '6ccccccccccccccccccccccccccccccc';

/** Resolves with the next value an onX(listener) subscription delivers. */
function next<T>(subscribe: (fn: (v: T) => void) => () => void): Promise<T> {
  return new Promise((resolve) => {
    const off = subscribe((v) => {
      off();
      resolve(v);
    });
  });
}

/** The serials a CRL PEM lists. */
function crlSerials(pem: string): string[] {
  const crl = forge.asn1.fromDer(forge.pem.decode(pem)[0]!.body);
  const fields = (crl.value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[];
  // version, signature, issuer, thisUpdate, nextUpdate, then revokedCertificates when present
  const list = fields[5]!;
  if (list.tagClass !== forge.asn1.Class.UNIVERSAL) return [];
  return (list.value as forge.asn1.Asn1[]).map((e) => forge.util.bytesToHex((e.value as forge.asn1.Asn1[])[0]!.value as string).replace(/^00/, ''));
}

describe('certificate revocation (embedded store)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ca: CertificateAuthority;
  let store: Store;
  let clock: ManualClock;
  let n = 0;

  before(async () => {
    tmp = await tempDir('revoke');
    ca = await initCa({ dir: path.join(tmp.dir, 'certs'), trustDomain: 'example.org', clock: new ManualClock(T0 - HOUR), validityDays: 30 });
  });
  after(() => tmp.cleanup());
  beforeEach(async () => {
    clock = new ManualClock(T0);
    store = await openStore({ kind: 'embedded', path: path.join(tmp.dir, `store-${n++}`), clock });
  });
  afterEach(() => store.close());

  it('records {serial, revokedAt, reason, notAfter} under a lease that ends a grace period after notAfter', async () => {
    const notAfter = new Date(T0 + 2 * HOUR);
    const r = await revokeCertificate(store, { serial: S1.toUpperCase(), notAfter, reason: 'keyCompromise', clock });
    assert.equal(r.created, true);
    assert.deepEqual(r.record, { serial: S1, revokedAt: new Date(T0).toISOString(), reason: 'keyCompromise', notAfter: notAfter.toISOString() });
    assert.equal(r.expiresAt.getTime(), notAfter.getTime() + REVOCATION_GRACE_MS);
    const kv = await store.get(revokedCertKey(S1));
    assert.ok(kv?.lease !== undefined && kv.lease !== '0');
    assert.deepEqual(JSON.parse(Buffer.from(kv.value).toString()), r.record);
  });

  it('is idempotent: the first record stands', async () => {
    const first = await revokeCertificate(store, { serial: S1, notAfter: new Date(T0 + HOUR), clock });
    clock.advance(60_000);
    const again = await revokeCertificate(store, { serial: `00:${S1.match(/../g)!.join(':')}`, notAfter: new Date(T0 + HOUR), reason: 'superseded', clock });
    assert.equal(again.created, false);
    assert.deepEqual(again.record, first.record);
    const r = await store.range({ prefix: '/gatehouse/revoked/cert/' });
    assert.equal(r.count, 1);
  });

  it('still records an already-expired certificate, for the grace period only', async () => {
    const r = await revokeCertificate(store, { serial: S2, notAfter: new Date(T0 - HOUR), clock });
    assert.equal(r.created, true);
    assert.equal(r.expiresAt.getTime(), T0 + 1000); // at least one second of lease
    const shortly = await revokeCertificate(store, { serial: S3, notAfter: new Date(T0 - 60_000), clock });
    assert.equal(shortly.expiresAt.getTime(), T0 - 60_000 + REVOCATION_GRACE_MS);
  });

  it('refuses a malformed serial, reason or notAfter', async () => {
    await rejectsWith(() => revokeCertificate(store, { serial: 'not-hex', notAfter: new Date(T0), clock }), 'ERR_CERT_REVOCATION_INVALID');
    await rejectsWith(() => revokeCertificate(store, { serial: '00', notAfter: new Date(T0), clock }), 'ERR_CERT_REVOCATION_INVALID');
    await rejectsWith(() => revokeCertificate(store, { serial: 'ab'.repeat(21), notAfter: new Date(T0), clock }), 'ERR_CERT_REVOCATION_INVALID');
    await rejectsWith(() => revokeCertificate(store, { serial: '../x', notAfter: new Date(T0), clock }), 'ERR_CERT_REVOCATION_INVALID');
    await rejectsWith(() => revokeCertificate(store, { serial: S1, notAfter: new Date(T0), clock, reason: 'because' as 'superseded' }), 'ERR_CERT_REVOCATION_INVALID');
    await rejectsWith(() => revokeCertificate(store, { serial: S1, notAfter: new Date(Number.NaN), clock }), 'ERR_CERT_REVOCATION_INVALID');
    assert.equal((await store.range({ prefix: '/gatehouse/revoked/' })).count, 0);
  });

  it('the list loads what is there, sees new revocations at once, and drops them when their lease ends', async () => {
    await revokeCertificate(store, { serial: S1, notAfter: new Date(T0 + HOUR), clock });
    const list = await CertRevocationList.open(store, { clock });
    const other = await CertRevocationList.open(store, { clock }); // a second replica's view
    try {
      assert.ok(list.isRevoked(S1));
      assert.ok(list.isRevoked(S1.toUpperCase()), "Node's X509Certificate.serialNumber spelling");
      assert.ok(!list.isRevoked(S2));
      assert.ok(!list.isRevoked('garbage'));
      assert.equal(list.size, 1);

      const seen = next<CertRevocation>((fn) => list.onRevoked(fn));
      const seenByOther = next<CertRevocation>((fn) => other.onRevoked(fn));
      await revokeCertificate(store, { serial: S2, notAfter: new Date(T0 + 3 * HOUR), reason: 'keyCompromise', clock });
      assert.equal((await seen).serial, S2);
      assert.equal((await seenByOther).reason, 'keyCompromise');
      assert.ok(list.isRevoked(S2) && other.isRevoked(S2));

      // S1's certificate expires (plus grace): the store ends the lease and the list forgets it
      const changed = next<void>((fn) => list.onChange(fn));
      clock.advance(HOUR + REVOCATION_GRACE_MS);
      await changed;
      assert.ok(!list.isRevoked(S1));
      assert.ok(list.isRevoked(S2));
      assert.equal(list.size, 1);
      assert.ok(list.revision > 0);
    } finally {
      await list.close();
      await other.close();
    }
  });

  it('fails closed on an unreadable record, and ignores keys that name no serial', async () => {
    await store.put(revokedCertKey(S3), '{not json');
    await store.put('/gatehouse/revoked/cert/zz-not-a-serial', '{}');
    const errors: Error[] = [];
    const list = await CertRevocationList.open(store, { clock, onError: (e) => errors.push(e) });
    try {
      assert.ok(list.isRevoked(S3));
      assert.equal(list.size, 1);
      assert.equal(errors.length, 2);
      assert.ok(errors.every((e) => (e as { code?: string }).code === 'ERR_CERT_REVOCATION_INVALID'));
    } finally {
      await list.close();
    }
  });

  it('reloads after losing its watch, picking up what it missed', async () => {
    // A store whose watches the test can break, as a lost etcd connection or compaction would.
    const breakers: (() => Promise<void>)[] = [];
    const watch: Store['watch'] = async (selector, handler, options: WatchOptions = {}) => {
      const w = await store.watch(selector, handler, options);
      breakers.push(async () => {
        await w.close();
        options.onError?.(new Error('watch lost'));
      });
      return w;
    };
    const flaky = new Proxy(store, {
      get(target, prop) {
        if (prop === 'watch') return watch;
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const errors: Error[] = [];
    const list = await CertRevocationList.open(flaky, { clock, onError: (e) => errors.push(e) });
    try {
      await breakers[0]!();
      assert.equal(errors[0]?.message, 'watch lost');
      await revokeCertificate(store, { serial: S1, notAfter: new Date(T0 + HOUR), clock });
      assert.ok(!list.isRevoked(S1), 'the list cannot know yet: its watch is gone');
      const seen = next<CertRevocation>((fn) => list.onRevoked(fn));
      clock.advance(500); // the first retry
      assert.equal((await seen).serial, S1);
      assert.ok(list.isRevoked(S1));
      // and the new watch delivers again
      const seen2 = next<CertRevocation>((fn) => list.onRevoked(fn));
      await revokeCertificate(store, { serial: S2, notAfter: new Date(T0 + HOUR), clock });
      assert.equal((await seen2).serial, S2);
    } finally {
      await list.close();
    }
  });

  it('the CRL publisher caches the PEM and rebuilds it when the set changes or half its validity has passed', async () => {
    const list = await CertRevocationList.open(store, { clock });
    const crl = crlPublisher({ ca, list, clock, validityMs: 2 * HOUR });
    try {
      const empty = crl.pem();
      assert.deepEqual(crlSerials(empty), []);
      assert.equal(crl.pem(), empty, 'cached');
      const changed = next<void>((fn) => list.onChange(fn));
      await revokeCertificate(store, { serial: S1, notAfter: new Date(T0 + 4 * HOUR), clock });
      await changed;
      const one = crl.pem();
      assert.deepEqual(crlSerials(one), [S1]);
      clock.advance(HOUR - 1);
      assert.equal(crl.pem(), one);
      clock.advance(1);
      const refreshed = crl.pem();
      assert.notEqual(refreshed, one);
      assert.deepEqual(crlSerials(refreshed), [S1]);
    } finally {
      crl.close();
      await list.close();
    }
  });

  it('the issued index records a certificate until it expires (plus grace)', async () => {
    const issued = await issueCertificate(ca, { namespace: 'payments', service: 'api', clock, ttlMs: HOUR });
    await recordIssued(store, issued, { clock });
    const rec = await lookupIssued(store, issued.serial.toUpperCase());
    assert.deepEqual(rec, {
      serial: issued.serial,
      spiffeId: 'spiffe://example.org/ns/payments/sa/api',
      notBefore: issued.notBefore.toISOString(),
      notAfter: issued.notAfter.toISOString(),
      issuedAt: new Date(T0).toISOString(),
    });
    assert.equal(await lookupIssued(store, S1), undefined);
    await rejectsWith(() => lookupIssued(store, 'nope'), 'ERR_CERT_REVOCATION_INVALID');
    const gone = new Promise<void>((resolve) => {
      void store.watch({ key: `/gatehouse/ca/issued/${issued.serial}` }, (e) => { if (e.type === 'delete') resolve(); });
    });
    clock.advance(HOUR + REVOCATION_GRACE_MS);
    await gone;
    assert.equal(await lookupIssued(store, issued.serial), undefined);
  });
});
