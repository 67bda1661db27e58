// Service identity: the SPIFFE ID in the client certificate the TLS handshake verified.
// The handshake already refused missing, foreign and expired certificates; this reads the
// identity strictly and checks revocation on every request (a Set lookup).
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { GatehouseError } from '../errors.js';
import type { Principal } from '../contracts/authz.js';
import { parseSpiffeId } from '../pki/spiffe.js';
import { canonicalSerial } from '../pki/lib/serial.js';

export interface ServiceIdentityOptions {
  trustDomain: string;
  isRevoked(serial: string): boolean;
}

type Identity = Extract<Principal, { kind: 'service' }>;

/** Reads the one URI SAN; Node quotes values containing separators, which we refuse outright. */
function onlySpiffeUri(subjectAltName: string | undefined): string | undefined {
  if (subjectAltName === undefined) return undefined;
  const entries = subjectAltName.split(', ');
  if (entries.length !== 1) return undefined;
  const [entry] = entries;
  if (entry === undefined || !entry.startsWith('URI:spiffe://')) return undefined;
  return entry.slice(4);
}

export function serviceIdentity(options: ServiceIdentityOptions): (req: IncomingMessage) => Principal | GatehouseError {
  // A connection's certificate never changes, so it is parsed once per connection.
  const perSocket = new WeakMap<TLSSocket, Identity | GatehouseError>();

  function fromSocket(socket: TLSSocket): Identity | GatehouseError {
    if (typeof socket.getPeerX509Certificate !== 'function' || !socket.authorized) {
      return new GatehouseError('ERR_CERT_REQUIRED');
    }
    const cert = socket.getPeerX509Certificate();
    if (cert === undefined) return new GatehouseError('ERR_CERT_REQUIRED');
    const uri = onlySpiffeUri(cert.subjectAltName);
    const serial = canonicalSerial(cert.serialNumber);
    if (uri === undefined || serial === undefined) return new GatehouseError('ERR_CERT_INVALID', 'the certificate must carry exactly one SPIFFE ID');
    try {
      const id = parseSpiffeId(uri);
      if (id.trustDomain !== options.trustDomain) return new GatehouseError('ERR_CERT_INVALID', 'the certificate names another trust domain');
      return { kind: 'service', spiffeId: uri, namespace: id.namespace, service: id.service, certSerial: serial };
    } catch {
      return new GatehouseError('ERR_CERT_INVALID', 'the certificate SPIFFE ID is malformed');
    }
  }

  return (req) => {
    const socket = req.socket as TLSSocket;
    let id = perSocket.get(socket);
    if (id === undefined) {
      id = fromSocket(socket);
      perSocket.set(socket, id);
    }
    if (id instanceof GatehouseError) return id;
    if (options.isRevoked(id.certSerial)) return new GatehouseError('ERR_CERT_REVOKED');
    return id;
  };
}
