import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { chmod, copyFile, mkdir, readFile, stat, writeFile, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import forge from 'node-forge';
import { ManualClock } from '../../src/lib/clock.js';
import { initCa, loadCa, type CertificateAuthority } from '../../src/pki/index.js';
import { rejectsWith, tempDir } from './helpers.js';

describe('CA: init and load', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ca: CertificateAuthority;
  let caDir: string;
  const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 0));

  before(async () => {
    tmp = await tempDir('ca');
    caDir = path.join(tmp.dir, 'certs');
    ca = await initCa({ dir: caDir, trustDomain: 'example.org', clock });
  });
  after(() => tmp.cleanup());

  /** A copy of the CA's files in a new folder (cheaper than generating another 3072-bit key). */
  async function copyCa(name: string, files = ['ca.pem', 'ca.key', 'kek']): Promise<string> {
    const dir = path.join(tmp.dir, name);
    await mkdir(dir);
    for (const f of files) await copyFile(path.join(caDir, f), path.join(dir, f));
    return dir;
  }

  it('writes ca.pem 0644, ca.key 0600 and a 32-byte kek 0600', async () => {
    assert.equal((await stat(path.join(caDir, 'ca.pem'))).mode & 0o777, 0o644 & ~process.umask());
    assert.equal((await stat(path.join(caDir, 'ca.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(path.join(caDir, 'kek'))).mode & 0o777, 0o600);
    const kek = Buffer.from((await readFile(path.join(caDir, 'kek'), 'utf8')).trim(), 'base64');
    assert.equal(kek.length, 32);
    const key = createPrivateKey(await readFile(path.join(caDir, 'ca.key')));
    assert.equal(key.asymmetricKeyType, 'rsa');
    assert.equal(key.asymmetricKeyDetails?.modulusLength, 3072);
  });

  it('makes a self-signed CA certificate with the required extensions', async () => {
    const pem = await readFile(path.join(caDir, 'ca.pem'), 'utf8');
    const x = new X509Certificate(pem);
    assert.ok(x.ca);
    assert.ok(x.verify(x.publicKey));
    assert.ok(x.checkIssued(x));
    assert.equal(x.subjectAltName, 'URI:spiffe://example.org');
    assert.match(x.serialNumber, /^[4-7][0-9A-F]{31}$/);
    // validity: from a minute before now, for 3650 days
    assert.equal(new Date(x.validFrom).getTime(), clock.now() - 60_000);
    assert.equal(new Date(x.validTo).getTime(), clock.now() + 3650 * 86_400_000);
    assert.equal(ca.notAfter.getTime(), clock.now() + 3650 * 86_400_000);
    // extensions, read with forge: basicConstraints CA pathLen 0 critical, keyUsage critical, SKI
    const f = forge.pki.certificateFromPem(pem);
    const bc = f.getExtension('basicConstraints') as { cA: boolean; pathLenConstraint: number; critical: boolean };
    assert.deepEqual([bc.cA, bc.pathLenConstraint, bc.critical], [true, 0, true]);
    const ku = f.getExtension('keyUsage') as Record<string, boolean>;
    assert.deepEqual([ku.keyCertSign, ku.cRLSign, ku.digitalSignature, ku.critical], [true, true, false, true]);
    const ski = f.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier: string };
    assert.equal(ski.subjectKeyIdentifier, ca.keyId);
    assert.equal(ca.trustDomain, 'example.org');
  });

  it('loads what it wrote', async () => {
    const loaded = await loadCa(caDir);
    assert.equal(loaded.trustDomain, 'example.org');
    assert.equal(loaded.certPem, ca.certPem);
    assert.equal(loaded.keyId, ca.keyId);
    assert.equal(loaded.notAfter.getTime(), ca.notAfter.getTime());
  });

  it('refuses to overwrite an existing CA, leaving it untouched', async () => {
    const before = await readFile(path.join(caDir, 'ca.key'));
    await rejectsWith(() => initCa({ dir: caDir, trustDomain: 'other.org', clock }), 'ERR_PKI_CA_EXISTS');
    assert.deepEqual(await readFile(path.join(caDir, 'ca.key')), before);
  });

  it('refuses when any one CA file (or a symlink in its place) exists', async () => {
    for (const name of ['ca.pem', 'ca.key', 'kek']) {
      const dir = await copyCa(`partial-${name}`, [name]);
      await rejectsWith(() => initCa({ dir, trustDomain: 'example.org', clock }), 'ERR_PKI_CA_EXISTS');
    }
    const dir = await copyCa('symlinked', []);
    await symlink(path.join(tmp.dir, 'nowhere'), path.join(dir, 'ca.key'));
    await rejectsWith(() => initCa({ dir, trustDomain: 'example.org', clock }), 'ERR_PKI_CA_EXISTS');
  });

  it('refuses a bad trust domain or validity', async () => {
    await rejectsWith(() => initCa({ dir: path.join(tmp.dir, 'bad1'), trustDomain: 'Example.org', clock }), 'ERR_SPIFFE_ID_INVALID');
    await rejectsWith(() => initCa({ dir: path.join(tmp.dir, 'bad2'), trustDomain: 'example.org', clock, validityDays: 0 }), 'ERR_PKI_BAD_TTL');
    await rejectsWith(() => initCa({ dir: path.join(tmp.dir, 'bad3'), trustDomain: 'example.org', clock, validityDays: 1.5 }), 'ERR_PKI_BAD_TTL');
  });

  describe('loadCa refuses', () => {
    it('a missing folder or file with ERR_PKI_CA_NOT_FOUND', async () => {
      await rejectsWith(() => loadCa(path.join(tmp.dir, 'absent')), 'ERR_PKI_CA_NOT_FOUND');
      const dir = await copyCa('no-key');
      await rm(path.join(dir, 'ca.key'));
      await rejectsWith(() => loadCa(dir), 'ERR_PKI_CA_NOT_FOUND');
    });

    it('a key readable by group or others with ERR_PKI_KEY_PERMISSIONS', async () => {
      const dir = await copyCa('perm');
      for (const mode of [0o640, 0o604, 0o644, 0o660]) {
        await chmod(path.join(dir, 'ca.key'), mode);
        await rejectsWith(() => loadCa(dir), 'ERR_PKI_KEY_PERMISSIONS');
      }
      await chmod(path.join(dir, 'ca.key'), 0o400);
      assert.equal((await loadCa(dir)).trustDomain, 'example.org');
    });

    it('corrupt files with ERR_PKI_CA_INVALID', async () => {
      const dir = await copyCa('corrupt');
      const goodCert = await readFile(path.join(dir, 'ca.pem'), 'utf8');
      // One flipped bit in the signature: it still parses, but no longer verifies.
      const der = new X509Certificate(goodCert).raw;
      der[der.length - 5]! ^= 0x01;
      await writeFile(path.join(dir, 'ca.pem'), `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`);
      await rejectsWith(() => loadCa(dir), 'ERR_PKI_CA_INVALID');
      await writeFile(path.join(dir, 'ca.pem'), 'not a certificate');
      await rejectsWith(() => loadCa(dir), 'ERR_PKI_CA_INVALID');
      await writeFile(path.join(dir, 'ca.pem'), goodCert);
      await writeFile(path.join(dir, 'ca.key'), 'garbage', { mode: 0o600 });
      await rejectsWith(() => loadCa(dir), 'ERR_PKI_CA_INVALID');
    });

    it('a key that does not match the certificate with ERR_PKI_CA_INVALID', async () => {
      const dir = await copyCa('mismatch');
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
      await writeFile(path.join(dir, 'ca.key'), other, { mode: 0o600 });
      await rejectsWith(() => loadCa(dir), 'ERR_PKI_CA_INVALID');
    });

    it('a certificate that is not a CA with ERR_PKI_CA_INVALID', async () => {
      const dir = await copyCa('leaf-as-ca');
      // A self-signed certificate for the same key, without CA:true.
      const keyPem = await readFile(path.join(dir, 'ca.key'), 'utf8');
      const key = forge.pki.privateKeyFromPem(keyPem);
      const cert = forge.pki.createCertificate();
      cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
      cert.serialNumber = '01';
      cert.validity.notBefore = new Date(clock.now() - 60_000);
      cert.validity.notAfter = new Date(clock.now() + 86_400_000);
      cert.setSubject([{ name: 'commonName', value: 'x' }]);
      cert.setIssuer([{ name: 'commonName', value: 'x' }]);
      cert.setExtensions([{ name: 'basicConstraints', cA: false }, { name: 'subjectAltName', altNames: [{ type: 6, value: 'spiffe://example.org' }] }]);
      cert.sign(key, forge.md.sha256.create());
      await writeFile(path.join(dir, 'ca.pem'), forge.pki.certificateToPem(cert));
      await rejectsWith(() => loadCa(dir), 'ERR_PKI_CA_INVALID');
    });
  });
});
