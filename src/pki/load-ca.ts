// Load the CA from pki.dir, checking what a signer must be able to rely on.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import forge from 'node-forge';
import { GatehouseError } from '../errors.js';
import { trustDomainOfId } from './spiffe.js';
import { CA_FILES, type CertificateAuthority } from './types.js';

function caInvalid(message: string, cause?: unknown): GatehouseError {
  return new GatehouseError('ERR_PKI_CA_INVALID', message, cause === undefined ? {} : { cause });
}

async function readCaFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new GatehouseError('ERR_PKI_CA_NOT_FOUND', `${file} does not exist (run gatehouse ca init)`, { cause });
    throw caInvalid(`cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, cause);
  }
}

/** Reads a private key file, refusing one that group or others could read or change. */
async function readPrivateKeyFile(file: string): Promise<string> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new GatehouseError('ERR_PKI_CA_NOT_FOUND', `${file} does not exist (run gatehouse ca init)`, { cause });
    throw caInvalid(`cannot open ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, cause);
  }
  try {
    // fstat the open file, not the path, so the file checked is the file read.
    const st = await fh.stat();
    if (!st.isFile()) throw caInvalid(`${file} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new GatehouseError('ERR_PKI_KEY_PERMISSIONS', `${file} has mode ${(st.mode & 0o777).toString(8)}: a private key must not be readable by group or others (chmod 600 ${file})`, { details: { file } });
    }
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** Builds a CA object from its certificate and key, checking that they belong together. */
export function caFromParts(parts: { dir: string | undefined; certPem: string; privateKey: KeyObject }): CertificateAuthority {
  const { certPem, privateKey } = parts;
  let certificate: X509Certificate;
  let forgeCertificate: forge.pki.Certificate;
  try {
    certificate = new X509Certificate(certPem);
    forgeCertificate = forge.pki.certificateFromPem(certPem);
  } catch (cause) {
    throw caInvalid('the CA certificate cannot be parsed (it must be one PEM RSA certificate)', cause);
  }
  // It is a CA certificate, self-signed, with an RSA key (forge builds only RSA signatures).
  if (!certificate.ca) throw caInvalid('the CA certificate lacks basicConstraints CA:true');
  if (certificate.publicKey.asymmetricKeyType !== 'rsa') throw caInvalid('the CA key must be RSA');
  if (!certificate.checkIssued(certificate) || !certificate.verify(certificate.publicKey)) throw caInvalid('the CA certificate is not validly self-signed');
  // The private key is RSA and is the certificate's.
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'rsa') throw caInvalid('the CA private key must be an RSA private key');
  if (!certificate.checkPrivateKey(privateKey)) throw caInvalid('the CA private key does not match the CA certificate');
  // The trust domain is named by a spiffe://<td> URI SAN.
  const san = forgeCertificate.getExtension('subjectAltName') as { altNames?: { type: number; value: string }[] } | undefined;
  const uris = (san?.altNames ?? []).filter((n) => n.type === 6 && n.value.startsWith('spiffe://'));
  const trustDomain = uris.length === 1 ? trustDomainOfId(uris[0]!.value) : undefined;
  if (trustDomain === undefined) {
    throw caInvalid('the CA certificate must carry exactly one URI SAN spiffe://<trust-domain>');
  }
  // Issued certificates and CRLs point at the CA by its subjectKeyIdentifier.
  const ski = forgeCertificate.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  if (ski?.subjectKeyIdentifier === undefined || ski.subjectKeyIdentifier.length === 0) throw caInvalid('the CA certificate lacks a subjectKeyIdentifier');
  return {
    dir: parts.dir,
    trustDomain,
    certPem: certificate.toString(),
    certificate,
    notBefore: forgeCertificate.validity.notBefore,
    notAfter: forgeCertificate.validity.notAfter,
    keyId: ski.subjectKeyIdentifier.toLowerCase(),
    privateKey,
    forgeCertificate,
  };
}

/** Loads ca.pem and ca.key from dir. */
export async function loadCa(dir: string): Promise<CertificateAuthority> {
  const abs = path.resolve(dir);
  const certPem = await readCaFile(path.join(abs, CA_FILES.cert));
  const keyPem = await readPrivateKeyFile(path.join(abs, CA_FILES.key));
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (cause) {
    throw caInvalid(`${path.join(abs, CA_FILES.key)} is not a PEM private key`, cause);
  }
  return caFromParts({ dir: abs, certPem, privateKey });
}
