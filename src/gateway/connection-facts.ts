// What a connection's verified client certificate says, read once at the handshake.
import type { X509Certificate } from 'node:crypto';
import { canonicalSerial } from '../pki/lib/serial.js';
import { spiffeIdOfSubjectAltName, uriSubjectAltNames } from '../pki/spiffe.js';
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

/** The URI SANs in Node's subjectAltName text: pki/spiffe's reader (kept under this name for the gateway's tests). */
export { uriSubjectAltNames as uriSans };

/** The facts of a connection; cert only when the handshake verified it. */
export function connectionFacts(remoteAddress: string, cert: X509Certificate | undefined): ConnectionFacts {
  if (cert === undefined) return { remoteAddress, cert: undefined, serial: undefined, thumbprint: undefined, spiffeId: undefined, notAfter: undefined };
  const notAfter = Date.parse(cert.validTo);
  return {
    remoteAddress,
    cert,
    serial: canonicalSerial(cert.serialNumber),
    thumbprint: certThumbprint(cert),
    spiffeId: spiffeIdOfSubjectAltName(cert.subjectAltName),
    // an unreadable date fails closed: the certificate counts as expired
    notAfter: Number.isNaN(notAfter) ? 0 : notAfter,
  };
}
