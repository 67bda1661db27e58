// RFC 8705 §3.1: base64url(SHA-256(DER certificate)), compared with the token's cnf.x5t#S256.
// Gatehouse's own certThumbprint (src/tokens/cert-thumbprint.ts) is this function with its own error.
import { X509Certificate, createHash } from 'node:crypto';
import { TokenVerificationError } from './errors.js';

/** A DER certificate (Buffer, or `tlsSocket.getPeerCertificate().raw`), a PEM string, an X509Certificate, or a peer certificate object. */
export type ClientCertificate = Uint8Array | string | X509Certificate | { raw: Uint8Array };

/** The thumbprint; `fail` builds the error for what is not a certificate. */
export function thumbprintOf(cert: ClientCertificate, fail: (message: string, cause?: unknown) => Error): string {
  let der: Uint8Array;
  if (cert instanceof X509Certificate) der = cert.raw;
  else if (typeof cert === 'string') {
    try {
      der = new X509Certificate(cert).raw;
    } catch (cause) {
      throw fail('the client certificate is not a PEM certificate', cause);
    }
  } else if (cert instanceof Uint8Array) der = cert;
  else if (typeof cert === 'object' && cert !== null && cert.raw instanceof Uint8Array) der = cert.raw;
  else throw fail('certThumbprint needs a DER or PEM certificate');
  // A DER certificate is a SEQUENCE; anything else is a caller mistake, not a certificate.
  if (der.length < 2 || der[0] !== 0x30) throw fail('the client certificate is not a DER certificate');
  return createHash('sha256').update(der).digest('base64url');
}

/** Throws TokenVerificationError ERR_TOKEN_BINDING for what is not a certificate. */
export function certThumbprint(cert: ClientCertificate): string {
  return thumbprintOf(cert, (message, cause) => new TokenVerificationError('ERR_TOKEN_BINDING', message, cause === undefined ? {} : { cause }));
}
