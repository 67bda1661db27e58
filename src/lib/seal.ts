// The one way Gatehouse seals secrets at rest under the key-encryption key (signing keys, the
// audit key, OTP seeds): AES-256-GCM with a fresh random 96-bit nonce, and additional
// authenticated data that names what was sealed and for whom, so a sealed value copied to
// another record does not open. Sealed form: "v1." + base64url(nonce[12] || ciphertext || tag[16]).
import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { GatehouseError } from '../errors.js';

export const SEAL_VERSION = 'v1';
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

/** The AAD of each kind of sealed secret; the text is part of every stored value, so never change one. */
export const SEAL_AAD = {
  /** A token signing key (kid), or the audit key ("audit/<kid>"). */
  signingKey: (name: string): string => `gatehouse/signing-key/${SEAL_VERSION}/${name}`,
  /** An OTP token's seed (serial). */
  totpSeed: (serial: string): string => `gatehouse/totp-seed/${SEAL_VERSION}/${serial}`,
} as const;

/** Builds the caller's own coded error for a value that does not open. */
export type Unsealable = (why: string, cause?: unknown) => GatehouseError;

export function assertKek(kek: KeyObject): void {
  if (kek.type !== 'secret' || kek.symmetricKeySize !== 32) {
    throw new GatehouseError('ERR_TOKEN_KEK_INVALID', 'the KEK must be a 32-byte secret key (see loadKek)');
  }
}

export function seal(kek: KeyObject, aad: string, plain: Uint8Array): string {
  assertKek(kek);
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  return `${SEAL_VERSION}.${body.toString('base64url')}`;
}

/** The plain bytes (the caller zeroes them when done); `refuse` names the failure in the caller's terms. */
export function openSealed(kek: KeyObject, aad: string, sealed: string, refuse: Unsealable): Buffer {
  assertKek(kek);
  const prefix = `${SEAL_VERSION}.`;
  if (typeof sealed !== 'string' || !sealed.startsWith(prefix)) throw refuse('not sealed with a known version');
  const body = Buffer.from(sealed.slice(prefix.length), 'base64url');
  if (body.length <= NONCE_BYTES + TAG_BYTES) throw refuse('too short to be sealed');
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, body.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    return Buffer.concat([decipher.update(body.subarray(NONCE_BYTES, body.length - TAG_BYTES)), decipher.final()]);
  } catch (cause) {
    throw refuse('authentication failed (another KEK, or the sealed value was changed or moved)', cause);
  }
}
