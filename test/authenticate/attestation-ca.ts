// A test attestation PKI: a root CA and an attestation leaf shaped as FIDO requires for packed
// attestation (OU "Authenticator Attestation", CA:false, v3), RSA keys from node:crypto, made
// with node-forge.
import { generateKeyPairSync, createPrivateKey, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

export interface AttestationPki {
  rootPem: string;
  rootDer: Buffer;
  leafDer: Buffer;
  leafKey: KeyObject;
}

function rsa(): { forgeKey: forge.pki.rsa.PrivateKey; pub: forge.pki.rsa.PublicKey; key: KeyObject } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs1' }) as string;
  const forgeKey = forge.pki.privateKeyFromPem(pem);
  return { forgeKey, pub: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), key: createPrivateKey(pem) };
}

function der(cert: forge.pki.Certificate): Buffer {
  return Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
}

export function makeAttestationPki(name = 'Test Vendor'): AttestationPki {
  const now = Date.now();
  const root = rsa();
  const rootCert = forge.pki.createCertificate();
  rootCert.publicKey = root.pub;
  rootCert.serialNumber = '01';
  rootCert.validity.notBefore = new Date(now - 86_400_000);
  rootCert.validity.notAfter = new Date(now + 5 * 365 * 86_400_000);
  const rootName = [{ name: 'commonName', value: `${name} Root` }, { name: 'organizationName', value: name }, { name: 'countryName', value: 'US' }];
  rootCert.setSubject(rootName);
  rootCert.setIssuer(rootName);
  rootCert.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }]);
  rootCert.sign(root.forgeKey, forge.md.sha256.create());

  const leaf = rsa();
  const leafCert = forge.pki.createCertificate();
  leafCert.publicKey = leaf.pub;
  leafCert.serialNumber = '02';
  leafCert.validity.notBefore = new Date(now - 86_400_000);
  leafCert.validity.notAfter = new Date(now + 365 * 86_400_000);
  leafCert.setSubject([
    { name: 'commonName', value: `${name} Key` },
    { name: 'organizationName', value: name },
    { shortName: 'OU', value: 'Authenticator Attestation' },
    { name: 'countryName', value: 'US' },
  ]);
  leafCert.setIssuer(rootName);
  leafCert.setExtensions([{ name: 'basicConstraints', cA: false, critical: true }]);
  leafCert.sign(root.forgeKey, forge.md.sha256.create());
  return { rootPem: forge.pki.certificateToPem(rootCert), rootDer: der(rootCert), leafDer: der(leafCert), leafKey: leaf.key };
}
