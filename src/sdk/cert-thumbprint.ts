// RFC 8705 §3.1: base64url(SHA-256(DER certificate)), compared with the token's cnf.x5t#S256.
import { X509Certificate, createHash } from 'node:crypto';
import { TokenVerificationError } from './errors.js';

/** A DER certificate (Buffer, or `tlsSocket.getPeerCertificate().raw`), a PEM string, an X509Certificate, or a peer certificate object. */
export type ClientCertificate = Uint8Array | string | X509Certificate | { raw: Uint8Array };

export function certThumbprint(cert: ClientCertificate): string {
  let der: Uint8Array | undefined;
  if (cert instanceof X509Certificate) der = cert.raw;
  else if (typeof cert === 'string') {
    try {
      der = new X509Certificate(cert).raw;
    } catch (cause) {
      throw new TokenVerificationError('ERR_TOKEN_BINDING', 'the client certificate is not a PEM certificate', { cause });
    }
  } else if (cert instanceof Uint8Array) der = cert;
  else if (typeof cert === 'object' && cert !== null && cert.raw instanceof Uint8Array) der = cert.raw;
  if (der === undefined || der.length < 2 || der[0] !== 0x30) throw new TokenVerificationError('ERR_TOKEN_BINDING', 'the client certificate is not a DER certificate');
  return createHash('sha256').update(der).digest('base64url');
}
