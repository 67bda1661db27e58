// What registration and authentication share: the relying party, and the checks of
// clientDataJSON and authenticatorData done here (not only inside the library) so each
// refusal has its own code and says what was expected and what came.
import { createHash } from 'node:crypto';
import { parseAuthenticatorData, type ParsedAuthenticatorData } from '@simplewebauthn/server/helpers';
import { GatehouseError } from '../../errors.js';

export interface RelyingParty {
  id: string;
  name: string;
  /** Exact origins (scheme://host[:port]) pages may run WebAuthn from. */
  origins: readonly string[];
}

export interface ClientData {
  type: string;
  challenge: string;
  origin: string;
}

function invalid(message: string): GatehouseError {
  return new GatehouseError('ERR_WEBAUTHN_INVALID', message);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function b64url(v: unknown, what: string, max = 64 * 1024): Uint8Array<ArrayBuffer> {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || !/^[A-Za-z0-9_-]+={0,2}$/.test(v)) throw invalid(`expected ${what} as base64url, got something else`);
  return new Uint8Array(Buffer.from(v, 'base64url'));
}

export function readClientData(response: Record<string, unknown>, type: 'webauthn.create' | 'webauthn.get'): ClientData {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(b64url(response.clientDataJSON, 'clientDataJSON')).toString('utf8'));
  } catch (err) {
    if (err instanceof GatehouseError) throw err;
    throw invalid('expected clientDataJSON to be JSON, got something else');
  }
  if (!isRecord(parsed) || typeof parsed.type !== 'string' || typeof parsed.challenge !== 'string' || typeof parsed.origin !== 'string') {
    throw invalid('expected clientDataJSON with type, challenge and origin');
  }
  // The ceremony type must be the one this step runs
  if (parsed.type !== type) throw invalid(`expected clientData.type ${type}, got ${parsed.type.slice(0, 40)}`);
  return { type: parsed.type, challenge: parsed.challenge, origin: parsed.origin };
}

export function checkOrigin(rp: RelyingParty, origin: string): void {
  // The origin must be exactly one we serve (no suffix or prefix matching)
  if (!rp.origins.includes(origin)) throw new GatehouseError('ERR_WEBAUTHN_ORIGIN', `expected an origin in ${rp.origins.join(' ')}, got ${origin.slice(0, 200)}`);
}

export function checkAuthenticatorData(rp: RelyingParty, authData: Uint8Array<ArrayBuffer>): ParsedAuthenticatorData {
  let parsed: ParsedAuthenticatorData;
  try {
    parsed = parseAuthenticatorData(authData);
  } catch {
    throw invalid('expected well-formed authenticatorData');
  }
  // The RP ID hash must be SHA-256 of our RP ID
  const expected = createHash('sha256').update(rp.id).digest();
  if (!expected.equals(Buffer.from(parsed.rpIdHash))) throw new GatehouseError('ERR_WEBAUTHN_RP_ID', `expected rpIdHash of ${rp.id}, got another`);
  // The user must have been present (UP)
  if (!parsed.flags.up) throw invalid('expected the user-present flag, got UP=0');
  // The authenticator must have verified the user (UV: fingerprint, face or PIN)
  if (!parsed.flags.uv) throw new GatehouseError('ERR_WEBAUTHN_USER_VERIFICATION', 'expected the user-verified flag, got UV=0');
  return parsed;
}

/** The library's own checks repeat ours; its message is kept out of responses. */
export function libraryRefusal(cause: unknown): GatehouseError {
  return new GatehouseError('ERR_WEBAUTHN_INVALID', 'the WebAuthn response did not verify', { cause });
}
