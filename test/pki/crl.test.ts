import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { verify as cryptoVerify } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { ManualClock } from '../../src/lib/clock.js';
import { buildCrl, initCa, type CertificateAuthority } from '../../src/pki/index.js';
import { tempDir, throwsWith } from './helpers.js';

const run = promisify(execFile);
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const DAY = 86_400_000;

async function hasOpenssl(): Promise<boolean> {
  try {
    await run('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

/** Splits a CRL PEM into its parts with forge's ASN.1 parser. */
function parseCrl(pem: string) {
  const msg = forge.pem.decode(pem)[0]!;
  assert.equal(msg.type, 'X509 CRL');
  const crl = forge.asn1.fromDer(msg.body);
  const [tbs, alg, sig] = crl.value as forge.asn1.Asn1[];
  const tbsFields = tbs!.value as forge.asn1.Asn1[];
  return {
    tbsDer: Buffer.from(forge.asn1.toDer(tbs!).getBytes(), 'binary'),
    algOid: forge.asn1.derToOid((alg!.value as forge.asn1.Asn1[])[0]!.value as string),
    signature: Buffer.from((sig!.value as string).slice(1), 'binary'),
    version: (tbsFields[0]!.value as string).charCodeAt(0),
    fields: tbsFields,
  };
}

describe('CRL', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ca: CertificateAuthority;
  let openssl = false;
  const clock = new ManualClock(T0);

  before(async () => {
    tmp = await tempDir('crl');
    ca = await initCa({ dir: path.join(tmp.dir, 'certs'), trustDomain: 'example.org', clock });
    openssl = await hasOpenssl();
  });
  after(() => tmp.cleanup());

  const revoked = [
    { serial: '7fffffffffffffffffffffffffffffff', revokedAt: new Date(T0 - 3_600_000), reason: 'keyCompromise' as const },
    { serial: '4000000000000000000000000000000a', revokedAt: new Date(T0 - 60_000).toISOString() },
    { serial: 'ff01', revokedAt: new Date(T0), reason: 'superseded' as const }, // a serial needing a DER padding byte
  ];

  it('is a v2 CRL signed with sha256WithRSAEncryption that verifies with the CA key (node:crypto)', () => {
    const pem = buildCrl(ca, revoked, { clock, nextUpdateMs: DAY });
    assert.match(pem, /^-----BEGIN X509 CRL-----\n[A-Za-z0-9+/=\n]+-----END X509 CRL-----\n$/);
    const crl = parseCrl(pem);
    assert.equal(crl.version, 1);
    assert.equal(crl.algOid, '1.2.840.113549.1.1.11');
    assert.ok(cryptoVerify('sha256', crl.tbsDer, ca.certificate.publicKey, crl.signature));
    const tampered = Buffer.from(crl.tbsDer);
    tampered[tampered.length - 1]! ^= 1;
    assert.ok(!cryptoVerify('sha256', tampered, ca.certificate.publicKey, crl.signature));
  });

  it('openssl reads it, verifies it against ca.pem and lists every entry, reason, CRL number and AKI', async (t) => {
    if (!openssl) {
      t.skip('openssl is not installed: the openssl crl check is skipped (the node:crypto signature check still ran)');
      return;
    }
    const crlFile = path.join(tmp.dir, 'crl.pem');
    const caFile = path.join(tmp.dir, 'ca.pem');
    await writeFile(crlFile, buildCrl(ca, revoked, { clock, nextUpdateMs: DAY, crlNumber: 42n }));
    await writeFile(caFile, ca.certPem);
    const { stdout, stderr } = await run('openssl', ['crl', '-in', crlFile, '-CAfile', caFile, '-noout', '-text']);
    assert.match(stderr, /verify OK/);
    assert.match(stdout, /Version 2 \(0x1\)/);
    assert.match(stdout, /Signature Algorithm: sha256WithRSAEncryption/);
    assert.match(stdout, /Last Update: Jan {2}1 12:00:00 2026 GMT/);
    assert.match(stdout, /Next Update: Jan {2}2 12:00:00 2026 GMT/);
    assert.match(stdout, /X509v3 CRL Number: \s*\n\s*42\n/);
    const keyId = ca.keyId.toUpperCase().match(/../g)!.join(':');
    assert.ok(stdout.includes(keyId), `AKI ${keyId} missing:\n${stdout}`);
    assert.match(stdout, /Serial Number: 7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\s+Revocation Date: Jan {2}1 11:00:00 2026 GMT\s+CRL entry extensions:\s+X509v3 CRL Reason Code:\s+Key Compromise/);
    assert.match(stdout, /Serial Number: 4000000000000000000000000000000A\s+Revocation Date: Jan {2}1 11:59:00 2026 GMT\s+Serial Number/);
    assert.match(stdout, /Serial Number: FF01\s+Revocation Date: Jan {2}1 12:00:00 2026 GMT\s+CRL entry extensions:\s+X509v3 CRL Reason Code:\s+Superseded/);
    // a CRL signed by another key does not verify
    const other = await initCa({ dir: path.join(tmp.dir, 'other'), trustDomain: 'example.org', clock });
    await writeFile(crlFile, buildCrl(other, revoked, { clock, nextUpdateMs: DAY }));
    const bad = await run('openssl', ['crl', '-in', crlFile, '-CAfile', caFile, '-noout']).then(
      (r) => r.stderr,
      (err: { stderr: string }) => err.stderr,
    );
    assert.doesNotMatch(bad, /verify OK/);
  });

  it('an empty list omits revokedCertificates; equal sets give equal entries in serial order', async (t) => {
    const empty = parseCrl(buildCrl(ca, [], { clock, nextUpdateMs: DAY }));
    // version, signature, issuer, thisUpdate, nextUpdate, [0] extensions
    assert.equal(empty.fields.length, 6);
    const a = parseCrl(buildCrl(ca, revoked, { clock, nextUpdateMs: DAY, crlNumber: 1n }));
    const b = parseCrl(buildCrl(ca, [...revoked].reverse(), { clock, nextUpdateMs: DAY, crlNumber: 1n }));
    assert.deepEqual(a.tbsDer, b.tbsDer);
    // duplicates collapse to one entry
    const dup = parseCrl(buildCrl(ca, [...revoked, revoked[0]!], { clock, nextUpdateMs: DAY }));
    assert.equal((dup.fields[5]!.value as unknown[]).length, 3);
    if (openssl) {
      const f = path.join(tmp.dir, 'empty.pem');
      await writeFile(f, buildCrl(ca, [], { clock, nextUpdateMs: DAY }));
      const caFile = path.join(tmp.dir, 'ca-empty.pem');
      await writeFile(caFile, ca.certPem);
      const { stdout, stderr } = await run('openssl', ['crl', '-in', f, '-CAfile', caFile, '-noout', '-text']);
      assert.match(stderr, /verify OK/);
      assert.match(stdout, /No Revoked Certificates/);
    } else {
      t.diagnostic('openssl is not installed: skipped the openssl check of the empty CRL');
    }
  });

  it('refuses bad entries and a bad nextUpdate', () => {
    throwsWith(() => buildCrl(ca, [{ serial: 'xyz', revokedAt: new Date(T0) }], { clock, nextUpdateMs: DAY }), 'ERR_CERT_REVOCATION_INVALID');
    throwsWith(() => buildCrl(ca, [{ serial: 'ab', revokedAt: 'yesterday' }], { clock, nextUpdateMs: DAY }), 'ERR_CERT_REVOCATION_INVALID');
    throwsWith(() => buildCrl(ca, [], { clock, nextUpdateMs: 0 }), 'ERR_PKI_BAD_TTL');
  });
});
