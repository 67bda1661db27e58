// Revocation (issue 6): revoke a session, user, token, certificate or service on every replica.
//
//   revoke(store, bus, {kind, id, reason, by}, clock)  store first (the authority), then the bus
//   checkRevocationTarget(store, kind, id, {...})      an operator's revocation names a real user / this trust domain
//   liftRevocation(store, bus, {kind, id, by}, clock)  deletes the record, then broadcasts the lift
//   listRevocations(store, {kind?, now})               what the store holds
//   RevocationSet.open({store, bus})                   every replica: store watch + bus subscription
//   revocationApiRoutes(app, deps)                     POST .../api/revoke, POST .../api/revoke/lift, GET .../api/revocations
export * from './types.js';
export { revoke, publishRevocation, parseRevokeRequest, canonicalId, type RevokeRequest, type RevokeResult } from './revoke.js';
export { checkRevocationTarget, type TargetCheckOptions, type TargetCheckResult } from './check-target.js';
export { liftRevocation, parseLiftRequest, type LiftRequest, type LiftResult } from './lift.js';
export { listRevocations, type ListedRevocation, type RevocationList } from './list.js';
export { revokeTarget, liftTarget } from './operator-events.js';
export { RevocationSet, normalise, type RevocationSetOptions, type RevocationSetStats, type RevocationPath } from './revocation-set.js';
export { findSessionBySid, endSession, endSessionsOfUser, type SessionSummary } from './session-records.js';
export {
  revocationApiRoutes, authorizeRevoker, REVOKE_API_PATH, LIFT_API_PATH, REVOCATIONS_API_PATH, SECURITY_ADMIN, FRESH_MFA_MS, type AdminCaller, type RevocationApiDeps,
} from './admin-api.js';
