// The part of issuing shared by workload and server certificates: a fresh key and a signed leaf.
import { generateKeyPair as generateKeyPairCb } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { GatehouseError } from '../../errors.js';
import type { Clock } from '../../lib/clock.js';
import type { CertificateAuthority, IssuedCertificate } from '../types.js';
import { forgePublicKey, signCertificate, wholeSeconds } from './forge.js';
import { randomSerial } from './serial.js';

const generateKeyPair = promisify(generateKeyPairCb);

/** RSA 2048 for leaves: short-lived, and the cheapest size every TLS stack accepts. */
export const LEAF_KEY_BITS = 2048;
/** notBefore is backdated this much so a peer whose clock is a little behind accepts a fresh certificate. */
export const CLOCK_SKEW_MS = 60_000;

export type AltName = { type: 2; value: string } | { type: 6; value: string } | { type: 7; ip: string };

export interface LeafSpec {
  ca: CertificateAuthority;
  commonName: string;
  altNames: AltName[];
  spiffeId: string;
  ttlMs: number;
  clock: Clock;
}

export function checkTtl(ttlMs: number): number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < 1000) {
    throw new GatehouseError('ERR_PKI_BAD_TTL', `a certificate lifetime must be at least 1 s, got ${String(ttlMs)} ms`);
  }
  return ttlMs;
}

export async function issueLeaf(spec: LeafSpec): Promise<IssuedCertificate> {
  const { ca, clock } = spec;
  const ttlMs = checkTtl(spec.ttlMs);
  // The CA must be valid now, and the leaf never outlives it.
  const now = clock.now();
  if (now < ca.notBefore.getTime() || now >= ca.notAfter.getTime()) {
    throw new GatehouseError('ERR_PKI_CA_EXPIRED', `the CA is valid from ${ca.notBefore.toISOString()} to ${ca.notAfter.toISOString()}; it cannot issue at ${new Date(now).toISOString()}`);
  }
  const notBefore = wholeSeconds(Math.max(now - CLOCK_SKEW_MS, ca.notBefore.getTime()));
  const notAfter = wholeSeconds(Math.min(now + ttlMs, ca.notAfter.getTime()));

  const { privateKey, publicKey } = await generateKeyPair('rsa', { modulusLength: LEAF_KEY_BITS, publicExponent: 0x10001 });
  const serial = randomSerial();
  const cert = forge.pki.createCertificate();
  cert.version = 2; // v3
  cert.serialNumber = serial;
  cert.publicKey = forgePublicKey(publicKey);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: spec.commonName }]);
  cert.setIssuer(ca.forgeCertificate.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: forge.util.hexToBytes(ca.keyId) },
    { name: 'subjectAltName', altNames: spec.altNames },
  ]);
  const certPem = signCertificate(cert, ca.privateKey);
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem,
    caPem: ca.certPem,
    serial,
    spiffeId: spec.spiffeId,
    notBefore,
    notAfter,
  };
}
