import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import tls from 'node:tls';
import { ManualClock, type Clock, type TimerHandle } from '../../src/lib/clock.js';
import { initCa, startServerCertificateManager, type CertificateAuthority, type ServerCredentials } from '../../src/pki/index.js';
import { rejectsWith, tempDir } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const HOUR = 3_600_000;

function nextRenewal(m: { onRenew(fn: (c: ServerCredentials) => void): () => void }): Promise<ServerCredentials> {
  return new Promise((resolve) => {
    const off = m.onRenew((c) => {
      off();
      resolve(c);
    });
  });
}

describe('server certificate manager', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ca: CertificateAuthority;

  before(async () => {
    tmp = await tempDir('scm');
    ca = await initCa({ dir: path.join(tmp.dir, 'certs'), trustDomain: 'example.org', clock: new ManualClock(T0), validityDays: 10 });
  });
  after(() => tmp.cleanup());

  it('issues at start and renews at 2/3 of the lifetime, with no sleeping', async () => {
    const clock = new ManualClock(T0);
    const m = await startServerCertificateManager({ ca, hosts: ['127.0.0.1', 'localhost'], clock });
    try {
      const first = m.current();
      assert.equal(first.notAfter.getTime(), T0 + 24 * HOUR);
      assert.match(new X509Certificate(first.cert).subjectAltName ?? '', /^IP Address:127\.0\.0\.1, DNS:localhost, URI:spiffe:\/\/example\.org\/ns\/gatehouse\/sa\/gateway$/);
      // the pair is usable as a TLS secure context
      tls.createSecureContext({ cert: first.cert, key: first.key });

      let renewed = false;
      const off = m.onRenew(() => { renewed = true; });
      clock.advance(16 * HOUR - 1);
      await new Promise((r) => setImmediate(r));
      assert.equal(renewed, false, 'renewed before 2/3 of the lifetime');
      off();

      const pending = nextRenewal(m);
      clock.advance(1);
      const second = await pending;
      assert.notEqual(second.serial, first.serial);
      assert.equal(m.current().serial, second.serial);
      assert.equal(second.notBefore.getTime(), T0 + 16 * HOUR - 60_000);
      assert.equal(second.notAfter.getTime(), T0 + 40 * HOUR);

      // and again, 16 h after the second was issued
      const third = nextRenewal(m);
      clock.advance(16 * HOUR);
      assert.equal((await third).notAfter.getTime(), T0 + 56 * HOUR);
    } finally {
      m.close();
    }
  });

  it('honours renewBeforeMs and renews within what the CA has left', async () => {
    // 2 h before the CA expires, a 24 h certificate is cut to 2 h and renewed after 2/3 of that.
    const clock = new ManualClock(ca.notAfter.getTime() - 2 * HOUR);
    const m = await startServerCertificateManager({ ca, hosts: ['localhost'], clock, renewBeforeMs: 6 * HOUR });
    try {
      assert.equal(m.current().notAfter.getTime(), ca.notAfter.getTime());
      const pending = nextRenewal(m);
      clock.advance((2 * HOUR * 2) / 3);
      await pending;
    } finally {
      m.close();
    }
    const clock2 = new ManualClock(T0);
    const m2 = await startServerCertificateManager({ ca, hosts: ['localhost'], clock: clock2, renewBeforeMs: HOUR });
    try {
      let renewed = false;
      m2.onRenew(() => { renewed = true; });
      clock2.advance(23 * HOUR - 1);
      await new Promise((r) => setImmediate(r));
      assert.equal(renewed, false);
      const pending = nextRenewal(m2);
      clock2.advance(1);
      await pending;
    } finally {
      m2.close();
    }
  });

  it('keeps the current certificate when a renewal fails, reports it, and retries', async () => {
    // A clock that lets the test make issuing fail: past the CA's end, issuing is refused.
    const manual = new ManualClock(ca.notAfter.getTime() - 3 * HOUR);
    let offset = 0;
    const clock: Clock = { now: () => manual.now() + offset, setTimer: (fn: () => void, ms: number): TimerHandle => manual.setTimer(fn, ms) };
    const errors: Error[] = [];
    let failed!: () => void;
    const sawError = new Promise<void>((r) => { failed = r; });
    const m = await startServerCertificateManager({ ca, hosts: ['localhost'], clock, onError: (e) => { errors.push(e); failed(); } });
    try {
      const first = m.current();
      offset = 10 * HOUR; // issuing now happens "after" the CA expired
      manual.advance(2 * HOUR);
      await sawError;
      assert.equal((errors[0] as { code?: string }).code, 'ERR_PKI_CA_EXPIRED');
      assert.equal(m.current().serial, first.serial);
      // the retry is armed: once issuing works again, the next timer renews
      offset = 0;
      const pending = nextRenewal(m);
      manual.advance(60_000);
      assert.notEqual((await pending).serial, first.serial);
    } finally {
      m.close();
    }
  });

  it('close() stops renewals; a bad renewBeforeMs is refused', async () => {
    const clock = new ManualClock(T0);
    const m = await startServerCertificateManager({ ca, hosts: ['localhost'], clock });
    let renewed = false;
    m.onRenew(() => { renewed = true; });
    m.close();
    clock.advance(48 * HOUR);
    await new Promise((r) => setImmediate(r));
    assert.equal(renewed, false);
    await rejectsWith(() => startServerCertificateManager({ ca, hosts: ['localhost'], clock, renewBeforeMs: 24 * HOUR }), 'ERR_PKI_BAD_TTL');
    await rejectsWith(() => startServerCertificateManager({ ca, hosts: ['localhost'], clock, renewBeforeMs: 0 }), 'ERR_PKI_BAD_TTL');
  });
});
