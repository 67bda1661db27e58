// An X.509 v2 CRL (RFC 5280 section 5) signed by the CA. node-forge has no CRL builder, so the
// ASN.1 is assembled here and the TBSCertList is signed with node:crypto.
import { sign as cryptoSign } from 'node:crypto';
import forge from 'node-forge';
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { OID, derBytes, derIntegerFromHex, derTime, sha256WithRsaAlgorithm, toBinary, wholeSeconds } from './lib/forge.js';
import { canonicalSerial } from './lib/serial.js';
import { REVOCATION_REASONS, type CertificateAuthority, type RevocationReason } from './types.js';

const { asn1 } = forge;
const { Class, Type } = asn1;

export interface CrlEntry {
  serial: string;
  revokedAt: Date | string;
  reason?: RevocationReason;
}

export interface BuildCrlOptions {
  clock: Clock;
  /** nextUpdate = thisUpdate + this. */
  nextUpdateMs: number;
  /** The cRLNumber; default thisUpdate in milliseconds since the epoch, which grows with every CRL a clock-synchronised replica builds. */
  crlNumber?: bigint;
}

function extension(oid: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  // Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE (omitted), extnValue OCTET STRING }
  return asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    asn1.create(Class.UNIVERSAL, Type.OID, false, asn1.oidToDer(oid).getBytes()),
    asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, asn1.toDer(value).getBytes()),
  ]);
}

function revokedEntry(entry: CrlEntry): { serial: string; node: forge.asn1.Asn1 } {
  const serial = canonicalSerial(entry.serial);
  if (serial === undefined) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', `not a serial: ${JSON.stringify(String(entry.serial).slice(0, 80))}`);
  const revokedAt = new Date(entry.revokedAt);
  if (Number.isNaN(revokedAt.getTime())) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', `revocation date of ${serial} is not a date`);
  const fields = [derIntegerFromHex(serial), derTime(wholeSeconds(revokedAt.getTime()))];
  // reasonCode "unspecified" SHOULD be absent (RFC 5280 5.3.1).
  const code = entry.reason === undefined ? 0 : REVOCATION_REASONS[entry.reason];
  if (code !== 0) {
    const reason = asn1.create(Class.UNIVERSAL, Type.ENUMERATED, false, String.fromCharCode(code));
    fields.push(asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [extension(OID.cRLReason, reason)]));
  }
  return { serial, node: asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, fields) };
}

/** Builds and signs a CRL listing the given revocations; returns PEM ("X509 CRL"). */
export function buildCrl(ca: CertificateAuthority, revoked: readonly CrlEntry[], options: BuildCrlOptions): string {
  if (!Number.isFinite(options.nextUpdateMs) || options.nextUpdateMs < 1000) {
    throw new GatehouseError('ERR_PKI_BAD_TTL', `nextUpdateMs must be at least 1 s, got ${String(options.nextUpdateMs)}`);
  }
  const now = options.clock.now();
  const thisUpdate = wholeSeconds(now);
  const nextUpdate = wholeSeconds(now + options.nextUpdateMs);
  const crlNumber = options.crlNumber ?? BigInt(now);
  if (crlNumber < 0n) throw new GatehouseError('ERR_PKI_BAD_TTL', 'crlNumber must not be negative');

  // One entry per serial, in serial order, so equal sets give equal lists.
  const entries = new Map<string, forge.asn1.Asn1>();
  for (const e of revoked) {
    const { serial, node } = revokedEntry(e);
    if (!entries.has(serial)) entries.set(serial, node);
  }
  const sorted = [...entries.entries()].sort(([a], [b]) => (a.length - b.length) || (a < b ? -1 : a > b ? 1 : 0)).map(([, n]) => n);

  const authorityKeyId = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    asn1.create(Class.CONTEXT_SPECIFIC, 0, false, forge.util.hexToBytes(ca.keyId)),
  ]);
  const tbs = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    asn1.create(Class.UNIVERSAL, Type.INTEGER, false, String.fromCharCode(1)), // v2
    sha256WithRsaAlgorithm(),
    forge.pki.distinguishedNameToAsn1(ca.forgeCertificate.subject),
    derTime(thisUpdate),
    derTime(nextUpdate),
    // revokedCertificates is absent, not empty, when nothing is revoked (RFC 5280 5.1.2.6).
    ...(sorted.length > 0 ? [asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, sorted)] : []),
    asn1.create(Class.CONTEXT_SPECIFIC, 0, true, [
      asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
        extension(OID.authorityKeyIdentifier, authorityKeyId),
        extension(OID.cRLNumber, derIntegerFromHex(crlNumber.toString(16))),
      ]),
    ]),
  ]);
  const signature = cryptoSign('sha256', derBytes(tbs), ca.privateKey);
  const crl = asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, [
    tbs,
    sha256WithRsaAlgorithm(),
    asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, `\u0000${toBinary(signature)}`),
  ]);
  return forge.pem.encode({ type: 'X509 CRL', body: asn1.toDer(crl).getBytes() }, { maxline: 64 }).replaceAll('\r\n', '\n');
}
