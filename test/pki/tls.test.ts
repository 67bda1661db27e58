// Real TLS handshakes (node:tls, i.e. OpenSSL) against what the CA issues.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { ManualClock, systemClock } from '../../src/lib/clock.js';
import {
  buildCrl, canonicalSerial, initCa, issueCertificate, issueServerCertificate, type CertificateAuthority, type IssuedCertificate,
} from '../../src/pki/index.js';
import { mtlsHandshake, tempDir } from './helpers.js';

const DAY = 86_400_000;

describe('mTLS handshakes with issued certificates', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ca: CertificateAuthority;
  let foreign: CertificateAuthority;
  let server: IssuedCertificate;

  before(async () => {
    tmp = await tempDir('tls');
    // Both CAs began 30 days ago, so certificates can be issued "in the past"; the same trust
    // domain and subject name make the foreign CA a convincing impostor.
    const past = new ManualClock(Date.now() - 30 * DAY);
    [ca, foreign] = await Promise.all([
      initCa({ dir: path.join(tmp.dir, 'ca'), trustDomain: 'example.org', clock: past }),
      initCa({ dir: path.join(tmp.dir, 'foreign'), trustDomain: 'example.org', clock: past }),
    ]);
    assert.equal(foreign.certificate.subject, ca.certificate.subject);
    server = await issueServerCertificate(ca, { hosts: ['127.0.0.1', 'localhost'] });
  });
  after(() => tmp.cleanup());

  const serverOptions = () => ({ cert: server.certPem, key: server.keyPem, ca: [ca.certPem] });
  const clientOf = (c: IssuedCertificate) => ({ cert: c.certPem, key: c.keyPem, ca: ca.certPem });

  it('accepts a certificate the CA issued, and the peer presents its SPIFFE ID and serial', async () => {
    const client = await issueCertificate(ca, { namespace: 'frontend', service: 'web' });
    const r = await mtlsHandshake(serverOptions(), clientOf(client));
    assert.ok(r.ok, r.ok ? '' : r.reason);
    assert.equal(r.peer.subjectaltname, 'URI:spiffe://example.org/ns/frontend/sa/web');
    assert.equal(canonicalSerial(r.peer.serialNumber), client.serial);
  });

  it("refuses a certificate from another CA (same name, same trust domain)", async () => {
    const impostor = await issueCertificate(foreign, { namespace: 'frontend', service: 'web' });
    const r = await mtlsHandshake(serverOptions(), clientOf(impostor));
    assert.deepEqual(r, { ok: false, reason: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('refuses an expired certificate', async () => {
    const expired = await issueCertificate(ca, { namespace: 'frontend', service: 'web', ttlMs: 3_600_000, clock: new ManualClock(Date.now() - 2 * DAY) });
    assert.ok(expired.notAfter.getTime() < Date.now());
    const r = await mtlsHandshake(serverOptions(), clientOf(expired));
    assert.deepEqual(r, { ok: false, reason: 'CERT_HAS_EXPIRED' });
  });

  it('refuses a certificate that is not valid yet', async () => {
    const future = await issueCertificate(ca, { namespace: 'frontend', service: 'web', clock: new ManualClock(Date.now() + 2 * DAY) });
    const r = await mtlsHandshake(serverOptions(), clientOf(future));
    assert.deepEqual(r, { ok: false, reason: 'CERT_NOT_YET_VALID' });
  });

  it('the client refuses a server certificate from another CA', async () => {
    const impostorServer = await issueServerCertificate(foreign, { hosts: ['127.0.0.1'] });
    const client = await issueCertificate(ca, { namespace: 'frontend', service: 'web' });
    const r = await mtlsHandshake({ cert: impostorServer.certPem, key: impostorServer.keyPem, ca: [ca.certPem] }, clientOf(client));
    // the client hangs up, so the server never sees a certificate to judge
    assert.deepEqual(r, { ok: false, reason: 'handshake failed' });
    // and the client says why
    const srv = tls.createServer({ cert: impostorServer.certPem, key: impostorServer.keyPem });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    try {
      const err = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
        const sock = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, ca: [ca.certPem] }, () => reject(new Error('client accepted a foreign server certificate')));
        sock.on('error', resolve);
      });
      assert.equal(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    } finally {
      srv.close();
    }
  });

  it('the gateway certificate also works as a client certificate (towards https upstreams)', async () => {
    const gateway = await issueServerCertificate(ca, { hosts: ['127.0.0.1'] });
    const r = await mtlsHandshake(serverOptions(), clientOf(gateway));
    assert.ok(r.ok, r.ok ? '' : r.reason);
    assert.match(r.peer.subjectaltname ?? '', /URI:spiffe:\/\/example\.org\/ns\/gatehouse\/sa\/gateway$/);
  });

  it("OpenSSL applies the CA's CRL: a revoked certificate is refused, another is not", async () => {
    const revoked = await issueCertificate(ca, { namespace: 'frontend', service: 'web' });
    const fine = await issueCertificate(ca, { namespace: 'frontend', service: 'web' });
    const crl = buildCrl(ca, [{ serial: revoked.serial, revokedAt: new Date(), reason: 'keyCompromise' }], { clock: systemClock, nextUpdateMs: DAY });
    const withCrl = { ...serverOptions(), crl };
    const refused = await mtlsHandshake(withCrl, clientOf(revoked));
    assert.deepEqual(refused, { ok: false, reason: 'CERT_REVOKED' });
    const accepted = await mtlsHandshake(withCrl, clientOf(fine));
    assert.ok(accepted.ok, accepted.ok ? '' : accepted.reason);
  });
});
