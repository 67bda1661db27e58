// Writes an issued certificate where a service can use it: key.pem (0600), cert.pem and ca.pem.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { replaceFile } from './lib/files.js';
import type { IssuedCertificate } from './types.js';

export const CERT_FILES = { key: 'key.pem', cert: 'cert.pem', ca: 'ca.pem' } as const;

/** Each file is replaced atomically; the key is created 0600, never readable by others even briefly. */
export async function writeCertificateFiles(dir: string, issued: IssuedCertificate): Promise<{ dir: string; key: string; cert: string; ca: string }> {
  const abs = path.resolve(dir);
  await mkdir(abs, { recursive: true, mode: 0o700 });
  const files = { key: path.join(abs, CERT_FILES.key), cert: path.join(abs, CERT_FILES.cert), ca: path.join(abs, CERT_FILES.ca) };
  // Key first: a reader never finds a new certificate beside an old key for long.
  await replaceFile(files.key, issued.keyPem, 0o600);
  await replaceFile(files.cert, issued.certPem, 0o644);
  await replaceFile(files.ca, issued.caPem, 0o644);
  return { dir: abs, ...files };
}
