// node-forge builds the ASN.1; node:crypto (OpenSSL) does every private-key operation, so a
// key never goes through forge's JavaScript RSA (slower, and not constant-time).
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

const { asn1, pki } = forge;

export const OID = {
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  nameConstraints: '2.5.29.30',
  cRLNumber: '2.5.29.20',
  cRLReason: '2.5.29.21',
} as const;

/** forge's binary strings <-> Buffers. */
export const toBinary = (b: Uint8Array): string => Buffer.from(b).toString('binary');
export const fromBinary = (s: string): Buffer => Buffer.from(s, 'binary');

export function derBytes(node: forge.asn1.Asn1): Buffer {
  return fromBinary(asn1.toDer(node).getBytes());
}

/** An INTEGER from a non-negative value given as hex, with the padding byte DER needs when the top bit is set. */
export function derIntegerFromHex(hex: string): forge.asn1.Asn1 {
  let h = hex.length % 2 === 1 ? `0${hex}` : hex;
  while (h.length > 2 && h.startsWith('00') && parseInt(h.slice(2, 4), 16) < 0x80) h = h.slice(2);
  if (parseInt(h.slice(0, 2), 16) >= 0x80) h = `00${h}`;
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes(h));
}

/** UTCTime up to 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
export function derTime(date: Date): forge.asn1.Asn1 {
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

export function sha256WithRsaAlgorithm(): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(OID.sha256WithRSAEncryption).getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
  ]);
}

/** A forge public key from a node KeyObject (RSA only; forge knows no other). */
export function forgePublicKey(key: KeyObject): forge.pki.rsa.PublicKey {
  return pki.publicKeyFromPem(key.export({ type: 'spki', format: 'pem' }).toString());
}

// getTBSCertificate exists in forge but is missing from @types/node-forge.
const forgePki = pki as unknown as { getTBSCertificate(this: void, cert: forge.pki.Certificate): forge.asn1.Asn1 };

/** Signs a forge certificate with sha256WithRSAEncryption and returns its PEM. */
export function signCertificate(cert: forge.pki.Certificate, signer: KeyObject): string {
  cert.signatureOid = OID.sha256WithRSAEncryption;
  cert.siginfo.algorithmOid = OID.sha256WithRSAEncryption;
  cert.tbsCertificate = forgePki.getTBSCertificate(cert);
  cert.signature = toBinary(cryptoSign('sha256', derBytes(cert.tbsCertificate), signer));
  return pki.certificateToPem(cert).replaceAll('\r\n', '\n'); // forge writes CRLF; keep PEM files uniform
}

/** Seconds precision: X.509 times carry no milliseconds, so the Dates we return must not either. */
export function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}
