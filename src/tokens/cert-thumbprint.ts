// RFC 8705 §3.1: the base64url SHA-256 of the DER certificate, as it appears in cnf.x5t#S256.
// The computation is the SDK's; here a non-certificate is the gateway's ERR_BAD_REQUEST.
import { GatehouseError } from '../errors.js';
import { thumbprintOf, type ClientCertificate } from '../sdk/cert-thumbprint.js';

/** A DER certificate (Buffer, or a TLS peer certificate's `raw`), a PEM string, or an X509Certificate. */
export type CertificateInput = ClientCertificate;

export const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

export function certThumbprint(cert: CertificateInput): string {
  return thumbprintOf(cert, (message, cause) => new GatehouseError('ERR_BAD_REQUEST', message, cause === undefined ? {} : { cause }));
}
