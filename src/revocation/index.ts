// Revocation (issue 6): revoke a session, user, token, certificate or service on every replica.
//
//   revoke(store, bus, {kind, id, reason, by}, clock)  store first (the authority), then the bus
//   RevocationSet.open({store, bus})                   every replica: store watch + bus subscription
//   revocationApiRoutes(app, deps)                     POST /.gatehouse/admin/api/revoke
export * from './types.js';
export { revoke, publishRevocation, parseRevokeRequest, canonicalId, type RevokeRequest, type RevokeResult } from './revoke.js';
export { RevocationSet, normalise, type RevocationSetOptions, type RevocationSetStats, type RevocationPath } from './revocation-set.js';
export { findSessionBySid, endSession, endSessionsOfUser, type SessionSummary } from './session-records.js';
export { revocationApiRoutes, authorizeRevoker, REVOKE_API_PATH, SECURITY_ADMIN, FRESH_MFA_MS, type AdminCaller, type RevocationApiDeps } from './admin-api.js';
