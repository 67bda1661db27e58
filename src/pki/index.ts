// The CA: SPIFFE IDs, issuing and renewing certificates, revocation and the CRL.
export * from './types.js';
export {
  spiffeId, parseSpiffeId, tryParseSpiffeId, trustDomainId, trustDomainOfId, isDnsLabel, isTrustDomain, spiffeIdOfSubjectAltName, uriSubjectAltNames, type SpiffeIdParts,
} from './spiffe.js';
export { initCa, CA_KEY_BITS, type InitCaOptions } from './init-ca.js';
export { loadCa } from './load-ca.js';
export { issueCertificate, DEFAULT_CERT_TTL_MS, type IssueCertificateOptions } from './issue-certificate.js';
export { issueServerCertificate, gatewaySpiffeId, listenerHosts, type IssueServerCertificateOptions } from './issue-server-certificate.js';
export { startServerCertificateManager, type ServerCertificateManager, type ServerCertificateManagerOptions, type ServerCredentials } from './server-certificate-manager.js';
export { revokeCertificate, revokedCertKey, REVOCATION_GRACE_MS, type RevokeCertificateOptions, type RevokeCertificateResult } from './revoke-certificate.js';
export { recordIssued, lookupIssued, issuedKey } from './issued-index.js';
export { CertRevocationList, type CertRevocationListOptions } from './revocation-list.js';
export { buildCrl, type BuildCrlOptions, type CrlEntry } from './build-crl.js';
export { crlPublisher, type CrlPublisher, type CrlPublisherOptions } from './crl-publisher.js';
export { writeCertificateFiles, CERT_FILES } from './write-certificate-files.js';
export { canonicalSerial } from './lib/serial.js';
export { LEAF_KEY_BITS, CLOCK_SKEW_MS } from './lib/leaf.js';
