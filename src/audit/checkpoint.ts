// Signed checkpoints: a compact JWS (EdDSA) over {replica, seq, hash, time, storeRevision, witness},
// stored at /gatehouse/audit-checkpoints/<replica>/<seq>. Anyone holding the published audit
// keys can then prove the chain up to seq existed as it was when it was signed, and, through
// `witness`, that every other chain named there had reached at least the seq and hash given.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';
import type { AuditPublicJwk, AuditSigningKey } from './audit-key.js';
import { HEX64 } from './chain.js';

export const CHECKPOINT_TYP = 'gatehouse-audit-checkpoint+jws';

/** The latest checkpoint of another chain the signer had seen (verified with its own key). */
export interface Witness {
  chain: string;
  seq: number;
  hash: string;
}

export interface CheckpointPayload {
  replica: string;
  seq: number;
  hash: string;
  /** ISO 8601, when it was signed. */
  time: string;
  /** A store revision read just before `time`: the store was at least this far along then. */
  storeRevision: number;
  /** Other chains' heads as last seen, sorted by chain; absent when there were none (and in older checkpoints). */
  witness?: Witness[];
}

export async function signCheckpoint(key: AuditSigningKey, payload: CheckpointPayload): Promise<string> {
  const { witness, ...rest } = payload;
  const body = Buffer.from(JSON.stringify(witness === undefined || witness.length === 0 ? rest : payload), 'utf8');
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
  const witness = p.witness === undefined ? [] : witnessList(p.witness);
  if (witness === undefined) return { ok: false, why: 'payload is not a checkpoint (witness)' };
  return { ok: true, kid: kid!, payload: { replica: p.replica, seq: p.seq, hash: p.hash, time: p.time, storeRevision: p.storeRevision, ...(witness.length > 0 ? { witness } : {}) } };
}

function witnessList(v: unknown): Witness[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: Witness[] = [];
  for (const w of v as Partial<Witness>[]) {
    if (typeof w !== 'object' || w === null || typeof w.chain !== 'string' || typeof w.seq !== 'number' || !Number.isSafeInteger(w.seq) || w.seq < 1 || typeof w.hash !== 'string' || !HEX64.test(w.hash)) return undefined;
    out.push({ chain: w.chain, seq: w.seq, hash: w.hash });
  }
  return out;
}

export function publicKeyMap(jwks: { keys: readonly Partial<AuditPublicJwk>[] }): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>();
  for (const k of jwks.keys) {
    if (k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string' || typeof k.kid !== 'string') continue;
    out.set(k.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x }, format: 'jwk' }));
  }
  return out;
}
