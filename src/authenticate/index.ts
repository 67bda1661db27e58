// authenticate: who is calling. Services by client certificate (service.ts); people by WebAuthn
// with user verification plus a hardware OTP token, and sessions kept in the store.
export { SessionManager, type SessionManagerOptions, type SessionView, type NewSession } from './sessions.js';
export { humanRoutes, renderRefusal, GATEWAY_PREFIX, VERIFY_PATH, type HumanRoutes, type HumanRoutesOptions } from './http/plugin.js';
export { hostOnly, originCheck, type ForwardedRequest, type ForwardedVerdict } from './http/context.js';
export { readCookie } from './lib/cookies.js';
export { Regulator, type RegulationPolicy } from './regulation.js';
export { addUser, listUsers, disableUser, enableUser, deleteUser, changeRoles, addRoles, removeRoles, getUser, issueEnrollment, parseRoles, assertUserId, endSessionsOf, endSessionsOfCredential } from './users.js';
export { listAuthenticators, removeCredential, type CredentialSummary, type UserAuthenticators } from './credentials.js';
export { importTokens, assignToken, unassignToken, verifyTotp, type SealedImport } from './totp/tokens.js';
export { parseSeedFile, type ImportedSeed } from './totp/import.js';
export { sealSeed, openSeed } from './totp/seed.js';
export { factorsFor, type MfaPolicy } from './factors.js';
export { safeReturnTo, type ReturnPolicy } from './redirect.js';
export * from './types.js';
