// WebAuthn registration (enrollment), one function per ceremony step (W3C WebAuthn L3 §7.1).
// The result is not stored here: enrollment stores it with its other factor, in one transaction.
import type { X509Certificate } from 'node:crypto';
import { generateRegistrationOptions, verifyRegistrationResponse, type PublicKeyCredentialCreationOptionsJSON, type RegistrationResponseJSON } from '@simplewebauthn/server';
import { decodeAttestationObject } from '@simplewebauthn/server/helpers';
import { GatehouseError } from '../../errors.js';
import type { Clock } from '../../lib/clock.js';
import { type Store } from '../../store/index.js';
import { consumeChallenge, issueChallenge } from '../challenges.js';
import { CREDENTIALS_PREFIX, type CredentialRecord } from '../types.js';
import { verifyAttestationTrust } from './attestation-trust.js';
import { b64url, checkAuthenticatorData, checkOrigin, isRecord, libraryRefusal, readClientData, type RelyingParty } from './common.js';

export interface AttestationPolicy {
  /** Lowercase AAGUIDs that may enroll; undefined: any model. Without attestation this is the authenticator's own claim. */
  allowedAAGUIDs: readonly string[] | undefined;
  requireAttestation: boolean;
  /** Attestation roots: a statement that chains to one marks the credential as proven hardware (hwk). */
  roots: readonly X509Certificate[];
}

export interface StartRegistrationOptions {
  store: Store;
  clock: Clock;
  rp: RelyingParty;
  userId: string;
  /** The enrollment (hash) the challenge belongs to. */
  bound: string;
  challengeTtlMs: number;
  excludeCredentialIds: readonly string[];
}

export async function startRegistration(o: StartRegistrationOptions): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const challenge = await issueChallenge(o.store, { clock: o.clock, ttlMs: o.challengeTtlMs, purpose: 'register', userId: o.userId, bound: o.bound });
  return generateRegistrationOptions({
    rpName: o.rp.name,
    rpID: o.rp.id,
    userName: o.userId,
    userID: new TextEncoder().encode(o.userId),
    userDisplayName: o.userId,
    // bytes, so the options carry exactly the base64url string stored (a string would be re-encoded)
    challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
    timeout: o.challengeTtlMs,
    attestationType: 'direct',
    excludeCredentials: o.excludeCredentialIds.map((id) => ({ id })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
    // ES256 and EdDSA: what hardware keys implement; RS256 for Windows Hello TPMs
    supportedAlgorithmIDs: [-7, -8, -257],
  });
}

export interface FinishRegistrationOptions extends Omit<StartRegistrationOptions, 'excludeCredentialIds'> {
  policy: AttestationPolicy;
  response: unknown;
}

/** Verifies the new credential; the result is what enrollment must persist once every factor is done. */
export async function finishRegistration(o: FinishRegistrationOptions): Promise<CredentialRecord> {
  if (!isRecord(o.response) || !isRecord(o.response.response) || typeof o.response.id !== 'string') throw new GatehouseError('ERR_WEBAUTHN_INVALID', 'expected a PublicKeyCredential JSON object');
  const inner = o.response.response;
  const clientData = readClientData(inner, 'webauthn.create');
  // The challenge must be ours, live, unused and issued to this enrollment
  await consumeChallenge(o.store, clientData.challenge, { purpose: 'register', userId: o.userId, bound: o.bound, clock: o.clock, ttlMs: o.challengeTtlMs });
  checkOrigin(o.rp, clientData.origin);
  const attestationObject = b64url(inner.attestationObject, 'attestationObject');
  let authData: Uint8Array<ArrayBuffer>;
  try {
    authData = decodeAttestationObject(attestationObject).get('authData');
  } catch {
    throw new GatehouseError('ERR_WEBAUTHN_INVALID', 'expected a CBOR attestationObject');
  }
  const parsed = checkAuthenticatorData(o.rp, authData);
  // Attested credential data must be present (AT)
  if (!parsed.flags.at || parsed.aaguid === undefined) throw new GatehouseError('ERR_WEBAUTHN_INVALID', 'expected attested credential data, got AT=0');
  const aaguid = aaguidString(parsed.aaguid);
  // The authenticator model must be allowed
  if (o.policy.allowedAAGUIDs !== undefined && !o.policy.allowedAAGUIDs.includes(aaguid)) throw new GatehouseError('ERR_WEBAUTHN_AAGUID', `expected an AAGUID in webauthn.allowedAAGUIDs, got ${aaguid}`);
  let verified;
  try {
    verified = await verifyRegistrationResponse({
      response: o.response as unknown as RegistrationResponseJSON,
      expectedChallenge: clientData.challenge,
      expectedOrigin: [...o.rp.origins],
      expectedRPID: o.rp.id,
      requireUserVerification: true,
      supportedAlgorithmIDs: [-7, -8, -257],
    });
  } catch (cause) {
    throw libraryRefusal(cause);
  }
  // The attestation statement's signature must verify
  if (!verified.verified) throw new GatehouseError('ERR_WEBAUTHN_INVALID', 'expected a verifying attestation statement');
  const info = verified.registrationInfo;
  // With requireAttestation the statement must chain to a trusted root; without, a chain that
  // does is still the only thing that proves the make (the AAGUID alone is the key's own claim)
  const attestationVerified = attested(attestationObject, o.policy, o.clock.now());
  const transports = Array.isArray(inner.transports) ? (inner.transports as unknown[]).filter((t): t is string => typeof t === 'string' && t.length < 32).slice(0, 8) : undefined;
  const record: CredentialRecord = {
    format: 1,
    id: info.credential.id,
    userId: o.userId,
    publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
    counter: info.credential.counter,
    aaguid,
    fmt: info.fmt,
    ...(transports !== undefined ? { transports } : {}),
    createdAt: o.clock.now(),
    attestationVerified,
  };
  // The credential id must be new (checked again when enrollment stores it)
  if ((await o.store.get(CREDENTIALS_PREFIX + record.id)) !== undefined) throw new GatehouseError('ERR_WEBAUTHN_INVALID', 'expected a new credential id, got one already registered');
  return record;
}

function attested(attestationObject: Uint8Array<ArrayBuffer>, policy: AttestationPolicy, now: number): boolean {
  if (policy.requireAttestation) {
    verifyAttestationTrust(attestationObject, policy.roots, now);
    return true;
  }
  if (policy.roots.length === 0) return false;
  try {
    verifyAttestationTrust(attestationObject, policy.roots, now);
    return true;
  } catch (err) {
    if (err instanceof GatehouseError && err.code === 'ERR_WEBAUTHN_ATTESTATION') return false;
    throw err;
  }
}

export function aaguidString(bytes: Uint8Array): string {
  const h = Buffer.from(bytes).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
