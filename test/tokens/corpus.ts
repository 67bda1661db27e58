// Hostile tokens: each case builds one token with exactly one fault and names the code a
// verifier must refuse it with. Pure data plus signing helpers, so any verifier (Gatehouse's,
// the SDK, a future one) can run it: give it a context with a published key, a key that has
// been retired past its grace, and the thumbprint of "this connection's" certificate.
import { createHmac, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

export type ExpectedCode =
  | 'ERR_TOKEN_INVALID'
  | 'ERR_TOKEN_TOO_LARGE'
  | 'ERR_TOKEN_ALGORITHM'
  | 'ERR_TOKEN_HEADER_REFUSED'
  | 'ERR_TOKEN_UNKNOWN_KEY'
  | 'ERR_TOKEN_SIGNATURE'
  | 'ERR_TOKEN_ISSUER'
  | 'ERR_TOKEN_AUDIENCE'
  | 'ERR_TOKEN_EXPIRED'
  | 'ERR_TOKEN_NOT_YET_VALID'
  | 'ERR_TOKEN_NAMESPACE'
  | 'ERR_TOKEN_BINDING';

export interface CorpusKey {
  kid: string;
  privateKey: KeyObject;
}

export interface CorpusContext {
  /** The verifier's clock, ms since the epoch. */
  now: number;
  issuer: string;
  audience: string;
  namespace: string;
  /** A key the verifier publishes now. */
  key: CorpusKey & { publicKey: KeyObject };
  /** A key the verifier published once, now past its expireAt. */
  retired: CorpusKey;
  /** Thumbprint of the client certificate on the verifying connection. */
  certThumbprint: string;
}

/** How the verifier is asked: always the context's audience and namespace. */
export interface CaseOptions {
  /** false: no certificate on the connection. Default: ctx.certThumbprint. */
  presentCertificate?: boolean;
  requireBinding?: boolean;
}

export interface HostileCase {
  name: string;
  code: ExpectedCode;
  options?: CaseOptions;
  token(ctx: CorpusContext): string;
}

const b64 = (v: string | Uint8Array): string => Buffer.from(v).toString('base64url');
const json = (v: unknown): string => b64(JSON.stringify(v));

/** The claims of a valid token for ctx, bound to ctx.certThumbprint, with overrides (undefined deletes). */
export function validClaims(ctx: CorpusContext, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = Math.floor(ctx.now / 1000);
  const claims: Record<string, unknown> = {
    iss: ctx.issuer,
    sub: 'spiffe://gatehouse.test/ns/shop/sa/web',
    aud: ctx.audience,
    ns: ctx.namespace,
    roles: ['reader'],
    cnf: { 'x5t#S256': ctx.certThumbprint },
    jti: b64(randomBytes(16)),
    iat,
    nbf: iat,
    exp: iat + 300,
  };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete claims[k];
    else claims[k] = v;
  }
  return claims;
}

export function validHeader(kid: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const header: Record<string, unknown> = { alg: 'EdDSA', typ: 'at+jwt', kid };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete header[k];
    else header[k] = v;
  }
  return header;
}

/** Signs header.payload with an Ed25519 key, whatever the header says. */
export function signEd25519(privateKey: KeyObject, header: Record<string, unknown>, payload: Record<string, unknown> | string): string {
  const input = `${json(header)}.${typeof payload === 'string' ? b64(payload) : json(payload)}`;
  return `${input}.${b64(sign(null, Buffer.from(input), privateKey))}`;
}

/** A valid token for ctx (the control: every verifier must accept it). */
export function validToken(ctx: CorpusContext, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  return signEd25519(ctx.key.privateKey, validHeader(ctx.key.kid, header), validClaims(ctx, claims));
}

function hs256(secret: Uint8Array | string, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${json(header)}.${json(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

function flip(segment: string, at: number): string {
  const bytes = Buffer.from(segment, 'base64url');
  bytes[at % bytes.length]! ^= 0x01;
  return bytes.toString('base64url');
}

const attacker = generateKeyPairSync('ed25519');
const attackerRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const SECONDS = 1000;

export const HOSTILE_CASES: readonly HostileCase[] = [
  // --- algorithm confusion
  { name: 'alg none, empty signature', code: 'ERR_TOKEN_ALGORITHM', token: (c) => `${json(validHeader(c.key.kid, { alg: 'none' }))}.${json(validClaims(c))}.` },
  { name: 'alg none, signature kept', code: 'ERR_TOKEN_ALGORITHM', token: (c) => { const [, p, s] = validToken(c).split('.'); return `${json(validHeader(c.key.kid, { alg: 'none' }))}.${p}.${s}`; } },
  { name: 'alg NoNe (case games)', code: 'ERR_TOKEN_ALGORITHM', token: (c) => `${json(validHeader(c.key.kid, { alg: 'NoNe' }))}.${json(validClaims(c))}.` },
  { name: 'alg missing', code: 'ERR_TOKEN_ALGORITHM', token: (c) => signEd25519(c.key.privateKey, validHeader(c.key.kid, { alg: undefined }), validClaims(c)) },
  { name: 'HS256 keyed with the raw public key', code: 'ERR_TOKEN_ALGORITHM', token: (c) => hs256(Buffer.from(String(c.key.publicKey.export({ format: 'jwk' }).x), 'base64url'), validHeader(c.key.kid, { alg: 'HS256' }), validClaims(c)) },
  { name: 'HS256 keyed with the public key PEM', code: 'ERR_TOKEN_ALGORITHM', token: (c) => hs256(String(c.key.publicKey.export({ format: 'pem', type: 'spki' })), validHeader(c.key.kid, { alg: 'HS256' }), validClaims(c)) },
  { name: 'HS256 keyed with the public JWK JSON', code: 'ERR_TOKEN_ALGORITHM', token: (c) => hs256(JSON.stringify(c.key.publicKey.export({ format: 'jwk' })), validHeader(c.key.kid, { alg: 'HS256' }), validClaims(c)) },
  {
    name: 'RS256 signed by another key',
    code: 'ERR_TOKEN_ALGORITHM',
    token: (c) => {
      const input = `${json(validHeader(c.key.kid, { alg: 'RS256' }))}.${json(validClaims(c))}`;
      return `${input}.${b64(sign('sha256', Buffer.from(input), attackerRsa.privateKey))}`;
    },
  },
  { name: 'alg Ed25519 (not the pinned EdDSA)', code: 'ERR_TOKEN_ALGORITHM', token: (c) => signEd25519(c.key.privateKey, validHeader(c.key.kid, { alg: 'Ed25519' }), validClaims(c)) },

  // --- keys named by the token
  { name: 'unknown kid', code: 'ERR_TOKEN_UNKNOWN_KEY', token: (c) => signEd25519(c.key.privateKey, validHeader(b64(randomBytes(32))), validClaims(c)) },
  { name: 'no kid', code: 'ERR_TOKEN_UNKNOWN_KEY', token: (c) => signEd25519(c.key.privateKey, validHeader(c.key.kid, { kid: undefined }), validClaims(c)) },
  { name: 'kid as a path', code: 'ERR_TOKEN_UNKNOWN_KEY', token: (c) => signEd25519(c.key.privateKey, validHeader('../../signing-current'), validClaims(c)) },
  { name: 'kid of a retired key after its grace', code: 'ERR_TOKEN_UNKNOWN_KEY', token: (c) => signEd25519(c.retired.privateKey, validHeader(c.retired.kid), validClaims(c)) },
  { name: 'our kid, signed by another key', code: 'ERR_TOKEN_SIGNATURE', token: (c) => signEd25519(attacker.privateKey, validHeader(c.key.kid), validClaims(c)) },
  { name: 'jku pointing elsewhere', code: 'ERR_TOKEN_HEADER_REFUSED', token: (c) => signEd25519(attacker.privateKey, validHeader(c.key.kid, { jku: 'https://evil.example/jwks.json' }), validClaims(c)) },
  { name: 'x5u pointing elsewhere', code: 'ERR_TOKEN_HEADER_REFUSED', token: (c) => signEd25519(attacker.privateKey, validHeader(c.key.kid, { x5u: 'https://evil.example/cert.pem' }), validClaims(c)) },
  { name: 'embedded jwk of the signer', code: 'ERR_TOKEN_HEADER_REFUSED', token: (c) => signEd25519(attacker.privateKey, validHeader(c.key.kid, { jwk: attacker.publicKey.export({ format: 'jwk' }) }), validClaims(c)) },
  { name: 'embedded x5c chain', code: 'ERR_TOKEN_HEADER_REFUSED', token: (c) => signEd25519(attacker.privateKey, validHeader(c.key.kid, { x5c: [b64(randomBytes(64))] }), validClaims(c)) },
  { name: 'crit header', code: 'ERR_TOKEN_HEADER_REFUSED', token: (c) => signEd25519(c.key.privateKey, validHeader(c.key.kid, { crit: ['exp'] }), validClaims(c)) },
  { name: 'crit b64=false (unencoded payload)', code: 'ERR_TOKEN_HEADER_REFUSED', token: (c) => signEd25519(c.key.privateKey, validHeader(c.key.kid, { crit: ['b64'], b64: false }), validClaims(c)) },
  { name: 'zip header', code: 'ERR_TOKEN_HEADER_REFUSED', token: (c) => signEd25519(c.key.privateKey, validHeader(c.key.kid, { zip: 'DEF' }), validClaims(c)) },

  // --- time
  { name: 'expired beyond the skew', code: 'ERR_TOKEN_EXPIRED', token: (c) => { const t = Math.floor(c.now / SECONDS); return validToken(c, { iat: t - 331, nbf: t - 331, exp: t - 31 }); } },
  { name: 'not yet valid beyond the skew', code: 'ERR_TOKEN_NOT_YET_VALID', token: (c) => { const t = Math.floor(c.now / SECONDS); return validToken(c, { iat: t, nbf: t + 31, exp: t + 300 }); } },
  { name: 'issued in the future', code: 'ERR_TOKEN_NOT_YET_VALID', token: (c) => { const t = Math.floor(c.now / SECONDS) + 120; return validToken(c, { iat: t, nbf: t, exp: t + 300 }); } },
  { name: 'lifetime longer than 900 s', code: 'ERR_TOKEN_INVALID', token: (c) => { const t = Math.floor(c.now / SECONDS); return validToken(c, { exp: t + 3600 }); } },
  { name: 'exp as a string', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c, { exp: String(Math.floor(c.now / SECONDS) + 300) }) },
  { name: 'no exp', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c, { exp: undefined }) },
  { name: 'exp not a whole number of seconds', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c, { exp: Math.floor(c.now / SECONDS) + 300.5 }) },

  // --- who it is for
  { name: 'wrong audience', code: 'ERR_TOKEN_AUDIENCE', token: (c) => validToken(c, { aud: 'spiffe://gatehouse.test/ns/payments/sa/other' }) },
  { name: 'audience list including ours', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c, { aud: [c.audience, 'spiffe://gatehouse.test/ns/x/sa/y'] }) },
  { name: 'wrong issuer', code: 'ERR_TOKEN_ISSUER', token: (c) => validToken(c, { iss: 'https://evil.example' }) },
  { name: 'token for another namespace', code: 'ERR_TOKEN_NAMESPACE', token: (c) => validToken(c, { ns: 'other' }) },
  { name: 'no ns claim', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c, { ns: undefined }) },
  { name: 'roles not a list', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c, { roles: 'admin' }) },
  { name: 'typ JWT instead of at+jwt', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c, {}, { typ: 'JWT' }) },

  // --- integrity
  {
    name: 'tampered payload (roles: admin)',
    code: 'ERR_TOKEN_SIGNATURE',
    token: (c) => { const [h, , s] = validToken(c).split('.'); return `${h}.${json(validClaims(c, { roles: ['admin'] }))}.${s}`; },
  },
  { name: 'tampered signature (one bit)', code: 'ERR_TOKEN_SIGNATURE', token: (c) => { const [h, p, s] = validToken(c).split('.'); return `${h}.${p}.${flip(s!, 17)}`; } },
  { name: 'tampered header (extra member)', code: 'ERR_TOKEN_SIGNATURE', token: (c) => { const [, p, s] = validToken(c).split('.'); return `${json(validHeader(c.key.kid, { x: 1 }))}.${p}.${s}`; } },
  { name: 'payload not JSON (validly signed)', code: 'ERR_TOKEN_INVALID', token: (c) => signEd25519(c.key.privateKey, validHeader(c.key.kid), 'not json') },

  // --- shape
  { name: 'empty', code: 'ERR_TOKEN_INVALID', token: () => '' },
  { name: 'truncated to two segments', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c).split('.').slice(0, 2).join('.') },
  { name: 'truncated signature', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c).slice(0, -10) },
  { name: 'truncated mid-header', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c).slice(0, 20) },
  { name: 'five segments (JWE-shaped)', code: 'ERR_TOKEN_INVALID', token: (c) => `${validToken(c)}.AAAA.BBBB` },
  { name: 'garbage base64', code: 'ERR_TOKEN_INVALID', token: () => '%%%.$$$.###' },
  { name: 'header not JSON', code: 'ERR_TOKEN_INVALID', token: (c) => `${b64('hello')}.${json(validClaims(c))}.${b64(randomBytes(64))}` },
  { name: 'header a JSON array', code: 'ERR_TOKEN_INVALID', token: (c) => `${json(['EdDSA'])}.${json(validClaims(c))}.${b64(randomBytes(64))}` },
  { name: 'whitespace inside', code: 'ERR_TOKEN_INVALID', token: (c) => { const [h, p, s] = validToken(c).split('.'); return `${h}.${p} .${s}`; } },
  { name: 'one byte over 8 KiB', code: 'ERR_TOKEN_TOO_LARGE', token: (c) => validToken(c, { pad: 'a'.repeat(8192) }).slice(0, 8193) },
  { name: 'a 1 MB token', code: 'ERR_TOKEN_TOO_LARGE', token: (c) => validToken(c, { pad: 'a'.repeat(1 << 20) }) },

  // --- certificate binding (RFC 8705)
  { name: 'bound to a different certificate', code: 'ERR_TOKEN_BINDING', token: (c) => validToken(c, { cnf: { 'x5t#S256': b64(randomBytes(32)) } }) },
  { name: 'bound, but no certificate on the connection', code: 'ERR_TOKEN_BINDING', options: { presentCertificate: false }, token: (c) => validToken(c) },
  { name: 'unbound where binding is required', code: 'ERR_TOKEN_BINDING', options: { requireBinding: true }, token: (c) => validToken(c, { cnf: undefined }) },
  { name: 'cnf without x5t#S256', code: 'ERR_TOKEN_INVALID', token: (c) => validToken(c, { cnf: { jkt: b64(randomBytes(32)) } }) },
];

/** Tokens every verifier must accept (with the given options). */
export const VALID_CASES: readonly { name: string; options?: CaseOptions; token(ctx: CorpusContext): string }[] = [
  { name: 'bound token on its certificate', token: (c) => validToken(c) },
  { name: 'bound token where binding is required', options: { requireBinding: true }, token: (c) => validToken(c) },
  { name: 'unbound token, no certificate', options: { presentCertificate: false }, token: (c) => validToken(c, { cnf: undefined }) },
  { name: 'expired, but within the 30 s skew', token: (c) => { const t = Math.floor(c.now / SECONDS); return validToken(c, { iat: t - 320, nbf: t - 320, exp: t - 20 }); } },
  { name: 'not yet valid, but within the 30 s skew', token: (c) => { const t = Math.floor(c.now / SECONDS) + 20; return validToken(c, { iat: t, nbf: t, exp: t + 300 }); } },
  { name: 'a person: amr, acr, sid', options: { presentCertificate: false }, token: (c) => validToken(c, { cnf: undefined, sub: 'user-42', amr: ['hwk', 'user'], acr: 'aal3', sid: 'sess-1' }) },
];
