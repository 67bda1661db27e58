import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import path from 'node:path';
import forge from 'node-forge';
import { ManualClock } from '../../src/lib/clock.js';
import {
  canonicalSerial, initCa, issueCertificate, issueServerCertificate, listenerHosts, parseSpiffeId, type CertificateAuthority,
} from '../../src/pki/index.js';
import { rejectsWith, tempDir } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const HOUR = 3_600_000;

describe('issuing certificates', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ca: CertificateAuthority;
  let caCert: X509Certificate;
  const clock = new ManualClock(T0);

  before(async () => {
    tmp = await tempDir('issue');
    ca = await initCa({ dir: path.join(tmp.dir, 'certs'), trustDomain: 'example.org', clock, validityDays: 30 });
    caCert = new X509Certificate(ca.certPem);
  });
  after(() => tmp.cleanup());

  it('a workload certificate: SPIFFE ID as the only SAN, client+server, signed by the CA', async () => {
    const issued = await issueCertificate(ca, { namespace: 'payments', service: 'api', clock });
    const x = new X509Certificate(issued.certPem);
    assert.ok(x.verify(caCert.publicKey));
    assert.ok(x.checkIssued(caCert));
    assert.ok(!x.ca);
    assert.equal(x.subjectAltName, 'URI:spiffe://example.org/ns/payments/sa/api');
    assert.equal(issued.spiffeId, 'spiffe://example.org/ns/payments/sa/api');
    assert.equal(x.subject, 'CN=api');
    assert.deepEqual([...(x.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(x.issuer, caCert.subject);
    // the key belongs to the certificate and is RSA 2048
    const key = createPrivateKey(issued.keyPem);
    assert.ok(x.checkPrivateKey(key));
    assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(issued.caPem, ca.certPem);
    // serial: the canonical form is what Node prints, in lower case
    assert.match(issued.serial, /^[4-7][0-9a-f]{31}$/);
    assert.equal(canonicalSerial(x.serialNumber), issued.serial);
    // validity: a minute of backdating for skew, 24 h by default
    assert.equal(issued.notBefore.getTime(), T0 - 60_000);
    assert.equal(issued.notAfter.getTime(), T0 + 24 * HOUR);
    assert.equal(new Date(x.validFrom).getTime(), issued.notBefore.getTime());
    assert.equal(new Date(x.validTo).getTime(), issued.notAfter.getTime());
  });

  it('sets the extensions exactly: critical keyUsage and basicConstraints, AKI = CA SKI, no DNS SAN', async () => {
    const issued = await issueCertificate(ca, { namespace: 'frontend', service: 'web', clock });
    const f = forge.pki.certificateFromPem(issued.certPem);
    const ku = f.getExtension('keyUsage') as Record<string, boolean>;
    assert.deepEqual([ku.digitalSignature, ku.keyEncipherment, ku.keyCertSign, ku.critical], [true, true, false, true]);
    const bc = f.getExtension('basicConstraints') as { cA: boolean; critical: boolean };
    assert.deepEqual([bc.cA, bc.critical], [false, true]);
    const eku = f.getExtension('extKeyUsage') as Record<string, boolean>;
    assert.deepEqual([eku.serverAuth, eku.clientAuth, eku.codeSigning === true], [true, true, false]);
    const aki = f.getExtension('authorityKeyIdentifier') as { value: string };
    // AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier }
    const akiAsn1 = forge.asn1.fromDer(aki.value);
    const keyId = (akiAsn1.value as forge.asn1.Asn1[])[0]!;
    assert.equal(forge.util.bytesToHex(keyId.value as string), ca.keyId);
    const san = f.getExtension('subjectAltName') as { altNames: { type: number }[] };
    assert.deepEqual(san.altNames.map((n) => n.type), [6]);
    const id = parseSpiffeId((san.altNames[0] as unknown as { value: string }).value);
    assert.deepEqual(id, { trustDomain: 'example.org', namespace: 'frontend', service: 'web' });
  });

  it('gives every certificate a fresh serial and key', async () => {
    const a = await issueCertificate(ca, { namespace: 'payments', service: 'api', clock });
    const b = await issueCertificate(ca, { namespace: 'payments', service: 'api', clock });
    assert.notEqual(a.serial, b.serial);
    assert.notEqual(a.keyPem, b.keyPem);
  });

  it('honours ttlMs and never outlives the CA', async () => {
    const short = await issueCertificate(ca, { namespace: 'payments', service: 'api', clock, ttlMs: 15 * 60_000 });
    assert.equal(short.notAfter.getTime(), T0 + 15 * 60_000);
    const long = await issueCertificate(ca, { namespace: 'payments', service: 'api', clock, ttlMs: 365 * 24 * HOUR });
    assert.equal(long.notAfter.getTime(), ca.notAfter.getTime());
    assert.equal(new Date(new X509Certificate(long.certPem).validTo).getTime(), ca.notAfter.getTime());
  });

  it('refuses a bad lifetime, bad names, and issuing outside the CA validity', async () => {
    await rejectsWith(() => issueCertificate(ca, { namespace: 'payments', service: 'api', clock, ttlMs: 0 }), 'ERR_PKI_BAD_TTL');
    await rejectsWith(() => issueCertificate(ca, { namespace: 'payments', service: 'api', clock, ttlMs: -5 }), 'ERR_PKI_BAD_TTL');
    await rejectsWith(() => issueCertificate(ca, { namespace: 'payments', service: 'api', clock, ttlMs: Number.NaN }), 'ERR_PKI_BAD_TTL');
    await rejectsWith(() => issueCertificate(ca, { namespace: 'Payments', service: 'api', clock }), 'ERR_SPIFFE_ID_INVALID');
    await rejectsWith(() => issueCertificate(ca, { namespace: 'payments', service: '../x', clock }), 'ERR_SPIFFE_ID_INVALID');
    await rejectsWith(() => issueCertificate(ca, { namespace: 'payments', service: 'api', clock: new ManualClock(ca.notAfter.getTime()) }), 'ERR_PKI_CA_EXPIRED');
    await rejectsWith(() => issueCertificate(ca, { namespace: 'payments', service: 'api', clock: new ManualClock(T0 - 2 * HOUR) }), 'ERR_PKI_CA_EXPIRED');
  });

  it('a server certificate: IP and DNS SANs plus the gateway SPIFFE ID, server+client auth', async () => {
    const issued = await issueServerCertificate(ca, { hosts: ['127.0.0.1', 'Gateway.Example.org', '::1', 'localhost', '127.0.0.1'], clock });
    const x = new X509Certificate(issued.certPem);
    assert.ok(x.verify(caCert.publicKey));
    assert.equal(x.subjectAltName, 'IP Address:127.0.0.1, DNS:gateway.example.org, IP Address:0:0:0:0:0:0:0:1, DNS:localhost, URI:spiffe://example.org/ns/gatehouse/sa/gateway');
    assert.equal(issued.spiffeId, 'spiffe://example.org/ns/gatehouse/sa/gateway');
    assert.deepEqual([...(x.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(x.checkHost('localhost'), 'localhost');
    assert.equal(x.checkHost('evil.example.org'), undefined);
  });

  it('a server certificate: refuses bad hosts and a SPIFFE ID of another trust domain', async () => {
    await rejectsWith(() => issueServerCertificate(ca, { hosts: [], clock }), 'ERR_PKI_BAD_HOST');
    await rejectsWith(() => issueServerCertificate(ca, { hosts: ['bad host'], clock }), 'ERR_PKI_BAD_HOST');
    await rejectsWith(() => issueServerCertificate(ca, { hosts: ['*.example.org'], clock }), 'ERR_PKI_BAD_HOST');
    await rejectsWith(() => issueServerCertificate(ca, { hosts: ['localhost'], spiffeId: 'spiffe://other.org/ns/gatehouse/sa/gateway', clock }), 'ERR_SPIFFE_ID_INVALID');
    await rejectsWith(() => issueServerCertificate(ca, { hosts: ['localhost'], spiffeId: 'spiffe://example.org/ns/gatehouse/sa/gateway?', clock }), 'ERR_SPIFFE_ID_INVALID');
  });

  it('listenerHosts: the address (unless a wildcard) and localhost', () => {
    assert.deepEqual(listenerHosts('127.0.0.1'), ['127.0.0.1', 'localhost']);
    assert.deepEqual(listenerHosts('0.0.0.0'), ['localhost']);
    assert.deepEqual(listenerHosts('[::]'), ['localhost']);
    assert.deepEqual(listenerHosts('localhost'), ['localhost']);
    assert.deepEqual(listenerHosts('[::1]'), ['::1', 'localhost']);
  });
});
