// The receipt `gatehouse audit verify --write-receipt FILE` writes and `--receipt FILE` reads back:
// what one run verified, for the auditor to keep off the box. Whoever can write the store can
// delete every chain, checkpoint and head record at once; they cannot change a file they never see.
//
// Version 1 (JSON, chains sorted by name):
//   {"format":"gatehouse-audit-receipt","version":1,"createdAt":"<ISO>","storeRevision":n,"ok":true,
//    "keysFrom":"store"|"given"|"receipt","keys":[{"kty":"OKP","crv":"Ed25519","x":"…","kid":"…"}],
//    "chains":[{"chain":"gw-1","seq":n,"hash":"<64 hex>","verified":true,
//               "checkpoint":{"seq":m,"jws":"<compact JWS>"}}]}
// A later run trusts `keys` (unless --keys is given) and fails unless every chain still holds
// `seq` with `hash` and the checkpoint at `checkpoint.seq`. `verified: false` marks an entry carried
// over from the earlier receipt because this run could not verify that far: anchors never move back.
import { GatehouseError } from '../errors.js';
import { HEX64 } from './chain.js';

export const RECEIPT_FORMAT = 'gatehouse-audit-receipt';
export const RECEIPT_VERSION = 1;

export interface ReceiptKey {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
}

export interface ReceiptChain {
  chain: string;
  seq: number;
  hash: string;
  /** This run walked the chain up to seq (false: carried over from the earlier receipt). */
  verified: boolean;
  /** The newest checkpoint at or below seq that verified. */
  checkpoint?: { seq: number; jws: string };
}

export interface AuditReceipt {
  format: typeof RECEIPT_FORMAT;
  version: typeof RECEIPT_VERSION;
  createdAt: string;
  storeRevision: number;
  /** Whether that run found every chain intact. */
  ok: boolean;
  keysFrom: 'store' | 'given' | 'receipt';
  keys: ReceiptKey[];
  chains: ReceiptChain[];
}

const B64URL = /^[A-Za-z0-9_-]+$/;
const seqOk = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

/** Reads a receipt; anything but version 1 of the format is ERR_AUDIT_RECEIPT_INVALID naming what is wrong. */
export function parseReceipt(body: string, where: string): AuditReceipt {
  const bad = (why: string, cause?: unknown): GatehouseError => new GatehouseError('ERR_AUDIT_RECEIPT_INVALID', `${where}: ${why}`, cause === undefined ? {} : { cause });
  let v: Partial<AuditReceipt>;
  try {
    v = JSON.parse(body) as Partial<AuditReceipt>;
  } catch (cause) {
    throw bad('not JSON', cause);
  }
  if (typeof v !== 'object' || v === null || v.format !== RECEIPT_FORMAT) throw bad(`not a ${RECEIPT_FORMAT}`);
  if (v.version !== RECEIPT_VERSION) throw bad(`version ${String(v.version)} is not supported (this gatehouse reads version ${RECEIPT_VERSION})`);
  if (typeof v.createdAt !== 'string' || typeof v.storeRevision !== 'number' || typeof v.ok !== 'boolean' || !['store', 'given', 'receipt'].includes(String(v.keysFrom))) throw bad('createdAt, storeRevision, ok or keysFrom missing');
  if (!Array.isArray(v.keys) || !Array.isArray(v.chains)) throw bad('keys or chains missing');
  const keys: ReceiptKey[] = [];
  for (const k of v.keys as Partial<ReceiptKey>[]) {
    if (k?.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string' || !B64URL.test(k.x) || typeof k.kid !== 'string') throw bad('a key is not an Ed25519 public JWK with a kid');
    keys.push({ kty: 'OKP', crv: 'Ed25519', x: k.x, kid: k.kid });
  }
  const chains: ReceiptChain[] = [];
  const names = new Set<string>();
  for (const c of v.chains as Partial<ReceiptChain>[]) {
    if (typeof c?.chain !== 'string' || c.chain === '' || names.has(c.chain) || !seqOk(c.seq) || typeof c.hash !== 'string' || !HEX64.test(c.hash) || typeof c.verified !== 'boolean') throw bad(`chain entry ${JSON.stringify(c?.chain ?? null)} is malformed or repeated`);
    const cp = c.checkpoint;
    if (cp !== undefined && (typeof cp !== 'object' || cp === null || !seqOk(cp.seq) || cp.seq > c.seq || typeof cp.jws !== 'string')) throw bad(`chain ${c.chain}: checkpoint is malformed`);
    names.add(c.chain);
    chains.push({ chain: c.chain, seq: c.seq, hash: c.hash, verified: c.verified, ...(cp !== undefined ? { checkpoint: { seq: cp.seq, jws: cp.jws } } : {}) });
  }
  return { format: RECEIPT_FORMAT, version: RECEIPT_VERSION, createdAt: v.createdAt, storeRevision: v.storeRevision, ok: v.ok, keysFrom: v.keysFrom!, keys, chains };
}

export function formatReceipt(r: AuditReceipt): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
