// `gatehouse ca init`: create the CA key and self-signed certificate, and the token KEK, once.
import { generateKeyPair as generateKeyPairCb, randomBytes } from 'node:crypto';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { GatehouseError } from '../errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { writeNewFile } from './lib/files.js';
import { forgePublicKey, signCertificate, wholeSeconds } from './lib/forge.js';
import { randomSerial } from './lib/serial.js';
import { caFromParts } from './load-ca.js';
import { assertTrustDomain, trustDomainId } from './spiffe.js';
import { CA_FILES, type CertificateAuthority } from './types.js';

const generateKeyPair = promisify(generateKeyPairCb);

export interface InitCaOptions {
  dir: string;
  trustDomain: string;
  clock?: Clock;
  /** Lifetime of the CA certificate (default 3650 days). */
  validityDays?: number;
}

/** RSA 3072: about 128-bit security, the NIST SP 800-57 size for keys used past 2030. */
export const CA_KEY_BITS = 3072;
const SKEW_MS = 60_000;

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export async function initCa(options: InitCaOptions): Promise<CertificateAuthority> {
  const clock = options.clock ?? systemClock;
  const trustDomain = assertTrustDomain(options.trustDomain);
  const validityDays = options.validityDays ?? 3650;
  if (!Number.isInteger(validityDays) || validityDays < 1 || validityDays > 36_500) {
    throw new GatehouseError('ERR_PKI_BAD_TTL', `validityDays must be a whole number of days from 1 to 36500, got ${String(validityDays)}`);
  }

  // An existing CA (or any one of its files) is never overwritten: certificates in use depend on it.
  const dir = path.resolve(options.dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files = { cert: path.join(dir, CA_FILES.cert), key: path.join(dir, CA_FILES.key), kek: path.join(dir, CA_FILES.kek) };
  for (const file of Object.values(files)) {
    if (await exists(file)) throw new GatehouseError('ERR_PKI_CA_EXISTS', `${file} already exists; refusing to overwrite a CA`, { details: { file } });
  }

  const { privateKey, publicKey } = await generateKeyPair('rsa', { modulusLength: CA_KEY_BITS, publicExponent: 0x10001 });

  const now = clock.now();
  const cert = forge.pki.createCertificate();
  cert.version = 2; // v3
  cert.serialNumber = randomSerial();
  cert.publicKey = forgePublicKey(publicKey);
  cert.validity.notBefore = wholeSeconds(now - SKEW_MS);
  cert.validity.notAfter = wholeSeconds(now + validityDays * 86_400_000);
  const commonName = `Gatehouse CA ${trustDomain}`;
  const subject = [
    { name: 'organizationName', value: 'Gatehouse' },
    { name: 'commonName', value: commonName.length <= 64 ? commonName : 'Gatehouse CA' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
    // The trust domain as a SPIFFE ID (X509-SVID 4.1 allows it on signing certificates). No URI
    // name constraint: rustls-webpki and Python's cryptography reject every URI constraint, which
    // would break clients there; Gatehouse checks the trust domain of each peer ID itself.
    { name: 'subjectAltName', altNames: [{ type: 6, value: trustDomainId(trustDomain) }] },
  ]);
  const certPem = signCertificate(cert, privateKey);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const kek = `${randomBytes(32).toString('base64')}\n`;

  // Key first, certificate last: ca.pem present means the CA is complete. On any failure the
  // files this call created are removed, so a retry starts clean.
  const created: string[] = [];
  try {
    for (const [file, data, mode] of [[files.key, keyPem, 0o600], [files.kek, kek, 0o600], [files.cert, certPem, 0o644]] as const) {
      await writeNewFile(file, data, mode);
      created.push(file);
    }
  } catch (err) {
    await Promise.all(created.map((f) => unlink(f).catch(() => undefined)));
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new GatehouseError('ERR_PKI_CA_EXISTS', `a CA file appeared in ${dir} while creating the CA; refusing to overwrite it`, { cause: err });
    }
    throw err;
  }
  return caFromParts({ dir, certPem, privateKey });
}
