// Subject rules and payload limits shared by both bus implementations, so a subject or payload
// accepted by one is accepted by the other.
import { GatehouseError } from '../errors.js';

/**
 * Largest payload either bus accepts. 1,000,000 bytes rather than 1 MiB so that the payload plus
 * NATS headers (Nats-Msg-Id) stays under nats-server's default max_payload of 1 MiB.
 */
export const MAX_PAYLOAD_BYTES = 1_000_000;

/** Long enough for namespaced ids; short enough to keep NATS subject indexes cheap. */
export const MAX_SUBJECT_LENGTH = 256;

// A token is printable ASCII without the separator or wildcards; no spaces, no control bytes.
const TOKEN = /^[\x21-\x7e]+$/;

function split(subject: string, what: string): string[] {
  if (typeof subject !== 'string' || subject.length === 0) {
    throw new GatehouseError('ERR_BUS_BAD_SUBJECT', `${what} is empty`);
  }
  if (subject.length > MAX_SUBJECT_LENGTH) {
    throw new GatehouseError('ERR_BUS_BAD_SUBJECT', `${what} is longer than ${MAX_SUBJECT_LENGTH} characters`);
  }
  return subject.split('.');
}

function isPlainToken(token: string): boolean {
  return TOKEN.test(token) && !token.includes('*') && !token.includes('>');
}

/** Throws ERR_BUS_BAD_SUBJECT unless `subject` is a literal subject (no wildcards); returns its tokens. */
export function parseSubject(subject: string): string[] {
  const tokens = split(subject, 'subject');
  for (const token of tokens) {
    if (!isPlainToken(token)) {
      throw new GatehouseError('ERR_BUS_BAD_SUBJECT', `subject ${JSON.stringify(subject)} has an empty or invalid token`);
    }
  }
  return tokens;
}

/** Throws ERR_BUS_BAD_SUBJECT unless `pattern` is a valid pattern (`*` whole tokens, `>` only last); returns its tokens. */
export function parsePattern(pattern: string): string[] {
  const tokens = split(pattern, 'pattern');
  tokens.forEach((token, i) => {
    if (token === '*') return;
    if (token === '>' && i === tokens.length - 1) return;
    if (!isPlainToken(token)) {
      throw new GatehouseError('ERR_BUS_BAD_SUBJECT', `pattern ${JSON.stringify(pattern)} has an empty or invalid token`);
    }
  });
  return tokens;
}

/** NATS matching: `*` is exactly one token, a final `>` one or more. */
export function matches(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== '*' && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

/** Encodes strings as UTF-8 and enforces MAX_PAYLOAD_BYTES. */
export function toPayload(payload: Uint8Array | string): Uint8Array {
  const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  if (!(bytes instanceof Uint8Array)) {
    throw new GatehouseError('ERR_BAD_REQUEST', 'payload must be a Uint8Array or a string');
  }
  if (bytes.byteLength > MAX_PAYLOAD_BYTES) {
    throw new GatehouseError('ERR_BUS_PAYLOAD_TOO_LARGE', `payload is ${bytes.byteLength} bytes; the limit is ${MAX_PAYLOAD_BYTES}`, {
      details: { limit: MAX_PAYLOAD_BYTES, size: bytes.byteLength },
    });
  }
  return bytes;
}

/** fromSequence must be a non-negative safe integer (0 and 1 both mean "from the first message ever"). */
export function checkFromSequence(fromSequence: number | undefined): void {
  if (fromSequence === undefined) return;
  if (!Number.isSafeInteger(fromSequence) || fromSequence < 0) {
    throw new GatehouseError('ERR_BAD_REQUEST', `fromSequence must be a non-negative integer, got ${String(fromSequence)}`);
  }
}

/** Hands an error to a subscription's onError; an onError that throws must not stop delivery. */
export function reportTo(onError: ((err: Error) => void) | undefined, err: unknown): void {
  if (onError === undefined) return;
  try {
    onError(err instanceof Error ? err : new Error(String(err)));
  } catch {
    // ignored on purpose
  }
}
