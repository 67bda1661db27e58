// WebAuthn authentication (sign-in and step-up), one function per ceremony step (W3C WebAuthn
// L3 §7.2). The signature counter must increase unless the authenticator always reports 0; a
// counter that goes backwards locks the credential (a clone is suspected). The writes of a
// verified assertion (consume the challenge, move the counter) are returned guarded, so a
// sign-in commits them in one transaction with its own.
import { generateAuthenticationOptions, verifyAuthenticationResponse, type AuthenticationResponseJSON, type PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { GatehouseError } from '../../errors.js';
import type { Clock } from '../../lib/clock.js';
import { type Store } from '../../store/index.js';
import { CONFLICT, retryOnConflict } from '../../store/update.js';
import { issueChallenge, takeChallenge } from '../challenges.js';
import { commit, readRecord, unchanged, type Writes } from '../lib/records.js';
import { CREDENTIALS_PREFIX, USERS_PREFIX, type ChallengeRecord, type CredentialRecord, type UserRecord } from '../types.js';
import { b64url, checkAuthenticatorData, checkOrigin, isRecord, libraryRefusal, readClientData, type RelyingParty } from './common.js';

export interface StartAuthenticationOptions {
  store: Store;
  clock: Clock;
  rp: RelyingParty;
  purpose: Extract<ChallengeRecord['purpose'], 'login' | 'step-up'>;
  userId: string;
  bound: string;
  challengeTtlMs: number;
  /** The user's credential ids (or stand-ins for an unknown user, so options do not reveal who exists). */
  credentialIds: readonly string[];
}

export async function startAuthentication(o: StartAuthenticationOptions): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const challenge = await issueChallenge(o.store, { clock: o.clock, ttlMs: o.challengeTtlMs, purpose: o.purpose, userId: o.userId, bound: o.bound });
  return authenticationOptions({ rp: o.rp, challenge, challengeTtlMs: o.challengeTtlMs, credentialIds: o.credentialIds });
}

/** The options the browser gets for a challenge the caller stores (newChallenge). */
export function authenticationOptions(o: Pick<StartAuthenticationOptions, 'rp' | 'challengeTtlMs' | 'credentialIds'> & { challenge: string }): Promise<PublicKeyCredentialRequestOptionsJSON> {
  return generateAuthenticationOptions({
    rpID: o.rp.id,
    // bytes, so the options carry exactly the base64url string stored (a string would be re-encoded)
    challenge: new Uint8Array(Buffer.from(o.challenge, 'base64url')),
    timeout: o.challengeTtlMs,
    userVerification: 'required',
    allowCredentials: o.credentialIds.map((id) => ({ id })),
  });
}

export interface FinishAuthenticationOptions extends Omit<StartAuthenticationOptions, 'credentialIds'> {
  response: unknown;
}

export interface AuthenticationResult {
  credential: CredentialRecord;
  at: number;
}

export interface Assertion extends AuthenticationResult {
  /** Consume the challenge and store the credential's new counter, guarded by both being as read. */
  writes: Writes;
  /** Set when the counter went backwards: committing `writes` locks the credential; then throw this. */
  refusal?: GatehouseError;
}

/**
 * Verifies an assertion against the store; commits nothing when it passes (the caller commits
 * `writes`, with its own). An assertion that fails a check consumes its challenge.
 */
export async function verifyAssertion(o: FinishAuthenticationOptions): Promise<Assertion> {
  if (!isRecord(o.response) || !isRecord(o.response.response) || typeof o.response.id !== 'string') throw new GatehouseError('ERR_WEBAUTHN_INVALID', 'expected a PublicKeyCredential JSON object');
  const inner = o.response.response;
  const clientData = readClientData(inner, 'webauthn.get');
  // The challenge must be ours, live, unused and issued to this sign-in
  const challenge = await takeChallenge(o.store, clientData.challenge, { purpose: o.purpose, userId: o.userId, bound: o.bound, clock: o.clock, ttlMs: o.challengeTtlMs });
  const credentialId = o.response.id;
  let stored;
  let counter;
  try {
    checkOrigin(o.rp, clientData.origin);
    if (!/^[A-Za-z0-9_-]{16,1364}$/.test(credentialId)) throw new GatehouseError('ERR_WEBAUTHN_UNKNOWN_CREDENTIAL', 'expected a registered credential id, got a malformed one');
    const [record, owner] = await Promise.all([readRecord<CredentialRecord>(o.store, CREDENTIALS_PREFIX + credentialId), readRecord<UserRecord>(o.store, USERS_PREFIX + o.userId)]);
    stored = record;
    // The credential must be registered to this user, and the user must still list it (a removed key, a deleted user's leftovers)
    if (stored === undefined || stored.value.userId !== o.userId || !(owner?.value.credentialIds ?? []).includes(credentialId)) throw new GatehouseError('ERR_WEBAUTHN_UNKNOWN_CREDENTIAL', `expected a credential of ${o.userId}, got an unknown one`);
    // It must not be locked
    if (stored.value.lockedAt !== undefined) throw new GatehouseError('ERR_WEBAUTHN_CREDENTIAL_LOCKED', 'expected an unlocked credential, got one locked after a counter regression');
    counter = checkAuthenticatorData(o.rp, b64url(inner.authenticatorData, 'authenticatorData')).counter;
    // The signature must verify with the registered public key
    await checkSignature(o, clientData.challenge, credentialId, stored.value.publicKey);
  } catch (err) {
    await commit(o.store, challenge);
    throw err;
  }
  const c = stored.value;
  const now = o.clock.now();
  const key = CREDENTIALS_PREFIX + credentialId;
  // The counter must increase, unless the authenticator always reports 0
  const regressed = (counter > 0 || c.counter > 0) && counter <= c.counter;
  const next: CredentialRecord = regressed ? { ...c, lockedAt: now } : { ...c, counter, lastUsedAt: now };
  return {
    credential: next,
    at: now,
    writes: { compares: [...challenge.compares, unchanged(key, stored)], ops: [...challenge.ops, { op: 'put', key, value: JSON.stringify(next) }] },
    ...(regressed ? { refusal: new GatehouseError('ERR_WEBAUTHN_COUNTER', `expected a signature counter above ${c.counter}, got ${counter}: credential locked`, { details: { credentialId, stored: c.counter, got: counter } }) } : {}),
  };
}

async function checkSignature(o: FinishAuthenticationOptions, challenge: string, credentialId: string, publicKey: string): Promise<void> {
  let verified;
  try {
    verified = await verifyAuthenticationResponse({
      response: o.response as AuthenticationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: [...o.rp.origins],
      expectedRPID: o.rp.id,
      requireUserVerification: true,
      // counter 0 here: the counter is judged after the signature, with its own code
      credential: { id: credentialId, publicKey: Buffer.from(publicKey, 'base64url'), counter: 0 },
    });
  } catch (cause) {
    throw libraryRefusal(cause);
  }
  if (!verified.verified) throw new GatehouseError('ERR_WEBAUTHN_INVALID', 'expected a valid assertion signature');
}

/** Verifies an assertion and commits its writes alone, again from the start when another writer came first. */
export async function finishAuthentication(o: FinishAuthenticationOptions): Promise<AuthenticationResult> {
  return retryOnConflict('credential counter', async () => {
    const a = await verifyAssertion(o);
    if ((await commit(o.store, a.writes)) === undefined) return CONFLICT;
    if (a.refusal !== undefined) throw a.refusal;
    return { credential: a.credential, at: a.at };
  });
}
