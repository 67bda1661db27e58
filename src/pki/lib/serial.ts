// Certificate serial numbers: 16 random bytes, positive, and one canonical text form.
import { randomBytes } from 'node:crypto';

/**
 * A fresh serial as 32 lowercase hex digits. The first byte is forced into 0x40..0x7f so the
 * INTEGER is positive without a padding byte and always prints as 32 digits (126 random bits;
 * RFC 5280 asks for at most 20 octets, the CA/B Forum for at least 64 random bits).
 */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.toString('hex');
}

const CANONICAL = /^[0-9a-f]{32}$/;

/**
 * The canonical form of a serial given as hex in any common spelling (upper case as Node's
 * X509Certificate.serialNumber prints it, colon-separated as openssl prints it, leading zero
 * bytes): lowercase hex without separators or leading zero bytes. Undefined if it is not a
 * positive serial of at most 20 octets.
 */
export function canonicalSerial(input: string): string | undefined {
  if (typeof input !== 'string') return undefined;
  if (CANONICAL.test(input) && !input.startsWith('00')) return input; // fast path: our own form
  if (input.length > 80) return undefined;
  let hex = input.replaceAll(':', '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) return undefined;
  if (hex.length % 2 === 1) hex = `0${hex}`;
  while (hex.startsWith('00')) hex = hex.slice(2);
  if (hex.length === 0 || hex.length > 40) return undefined;
  return hex;
}
