// `gatehouse audit verify`: walks every chain in pages (never the whole chain in memory),
// checks seq continuity, prev links and hashes, every checkpoint's signature and that it
// matches the chain at its seq, and names the first break of each chain precisely.
import type { KeyObject } from 'node:crypto';
import { rangePages, text, type KeyValue, type Store } from '../store/index.js';
import { AUDIT_PREFIX, CHECKPOINT_PREFIX, GENESIS, auditKey, chainRange, decodeRecord, parseChainKey, recomputeHash } from './chain.js';
import { auditKeysJwks, type AuditPublicJwk } from './audit-key.js';
import { publicKeyMap, verifyCheckpoint } from './checkpoint.js';

export type BreakKind = 'edited' | 'deleted' | 'reordered' | 'inserted' | 'truncated-behind-checkpoint' | 'checkpoint-mismatch' | 'bad-checkpoint-signature';

export interface ChainBreak {
  replica: string;
  seq: number;
  kind: BreakKind;
  detail: string;
}

export interface ChainReport {
  replica: string;
  /** Records walked before the first break (all of them when intact). */
  records: number;
  lastSeq: number;
  lastHash: string;
  checkpoints: number;
  lastCheckpointSeq: number;
  /** Records after the last checkpoint: their removal could not be proven. */
  uncheckpointed: number;
  break?: ChainBreak;
}

export interface VerifyReport {
  ok: boolean;
  chains: ChainReport[];
  events: number;
  /** Where the public keys came from: the store itself, or keys the caller pinned. */
  keysFrom: 'store' | 'given';
}

export interface VerifyOptions {
  /** Only this chain. */
  replica?: string;
  /** Pinned audit keys (the published JWKS); default: the keys in the store. */
  keys?: { keys: readonly Partial<AuditPublicJwk>[] };
  pageSize?: number;
  onProgress?: (done: number, total: number) => void;
}

const keyText = (kv: KeyValue): string => text(kv.key);

/** Every chain name under a prefix, found by skipping from one chain to the next (no full scan). */
async function chainNames(store: Store, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let start = prefix;
  for (;;) {
    const r = await store.range({ start, end: prefix.slice(0, -1) + '0' }, { limit: 1, keysOnly: true });
    const kv = r.kvs[0];
    if (kv === undefined) return out;
    const k = keyText(kv);
    const rest = k.slice(prefix.length);
    const slash = rest.indexOf('/');
    const name = slash < 0 ? rest : rest.slice(0, slash);
    out.push(name);
    start = `${prefix}${name}0`; // '/' + 1: past every key of this chain
  }
}

export async function listChains(store: Store): Promise<string[]> {
  const names = new Set([...(await chainNames(store, AUDIT_PREFIX)), ...(await chainNames(store, CHECKPOINT_PREFIX))]);
  return [...names].sort();
}

interface Checkpoints {
  hashes: Map<number, string>;
  count: number;
  lastSeq: number;
  badSignature: ChainBreak | undefined;
}

async function loadCheckpoints(store: Store, replica: string, keys: ReadonlyMap<string, KeyObject>): Promise<Checkpoints> {
  const out: Checkpoints = { hashes: new Map(), count: 0, lastSeq: 0, badSignature: undefined };
  for await (const page of rangePages(store, chainRange(CHECKPOINT_PREFIX, replica), { limit: 1000 })) {
    for (const kv of page) {
      const k = parseChainKey(keyText(kv), CHECKPOINT_PREFIX);
      const seq = k?.seq ?? 0;
      const check = await verifyCheckpoint(text(kv.value), keys);
      const bad = !check.ok ? check.why : check.payload.replica !== replica || check.payload.seq !== seq || k === undefined ? `it signs ${check.payload.replica} seq ${check.payload.seq}: moved from elsewhere` : undefined;
      if (bad !== undefined) {
        if (out.badSignature === undefined) out.badSignature = { replica, seq, kind: 'bad-checkpoint-signature', detail: `checkpoint ${keyText(kv)}: ${bad}` };
        continue;
      }
      if (check.ok) {
        out.hashes.set(seq, check.payload.hash);
        out.count++;
        out.lastSeq = Math.max(out.lastSeq, seq);
      }
    }
  }
  return out;
}

interface Walked {
  kv: KeyValue;
  seq: number | undefined;
  computed: string | undefined;
}

/** Names what happened at the first record that does not link, from a few records around it. */
async function classifyLinkBreak(store: Store, replica: string, ks: number, rec: { seq: number; prev: string }, prevPrevHash: string | undefined): Promise<{ seq: number; kind: BreakKind; detail: string }> {
  if (prevPrevHash !== undefined && rec.prev === prevPrevHash) {
    return { seq: ks - 1, kind: 'inserted', detail: `seq ${ks - 1} is not part of the chain: seq ${ks} links to seq ${ks - 2}` };
  }
  const ahead = await store.range({ start: auditKey(replica, ks + 1), end: `${AUDIT_PREFIX}${replica}0` }, { limit: 16 });
  const later: Walked[] = ahead.kvs.map((kv) => {
    const r = decodeRecord(kv);
    return { kv, seq: parseChainKey(keyText(kv), AUDIT_PREFIX)?.seq, computed: r === undefined ? undefined : recomputeHash(r) };
  });
  const successor = later.find((w) => w.computed === rec.prev);
  if (successor !== undefined) {
    return { seq: ks, kind: 'reordered', detail: `seq ${ks} holds a record that belongs after seq ${successor.seq ?? '?'} (records out of order)` };
  }
  if (rec.seq > ks) return { seq: ks, kind: 'deleted', detail: `seq ${ks} holds the record of seq ${rec.seq}: ${rec.seq - ks} record(s) removed and the rest renumbered` };
  if (rec.seq < ks) return { seq: ks - 1, kind: 'inserted', detail: `seq ${ks} holds the record of seq ${rec.seq}: record(s) inserted before it` };
  return { seq: ks - 1, kind: 'edited', detail: `seq ${ks} links to a hash no record has: seq ${ks - 1} was rewritten with a recomputed hash (or records were removed and the rest renumbered)` };
}

async function verifyChain(store: Store, replica: string, keys: ReadonlyMap<string, KeyObject>, pageSize: number, progress: (n: number) => void): Promise<ChainReport> {
  const cps = await loadCheckpoints(store, replica, keys);
  let expected = 1;
  let prevHash = GENESIS;
  let prevPrevHash: string | undefined;
  let records = 0;
  let found: ChainBreak | undefined;
  const brk = (seq: number, kind: BreakKind, detail: string): void => {
    found = { replica, seq, kind, detail };
  };
  walk: for await (const page of rangePages(store, chainRange(AUDIT_PREFIX, replica), { limit: pageSize })) {
    for (const kv of page) {
      const key = keyText(kv);
      const k = parseChainKey(key, AUDIT_PREFIX);
      if (k === undefined || k.replica !== replica) {
        brk(expected, 'inserted', `${key} is not a chain key`);
        break walk;
      }
      const ks = k.seq;
      if (ks > expected) {
        brk(expected, 'deleted', ks - expected === 1 ? `seq ${expected} is missing` : `seq ${expected}..${ks - 1} are missing`);
        break walk;
      }
      const rec = decodeRecord(kv);
      if (rec === undefined) {
        brk(ks, 'edited', `seq ${ks} is not a chain record`);
        break walk;
      }
      const computed = recomputeHash(rec);
      if (computed !== rec.hash) {
        brk(ks, 'edited', `seq ${ks}: the event does not match its hash (changed after it was written)`);
        break walk;
      }
      if (rec.prev !== prevHash) {
        const c = await classifyLinkBreak(store, replica, ks, rec, prevPrevHash);
        brk(c.seq, c.kind, c.detail);
        break walk;
      }
      if (rec.seq !== ks) {
        brk(ks, 'edited', `seq ${ks} says it is seq ${rec.seq}`);
        break walk;
      }
      const signed = cps.hashes.get(ks);
      if (signed !== undefined && signed !== computed) {
        brk(ks, 'checkpoint-mismatch', `seq ${ks} does not match the hash its checkpoint signed: the chain up to it was rewritten with recomputed hashes`);
        break walk;
      }
      prevPrevHash = prevHash;
      prevHash = computed;
      expected = ks + 1;
      records++;
    }
    progress(page.length);
  }
  const lastSeq = expected - 1;
  if (found === undefined && cps.lastSeq > lastSeq) {
    brk(lastSeq + 1, 'truncated-behind-checkpoint', `the chain ends at seq ${lastSeq} but a checkpoint signed seq ${cps.lastSeq}: seq ${lastSeq + 1}..${cps.lastSeq} were removed`);
  }
  const sig = cps.badSignature;
  const first = sig !== undefined && (found === undefined || sig.seq < found.seq) ? sig : found;
  const lastCheckpointSeq = Math.min(cps.lastSeq, lastSeq);
  return {
    replica,
    records,
    lastSeq,
    lastHash: prevHash,
    checkpoints: cps.count,
    lastCheckpointSeq,
    uncheckpointed: lastSeq - lastCheckpointSeq,
    ...(first !== undefined ? { break: first } : {}),
  };
}

export async function verifyAudit(store: Store, options: VerifyOptions = {}): Promise<VerifyReport> {
  const keys = publicKeyMap(options.keys ?? (await auditKeysJwks(store)));
  const chains = options.replica !== undefined ? [options.replica] : await listChains(store);
  // Total for the progress bar: each chain's last seq (one reverse read per chain).
  let total = 0;
  for (const r of chains) {
    const last = await store.range({ prefix: `${AUDIT_PREFIX}${r}/` }, { reverse: true, limit: 1, keysOnly: true });
    const kv = last.kvs[0];
    total += kv === undefined ? 0 : (parseChainKey(keyText(kv), AUDIT_PREFIX)?.seq ?? 0);
  }
  let done = 0;
  const progress = (n: number): void => {
    done += n;
    options.onProgress?.(Math.min(done, total), total);
  };
  const reports: ChainReport[] = [];
  for (const r of chains) reports.push(await verifyChain(store, r, keys, options.pageSize ?? 5000, progress));
  return {
    ok: reports.every((c) => c.break === undefined),
    chains: reports,
    events: reports.reduce((n, c) => n + c.records, 0),
    keysFrom: options.keys !== undefined ? 'given' : 'store',
  };
}

/** One line per chain, the way the CLI prints it. */
export function describeChain(c: ChainReport): string {
  if (c.break !== undefined) return `BROKEN ${c.replica} seq ${c.break.seq}: ${c.break.kind}: ${c.break.detail}`;
  const tail = c.uncheckpointed > 0 ? `; seq ${c.lastCheckpointSeq + 1}..${c.lastSeq} (${c.uncheckpointed}) not yet checkpointed: a truncation there cannot be proven` : '';
  return `ok ${c.replica}: ${c.records} event(s), seq 1..${c.lastSeq}, ${c.checkpoints} checkpoint(s), last at seq ${c.lastCheckpointSeq}${tail}`;
}
