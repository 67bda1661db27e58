// gatehouse/sdk — verify, in an upstream service, the token Gatehouse attaches to each request.
// Imports nothing from the rest of Gatehouse: only node and jose.
//
//   import { createVerifier, bearerToken } from 'gatehouse/sdk';
//   const verifier = createVerifier({
//     jwksUrl: 'https://gatehouse.internal:9443/.well-known/jwks.json',
//     issuer: 'https://gatehouse.internal',
//     audience: 'spiffe://example.org/ns/payments/sa/ledger',
//     tls: { ca: caPem, cert: myCertPem, key: myKeyPem },
//   });
//   const claims = await verifier.verify(bearerToken(req.headers.authorization), {
//     clientCertificate: req.socket.getPeerCertificate().raw,   // when callers reach you over mTLS
//   });
//   // claims.sub, claims.roles, claims.ns ...; failures are TokenVerificationError with a code.
export { createVerifier, bearerToken, type VerifierOptions, type VerifyCallOptions, type TokenVerifier, type GatehouseClaims } from './create-verifier.js';
export { certThumbprint, type ClientCertificate } from './cert-thumbprint.js';
export { TokenVerificationError, isTokenVerificationError, TOKEN_ERROR_CODES, type TokenErrorCode } from './errors.js';
export { type JwksFetch, type JwksResponse, type JwksTlsOptions } from './jwks-cache.js';
