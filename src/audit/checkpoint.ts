// Signed checkpoints: a compact JWS (EdDSA) over {replica, seq, hash, time, storeRevision},
// stored at /gatehouse/audit-checkpoints/<replica>/<seq>. Anyone holding the published audit
// keys can then prove the chain up to seq existed as it was when it was signed.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';
import type { AuditPublicJwk, AuditSigningKey } from './audit-key.js';

export const CHECKPOINT_TYP = 'gatehouse-audit-checkpoint+jws';

export interface CheckpointPayload {
  replica: string;
  seq: number;
  hash: string;
  /** ISO 8601, when it was signed. */
  time: string;
  /** A store revision read just before `time`: the store was at least this far along then. */
  storeRevision: number;
}

export async function signCheckpoint(key: AuditSigningKey, payload: CheckpointPayload): Promise<string> {
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  return new CompactSign(body).setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: CHECKPOINT_TYP }).sign(key.privateKey);
}

export type CheckpointCheck = { ok: true; payload: CheckpointPayload; kid: string } | { ok: false; why: string };

/** Verifies one checkpoint against a set of public keys (kid lookup; only EdDSA). */
export async function verifyCheckpoint(jws: string, keys: ReadonlyMap<string, KeyObject>): Promise<CheckpointCheck> {
  let kid: string | undefined;
  try {
    const h = decodeProtectedHeader(jws);
    if (h.alg !== 'EdDSA') return { ok: false, why: `alg ${String(h.alg)} is not EdDSA` };
    if (h.typ !== CHECKPOINT_TYP) return { ok: false, why: 'not a checkpoint (typ)' };
    kid = h.kid;
  } catch {
    return { ok: false, why: 'not a compact JWS' };
  }
  const key = kid === undefined ? undefined : keys.get(kid);
  if (key === undefined) return { ok: false, why: `signed by unknown key ${kid ?? '(no kid)'}` };
  let payload: unknown;
  try {
    const r = await compactVerify(jws, key, { algorithms: ['EdDSA'] });
    payload = JSON.parse(Buffer.from(r.payload).toString('utf8'));
  } catch {
    return { ok: false, why: 'signature does not verify' };
  }
  const p = payload as Partial<CheckpointPayload>;
  if (typeof p !== 'object' || p === null || typeof p.replica !== 'string' || typeof p.seq !== 'number' || typeof p.hash !== 'string' || typeof p.time !== 'string' || typeof p.storeRevision !== 'number') {
    return { ok: false, why: 'payload is not a checkpoint' };
  }
  return { ok: true, kid: kid!, payload: { replica: p.replica, seq: p.seq, hash: p.hash, time: p.time, storeRevision: p.storeRevision } };
}

export function publicKeyMap(jwks: { keys: readonly Partial<AuditPublicJwk>[] }): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>();
  for (const k of jwks.keys) {
    if (k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string' || typeof k.kid !== 'string') continue;
    out.set(k.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x }, format: 'jwk' }));
  }
  return out;
}
