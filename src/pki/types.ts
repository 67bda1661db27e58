import type { KeyObject, X509Certificate } from 'node:crypto';
import type forge from 'node-forge';
import { CA_ISSUED_PREFIX, REVOKED_CERT_PREFIX } from '../store/keys.js';

/** A loaded CA: what issuing, CRL signing and trust configuration need. */
export interface CertificateAuthority {
  /** The folder it was loaded from (undefined for one built in memory). */
  readonly dir: string | undefined;
  readonly trustDomain: string;
  /** The CA certificate; give it to TLS as `ca` to trust what this CA issues. */
  readonly certPem: string;
  readonly certificate: X509Certificate;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The subjectKeyIdentifier, lowercase hex: every issued certificate and CRL names it as authorityKeyIdentifier. */
  readonly keyId: string;
  /** The signing key. Never logged, never serialised. */
  readonly privateKey: KeyObject;
  /** The parsed certificate, for building what it signs (issuer name). */
  readonly forgeCertificate: forge.pki.Certificate;
}

/** A freshly issued certificate and its key: the caller persists keyPem (0600) and may record serial/notAfter for revocation. */
export interface IssuedCertificate {
  keyPem: string;
  certPem: string;
  caPem: string;
  /** Lowercase hex, the canonical serial (see canonicalSerial). */
  serial: string;
  /** The certificate's URI SAN. */
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
}

/** Files in pki.dir. */
export const CA_FILES = { cert: 'ca.pem', key: 'ca.key', kek: 'kek' } as const;

/** RFC 5280 5.3.1 reasons Gatehouse records (certificateHold and removeFromCRL are not used: revocation is final). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

/** The value stored at /gatehouse/revoked/cert/<serial>. */
export interface CertRevocation {
  serial: string;
  /** ISO 8601. */
  revokedAt: string;
  reason: RevocationReason;
  /** ISO 8601: the certificate's own expiry; the record's lease ends a grace period after it. */
  notAfter: string;
}

/** The value stored at /gatehouse/ca/issued/<serial>: what `cert revoke` needs to know about a certificate. */
export interface IssuedRecord {
  serial: string;
  spiffeId: string;
  /** ISO 8601. */
  notBefore: string;
  /** ISO 8601. */
  notAfter: string;
  /** ISO 8601. */
  issuedAt: string;
}

/** The CA's keys (named in src/store/keys.ts). */
export const STORE_KEYS = {
  revokedCertPrefix: REVOKED_CERT_PREFIX,
  issuedPrefix: CA_ISSUED_PREFIX,
} as const;
