// A software WebAuthn authenticator for tests: ES256 (P-256) credentials from node:crypto,
// CBOR attestation objects with 'none', 'packed' self attestation or 'packed' with an x5c
// chain, authenticatorData with UP/UV/AT flags, and control over the AAGUID and the
// signature counter. It signs whatever it is told to, so tests can build hostile responses.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

// ---- a minimal CBOR encoder (RFC 8949): unsigned/negative ints, byte and text strings, arrays, maps
type Cbor = number | string | Uint8Array | Cbor[] | Map<number | string, Cbor>;

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

export function cbor(v: Cbor): Buffer {
  if (typeof v === 'number') return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([head(3, b.length), b]);
  }
  if (v instanceof Uint8Array) return Buffer.concat([head(2, v.length), Buffer.from(v)]);
  if (Array.isArray(v)) return Buffer.concat([head(4, v.length), ...v.map(cbor)]);
  return Buffer.concat([head(5, v.size), ...[...v].flatMap(([k, x]) => [cbor(k), cbor(x)])]);
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | string): Buffer => createHash('sha256').update(b).digest();

export type AttestationMode = 'none' | 'packed-self' | 'packed-x5c';

export interface SoftAuthenticatorOptions {
  /** e.g. '00000000-0000-0000-0000-000000000000' (the default, like many software keys). */
  aaguid?: string;
  /** Report UV (fingerprint/PIN checked); default true. */
  uv?: boolean;
  up?: boolean;
  attestation?: AttestationMode;
  /** For packed-x5c: the attestation key (RSA, signs RS256) and the chain, leaf first (DER). */
  x5c?: { key: KeyObject; chain: Buffer[] };
  /** 'increment' (default) adds 1 per signature; 'zero' always reports 0. */
  counter?: 'increment' | 'zero';
}

export interface SoftCredential {
  id: Buffer;
  key: KeyObject;
  rpId: string;
  userHandle: string | undefined;
}

export class SoftAuthenticator {
  aaguid: string;
  uv: boolean;
  up: boolean;
  attestation: AttestationMode;
  x5c: { key: KeyObject; chain: Buffer[] } | undefined;
  counterMode: 'increment' | 'zero';
  signCount = 0;
  readonly credentials: SoftCredential[] = [];

  constructor(o: SoftAuthenticatorOptions = {}) {
    this.aaguid = o.aaguid ?? '00000000-0000-0000-0000-000000000000';
    this.uv = o.uv ?? true;
    this.up = o.up ?? true;
    this.attestation = o.attestation ?? 'none';
    this.x5c = o.x5c;
    this.counterMode = o.counter ?? 'increment';
  }

  #flags(at: boolean): number {
    return (this.up ? 0x01 : 0) | (this.uv ? 0x04 : 0) | (at ? 0x40 : 0);
  }

  #nextCount(): number {
    if (this.counterMode === 'increment') this.signCount++;
    return this.counterMode === 'zero' ? 0 : this.signCount;
  }

  authData(rpId: string, extra?: Buffer, count = this.#nextCount()): Buffer {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(count >>> 0);
    return Buffer.concat([sha256(rpId), Buffer.from([this.#flags(extra !== undefined)]), c, ...(extra ? [extra] : [])]);
  }

  /** navigator.credentials.create(): returns RegistrationResponseJSON. */
  register(options: { challenge: string; rp: { id?: string }; user: { id: string } }, origin: string, o: { rpId?: string; clientType?: string } = {}): Record<string, unknown> {
    const rpId = o.rpId ?? options.rp.id ?? new URL(origin).hostname;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = cbor(new Map<number, Cbor>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]));
    const id = randomBytes(32);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(id.length);
    const aaguid = Buffer.from(this.aaguid.replace(/-/g, ''), 'hex');
    const authData = this.authData(rpId, Buffer.concat([aaguid, len, id, cose]));
    const clientDataJSON = Buffer.from(JSON.stringify({ type: o.clientType ?? 'webauthn.create', challenge: options.challenge, origin, crossOrigin: false }));
    const signed = Buffer.concat([authData, sha256(clientDataJSON)]);
    let fmt = 'none';
    let attStmt = new Map<string, Cbor>();
    if (this.attestation === 'packed-self') {
      fmt = 'packed';
      attStmt = new Map<string, Cbor>([['alg', -7], ['sig', sign('sha256', signed, privateKey)]]);
    } else if (this.attestation === 'packed-x5c') {
      if (this.x5c === undefined) throw new Error('packed-x5c needs x5c');
      fmt = 'packed';
      attStmt = new Map<string, Cbor>([['alg', -257], ['sig', sign('sha256', signed, this.x5c.key)], ['x5c', this.x5c.chain]]);
    }
    const attestationObject = cbor(new Map<string, Cbor>([['fmt', fmt], ['attStmt', attStmt], ['authData', authData]]));
    this.credentials.push({ id, key: privateKey, rpId, userHandle: options.user.id });
    return {
      id: b64u(id),
      rawId: b64u(id),
      type: 'public-key',
      response: { clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), transports: ['usb'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'cross-platform',
    };
  }

  /** navigator.credentials.get(): returns AuthenticationResponseJSON (first credential unless told). */
  authenticate(options: { challenge: string; rpId?: string }, origin: string, o: { rpId?: string; credential?: SoftCredential; count?: number; clientType?: string } = {}): Record<string, unknown> {
    const cred = o.credential ?? this.credentials[0];
    if (cred === undefined) throw new Error('no credential registered');
    const rpId = o.rpId ?? options.rpId ?? cred.rpId;
    const authData = this.authData(rpId, undefined, o.count ?? this.#nextCount());
    const clientDataJSON = Buffer.from(JSON.stringify({ type: o.clientType ?? 'webauthn.get', challenge: options.challenge, origin, crossOrigin: false }));
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), cred.key);
    return {
      id: b64u(cred.id),
      rawId: b64u(cred.id),
      type: 'public-key',
      response: { clientDataJSON: b64u(clientDataJSON), authenticatorData: b64u(authData), signature: b64u(signature), ...(cred.userHandle !== undefined ? { userHandle: cred.userHandle } : {}) },
      clientExtensionResults: {},
    };
  }

  /** A copy with the same credentials and counter: a clone. */
  clone(): SoftAuthenticator {
    const c = new SoftAuthenticator({ aaguid: this.aaguid, uv: this.uv, up: this.up, attestation: this.attestation, counter: this.counterMode, ...(this.x5c ? { x5c: this.x5c } : {}) });
    c.signCount = this.signCount;
    c.credentials.push(...this.credentials.map((x) => ({ ...x, key: createPrivateKey(x.key.export({ format: 'pem', type: 'pkcs8' })) })));
    return c;
  }
}
