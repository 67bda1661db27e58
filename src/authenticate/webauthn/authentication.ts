// WebAuthn authentication (sign-in and step-up), one function per ceremony step (W3C WebAuthn
// L3 §7.2). The signature counter must increase unless the authenticator always reports 0; a
// counter that goes backwards locks the credential (a clone is suspected).
import { generateAuthenticationOptions, verifyAuthenticationResponse, type AuthenticationResponseJSON, type PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { GatehouseError, isGatehouseError } from '../../errors.js';
import type { Clock } from '../../lib/clock.js';
import { type Store } from '../../store/index.js';
import { consumeChallenge, issueChallenge } from '../challenges.js';
import { readRecord } from '../lib/records.js';
import { CREDENTIALS_PREFIX, type ChallengeRecord, type CredentialRecord } from '../types.js';
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
  return generateAuthenticationOptions({
    rpID: o.rp.id,
    // bytes, so the options carry exactly the base64url string stored (a string would be re-encoded)
    challenge: new Uint8Array(Buffer.from(challenge, 'base64url')),
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

export async function finishAuthentication(o: FinishAuthenticationOptions): Promise<AuthenticationResult> {
  if (!isRecord(o.response) || !isRecord(o.response.response) || typeof o.response.id !== 'string') throw new GatehouseError('ERR_WEBAUTHN_INVALID', 'expected a PublicKeyCredential JSON object');
  const inner = o.response.response;
  const clientData = readClientData(inner, 'webauthn.get');
  // The challenge must be ours, live, unused and issued to this sign-in
  await consumeChallenge(o.store, clientData.challenge, { purpose: o.purpose, userId: o.userId, bound: o.bound, clock: o.clock, ttlMs: o.challengeTtlMs });
  checkOrigin(o.rp, clientData.origin);
  const credentialId = o.response.id;
  if (!/^[A-Za-z0-9_-]{16,1364}$/.test(credentialId)) throw new GatehouseError('ERR_WEBAUTHN_UNKNOWN_CREDENTIAL', 'expected a registered credential id, got a malformed one');
  const stored = await readRecord<CredentialRecord>(o.store, CREDENTIALS_PREFIX + credentialId);
  // The credential must be registered to this user
  if (stored === undefined || stored.value.userId !== o.userId) throw new GatehouseError('ERR_WEBAUTHN_UNKNOWN_CREDENTIAL', `expected a credential of ${o.userId}, got an unknown one`);
  // It must not be locked
  if (stored.value.lockedAt !== undefined) throw new GatehouseError('ERR_WEBAUTHN_CREDENTIAL_LOCKED', 'expected an unlocked credential, got one locked after a counter regression');
  const parsed = checkAuthenticatorData(o.rp, b64url(inner.authenticatorData, 'authenticatorData'));
  let verified;
  try {
    verified = await verifyAuthenticationResponse({
      response: o.response as unknown as AuthenticationResponseJSON,
      expectedChallenge: clientData.challenge,
      expectedOrigin: [...o.rp.origins],
      expectedRPID: o.rp.id,
      requireUserVerification: true,
      // counter 0 here: the counter is judged below, after the signature, with its own code
      credential: { id: credentialId, publicKey: Buffer.from(stored.value.publicKey, 'base64url'), counter: 0 },
    });
  } catch (cause) {
    throw libraryRefusal(cause);
  }
  // The signature must verify with the registered public key
  if (!verified.verified) throw new GatehouseError('ERR_WEBAUTHN_INVALID', 'expected a valid assertion signature');
  return recordUse(o.store, credentialId, parsed.counter, o.clock);
}

/** Moves the counter forward with compare-and-swap; a counter that does not move forward locks the credential. */
async function recordUse(store: Store, credentialId: string, counter: number, clock: Clock): Promise<AuthenticationResult> {
  const key = CREDENTIALS_PREFIX + credentialId;
  for (let i = 0; i < 8; i++) {
    const cur = await readRecord<CredentialRecord>(store, key);
    if (cur === undefined) throw new GatehouseError('ERR_WEBAUTHN_UNKNOWN_CREDENTIAL', 'the credential was removed meanwhile');
    const c = cur.value;
    if (c.lockedAt !== undefined) throw new GatehouseError('ERR_WEBAUTHN_CREDENTIAL_LOCKED', 'expected an unlocked credential, got one locked after a counter regression');
    const now = clock.now();
    // The counter must increase, unless the authenticator always reports 0
    const regressed = (counter > 0 || c.counter > 0) && counter <= c.counter;
    const next: CredentialRecord = regressed ? { ...c, lockedAt: now } : { ...c, counter, lastUsedAt: now };
    try {
      await store.put(key, JSON.stringify(next), { ifModRevision: cur.modRevision });
    } catch (err) {
      if (isGatehouseError(err, 'ERR_STORE_CONFLICT')) continue;
      throw err;
    }
    if (regressed) {
      throw new GatehouseError('ERR_WEBAUTHN_COUNTER', `expected a signature counter above ${c.counter}, got ${counter}: credential locked`, { details: { credentialId, stored: c.counter, got: counter } });
    }
    return { credential: next, at: now };
  }
  throw new GatehouseError('ERR_STORE_CONFLICT', 'credential counter: too many concurrent writers', { retryable: true });
}
