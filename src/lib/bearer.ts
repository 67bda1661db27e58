// The one reading of `Authorization: Bearer <token>` (RFC 6750 §2.1): the scheme in any case
// (RFC 9110 §11.1), one or more spaces, then a b64token (RFC 6750: A-Z a-z 0-9 - . _ ~ + /,
// then any "="). Anything that starts like a bearer header but does not fit is malformed and
// is refused, never read as "no token". The SDK keeps its own copy (src/sdk/create-verifier.ts
// bearerToken): it must not import gateway code.
import { GatehouseError, type ErrorCode } from '../errors.js';

export type BearerHeader =
  /** No Authorization header. */
  | { kind: 'absent' }
  /** Another scheme (Basic, Digest, ...): not ours to read. */
  | { kind: 'other' }
  | { kind: 'bearer'; token: string }
  /** Says Bearer but is not one well-formed token. */
  | { kind: 'malformed' };

const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
/** Longest header read at all: far above any Gatehouse token (8 KiB). */
const MAX_HEADER = 16 * 1024;

export function parseBearer(header: string | readonly string[] | undefined): BearerHeader {
  if (header === undefined) return { kind: 'absent' };
  // a repeated Authorization header is ambiguous: refuse rather than pick one
  if (typeof header !== 'string') return { kind: 'malformed' };
  // "Bearerfoo" is a mangled bearer header, not another scheme
  if (!/^bearer/i.test(header)) return { kind: 'other' };
  if (header.length > MAX_HEADER) return { kind: 'malformed' };
  const m = BEARER.exec(header);
  return m === null ? { kind: 'malformed' } : { kind: 'bearer', token: m[1]! };
}

/** The bearer token of a request that must carry one; anything else throws `code` (401 by default). */
export function bearerToken(header: string | readonly string[] | undefined, code: ErrorCode = 'ERR_TOKEN_INVALID'): string {
  const b = parseBearer(header);
  if (b.kind === 'bearer') return b.token;
  throw new GatehouseError(code, b.kind === 'malformed' ? 'malformed Authorization: Bearer header' : 'expected an Authorization: Bearer token');
}
