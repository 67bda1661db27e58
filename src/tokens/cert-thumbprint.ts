// RFC 8705 §3.1: the base64url SHA-256 of the DER certificate, as it appears in cnf.x5t#S256.
import { X509Certificate, createHash } from 'node:crypto';
import { GatehouseError } from '../errors.js';

/** A DER certificate (Buffer, or a TLS peer certificate's `raw`), a PEM string, or an X509Certificate. */
export type CertificateInput = Uint8Array | string | X509Certificate | { raw: Uint8Array };

export const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

export function certThumbprint(cert: CertificateInput): string {
  let der: Uint8Array;
  if (cert instanceof X509Certificate) der = cert.raw;
  else if (typeof cert === 'string') {
    try {
      der = new X509Certificate(cert).raw;
    } catch (cause) {
      throw new GatehouseError('ERR_BAD_REQUEST', 'not a PEM certificate', { cause });
    }
  } else if (cert instanceof Uint8Array) der = cert;
  else if (typeof cert === 'object' && cert !== null && cert.raw instanceof Uint8Array) der = cert.raw;
  else throw new GatehouseError('ERR_BAD_REQUEST', 'certThumbprint needs a DER or PEM certificate');
  // A DER certificate is a SEQUENCE; anything else is a caller mistake, not a certificate.
  if (der.length < 2 || der[0] !== 0x30) throw new GatehouseError('ERR_BAD_REQUEST', 'not a DER certificate');
  return createHash('sha256').update(der).digest('base64url');
}
