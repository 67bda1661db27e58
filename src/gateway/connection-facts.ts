// What a connection's verified client certificate says, read once at the handshake.
import type { X509Certificate } from 'node:crypto';
import { canonicalSerial } from '../pki/lib/serial.js';
import { certThumbprint } from '../tokens/cert-thumbprint.js';

export interface ConnectionFacts {
  readonly remoteAddress: string;
  /** The verified peer certificate (mTLS); undefined without one, or when it did not verify. */
  readonly cert: X509Certificate | undefined;
  /** Lowercase hex, as canonicalSerial gives it. */
  readonly serial: string | undefined;
  /** RFC 8705 x5t#S256 of the certificate. */
  readonly thumbprint: string | undefined;
  /** The SPIFFE ID: the certificate's one URI SAN, when it starts spiffe:// (X509-SVID §4.1). */
  readonly spiffeId: string | undefined;
  /** Milliseconds since the epoch. */
  readonly notAfter: number | undefined;
}

/**
 * The URI SANs in Node's subjectAltName text ("DNS:a, URI:spiffe://td/x"). Node quotes a value
 * holding a separator or an escape as a JSON string; such a value is kept quoted, so it can never
 * pass for a SPIFFE ID (which needs no quoting).
 */
export function uriSans(subjectAltName: string | undefined): string[] {
  const uris: string[] = [];
  if (subjectAltName === undefined) return uris;
  let i = 0;
  while (i < subjectAltName.length) {
    const colon = subjectAltName.indexOf(':', i);
    if (colon < 0) break;
    const type = subjectAltName.slice(i, colon);
    let end: number;
    if (subjectAltName[colon + 1] === '"') {
      // a quoted value ends at the first unescaped quote
      end = colon + 2;
      while (end < subjectAltName.length && subjectAltName[end] !== '"') end += subjectAltName[end] === '\\' ? 2 : 1;
      end += 1;
    } else {
      end = subjectAltName.indexOf(', ', colon + 1);
      if (end < 0) end = subjectAltName.length;
    }
    if (type === 'URI') uris.push(subjectAltName.slice(colon + 1, end));
    i = end + 2; // past ", "
  }
  return uris;
}

/** The facts of a connection; cert only when the handshake verified it. */
export function connectionFacts(remoteAddress: string, cert: X509Certificate | undefined): ConnectionFacts {
  if (cert === undefined) return { remoteAddress, cert: undefined, serial: undefined, thumbprint: undefined, spiffeId: undefined, notAfter: undefined };
  const uris = uriSans(cert.subjectAltName);
  const only = uris.length === 1 ? uris[0] : undefined;
  const notAfter = Date.parse(cert.validTo);
  return {
    remoteAddress,
    cert,
    serial: canonicalSerial(cert.serialNumber),
    thumbprint: certThumbprint(cert),
    spiffeId: only !== undefined && only.startsWith('spiffe://') ? only : undefined,
    // an unreadable date fails closed: the certificate counts as expired
    notAfter: Number.isNaN(notAfter) ? 0 : notAfter,
  };
}
