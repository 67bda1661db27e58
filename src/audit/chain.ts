// The audit chain's stored form, shared by the writer, verify and query.
//
//   /gatehouse/audit/<chain>/<seq, 16 digits>   {"seq":n,"prev":"<hex>","hash":"<hex>","event":{...}}
//   hash = hex(SHA-256(ASCII(prev) || UTF-8(canonicalJson(event))))    prev of seq 1 = GENESIS
//
// prev is hashed as its 64 lowercase hex characters, so `printf '%s%s' "$prev" "$event" | sha256sum`
// recomputes any link by hand.
import { createHash } from 'node:crypto';
import { text, type KeyValue, type Store } from '../store/index.js';
import { AUDIT_HEAD_PREFIX, AUDIT_PREFIX, CHECKPOINT_PREFIX, jsonCodec } from '../store/keys.js';
import { GatehouseError } from '../errors.js';
import type { AuditEvent } from '../contracts/audit.js';
import { canonicalJson } from './lib/canonical-json.js';

/**
 * `audit-heads/<replica>` -> the latest checkpoint of the chain that replica writes, signed again
 * without its witness list (a compact JWS of the same kind): where a restarted writer finds its
 * chain, and what the other replicas read at every checkpoint to witness it.
 */
export { AUDIT_PREFIX, AUDIT_HEAD_PREFIX, CHECKPOINT_PREFIX };
export const GENESIS = '0'.repeat(64);
export const SEQ_DIGITS = 16;
export const REPLICA_ID = /^[A-Za-z0-9._-]{1,128}$/;
export const HEX64 = /^[0-9a-f]{64}$/;

export function headKey(replica: string): string {
  return AUDIT_HEAD_PREFIX + replica;
}

/** The replica's own chain or one of its forks (`<replica>.fork-<time>-<rand>`). */
export function isChainOf(chain: string, replica: string): boolean {
  return chain === replica || chain.startsWith(`${replica}.fork-`);
}

export interface ChainRecord {
  seq: number;
  prev: string;
  hash: string;
  event: AuditEvent;
}

function pad(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

/** Zero-padded so keys sort in sequence order. */
export function auditKey(replica: string, seq: number): string {
  return `${AUDIT_PREFIX}${replica}/${pad(seq)}`;
}

export function checkpointKey(replica: string, seq: number): string {
  return `${CHECKPOINT_PREFIX}${replica}/${pad(seq)}`;
}

/** Every key of one chain under prefix (AUDIT_PREFIX or CHECKPOINT_PREFIX), from seq `from` on. */
export function chainRange(prefix: string, chain: string, from?: number): { start: string; end: string } {
  return { start: from === undefined ? `${prefix}${chain}/` : `${prefix}${chain}/${pad(from)}`, end: `${prefix}${chain}0` }; // '/' + 1
}

/**
 * Names of the chains with a key under prefix whose names start with `namePrefix`, found by
 * skipping from one chain to the next (one read per chain, never a full scan).
 */
export async function chainNames(store: Store, prefix: string, namePrefix = ''): Promise<string[]> {
  const out: string[] = [];
  let start = prefix + namePrefix;
  const bound = namePrefix === '' ? prefix : prefix + namePrefix;
  const end = bound.slice(0, -1) + String.fromCharCode(bound.charCodeAt(bound.length - 1) + 1);
  for (;;) {
    const r = await store.range({ start, end }, { limit: 1, keysOnly: true });
    const kv = r.kvs[0];
    if (kv === undefined) return out;
    const rest = text(kv.key).slice(prefix.length);
    const slash = rest.indexOf('/');
    const name = slash < 0 ? rest : rest.slice(0, slash);
    out.push(name);
    start = `${prefix}${name}0`; // '/' + 1: past every key of this chain
  }
}

export function chainHash(prev: string, canonicalEvent: string): string {
  return createHash('sha256').update(prev, 'latin1').update(canonicalEvent, 'utf8').digest('hex');
}

/** The stored value, with the event embedded in its canonical form (what was hashed). */
export function encodeRecord(seq: number, prev: string, hash: string, canonicalEvent: string): string {
  return `{"seq":${seq},"prev":"${prev}","hash":"${hash}","event":${canonicalEvent}}`;
}

/** Splits `/gatehouse/<prefix><chain>/<seq>`; undefined for a key of another shape. */
export function parseChainKey(key: string, prefix: string): { replica: string; seq: number } | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  const slash = rest.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const digits = rest.slice(slash + 1);
  if (!/^\d{16}$/.test(digits)) return undefined;
  return { replica: rest.slice(0, slash), seq: Number(digits) };
}

const chainJson = jsonCodec<Partial<ChainRecord>>('audit record');

/** The record's fields when they have the right types; undefined for anything else. */
export function decodeRecord(kv: KeyValue): ChainRecord | undefined {
  const r = chainJson.decode(kv);
  if (r instanceof GatehouseError) return undefined;
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || typeof r.prev !== 'string' || !HEX64.test(r.prev) || typeof r.hash !== 'string' || !HEX64.test(r.hash)) return undefined;
  if (typeof r.event !== 'object' || r.event === null || Array.isArray(r.event)) return undefined;
  return { seq: r.seq, prev: r.prev, hash: r.hash, event: r.event };
}

/** SHA-256 the record's prev and event should hash to. */
export function recomputeHash(r: ChainRecord): string {
  return chainHash(r.prev, canonicalJson(r.event));
}
