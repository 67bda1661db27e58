// With webauthn.requireAttestation, an attestation must carry an x5c chain that verifies to one
// of the configured roots at the current time. `none` and self attestation (packed without
// x5c) carry no proof of the authenticator's make, so they are refused. The library skips path
// validation when no roots are registered globally, so this check is Gatehouse's own.
import { X509Certificate } from 'node:crypto';
import { decodeAttestationObject } from '@simplewebauthn/server/helpers';
import { GatehouseError } from '../../errors.js';

function untrusted(why: string): GatehouseError {
  return new GatehouseError('ERR_WEBAUTHN_ATTESTATION', why);
}

export function verifyAttestationTrust(attestationObject: Uint8Array<ArrayBuffer>, roots: readonly X509Certificate[], now: number): { fmt: string } {
  const decoded = decodeAttestationObject(attestationObject);
  const fmt = decoded.get('fmt');
  // The format must carry a certificate chain
  if (fmt === 'none') throw untrusted('expected an attestation statement, got fmt none');
  const x5c = decoded.get('attStmt').get('x5c');
  // Self attestation (no x5c) proves nothing about the authenticator's make
  if (x5c === undefined || x5c.length === 0) throw untrusted(`expected an x5c certificate chain, got ${fmt} self attestation`);
  let chain: X509Certificate[];
  try {
    chain = x5c.map((der) => new X509Certificate(der));
  } catch {
    throw untrusted('expected DER certificates in x5c, got something else');
  }
  const at = new Date(now);
  for (const [i, cert] of chain.entries()) {
    // Every certificate must be valid now
    if (new Date(cert.validFrom) > at || new Date(cert.validTo) < at) throw untrusted(`expected x5c[${i}] valid at ${at.toISOString()}, got ${cert.validFrom} to ${cert.validTo}`);
  }
  // The attestation certificate must not be a CA
  if (chain[0]!.ca) throw untrusted('expected a leaf attestation certificate, got a CA certificate');
  for (let i = 0; i + 1 < chain.length; i++) {
    const [child, parent] = [chain[i]!, chain[i + 1]!];
    // Each certificate must be issued and signed by the next, which must be a CA
    if (!parent.ca || child.checkIssued(parent) === false || !child.verify(parent.publicKey)) throw untrusted(`expected x5c[${i}] to be signed by x5c[${i + 1}], got another issuer`);
  }
  const top = chain[chain.length - 1]!;
  // The top of the chain must be, or be signed by, a configured root
  const trusted = roots.some((root) => new Date(root.validTo) >= at && new Date(root.validFrom) <= at && (top.fingerprint256 === root.fingerprint256 || (root.ca && top.checkIssued(root) && top.verify(root.publicKey))));
  if (!trusted) throw untrusted('expected the chain to end at a webauthn.attestationRoots certificate, got an unknown issuer');
  return { fmt };
}
