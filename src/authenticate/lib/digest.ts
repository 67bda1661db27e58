// Secrets (session ids, login cookies, enrollment tokens, challenges) are stored only as SHA-256.
import { createHash, randomBytes } from 'node:crypto';

export function sha256hex(value: string | Uint8Array): string {
  return createHash('sha256').update(value).digest('hex');
}

/** 256 random bits, base64url (43 characters). */
export function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A secret as it may appear in a cookie or link: base64url, 43 characters. */
export function isSecretShape(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9_-]{43}$/.test(v);
}
