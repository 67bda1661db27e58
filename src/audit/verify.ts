// `gatehouse audit verify`: walks every chain in pages (never the whole chain in memory),
// checks seq continuity, prev links and hashes, every checkpoint's signature and that it
// matches the chain at its seq, and names the first break of each chain precisely.
//
// Deleting or rewinding a whole chain leaves nothing in it to contradict, so verify also holds
// each chain to what others signed about it: the witnesses in every other chain's checkpoints,
// the heads registry, and the earlier receipt the auditor kept off the box (receipt.ts). All of
// them are read before any chain is walked, so a chain still being appended to only grows past them.
import type { KeyObject } from 'node:crypto';
import { rangePages, text, type KeyValue, type Store } from '../store/index.js';
import { AUDIT_PREFIX, CHECKPOINT_PREFIX, GENESIS, auditKey, chainNames, chainRange, checkpointKey, decodeRecord, parseChainKey, recomputeHash } from './chain.js';
import { auditKeysJwks, type AuditPublicJwk } from './audit-key.js';
import { publicKeyMap, verifyCheckpoint, type CheckpointPayload } from './checkpoint.js';
import { HeadReader, isSigned } from './heads.js';
import { RECEIPT_FORMAT, RECEIPT_VERSION, type AuditReceipt, type ReceiptChain, type ReceiptKey } from './receipt.js';

export type BreakKind =
  | 'edited'
  | 'deleted'
  | 'reordered'
  | 'inserted'
  | 'truncated-behind-checkpoint'
  | 'checkpoint-mismatch'
  | 'bad-checkpoint-signature'
  | 'chain-deleted'
  | 'truncated-behind-witness'
  | 'witness-mismatch'
  | 'truncated-behind-receipt'
  | 'receipt-mismatch'
  | 'checkpoint-removed';

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
  /** Where the public keys came from: the store itself, keys the caller pinned, or the earlier receipt. */
  keysFrom: 'store' | 'given' | 'receipt';
  /** Audit keys in the store that were not among the pinned or receipt keys (planted, or a rotation the pin does not know): ignored. */
  untrustedKeys: string[];
  /** What this run verified: keep it off the box and pass it back as `receipt` next time. */
  receipt: AuditReceipt;
}

export interface VerifyOptions {
  /** Only this chain (the others' checkpoints are still read for what they witnessed). */
  replica?: string;
  /** Pinned audit keys (the published JWKS); default: the earlier receipt's, else the keys in the store. */
  keys?: { keys: readonly Partial<AuditPublicJwk>[] };
  /** An earlier receipt: every chain must still extend it. */
  receipt?: AuditReceipt;
  /** For the new receipt's createdAt (ms since the epoch). */
  now?: () => number;
  pageSize?: number;
  onProgress?: (done: number, total: number) => void;
}

const keyText = (kv: KeyValue): string => text(kv.key);

export async function listChains(store: Store): Promise<string[]> {
  const names = new Set([...(await chainNames(store, AUDIT_PREFIX)), ...(await chainNames(store, CHECKPOINT_PREFIX))]);
  return [...names].sort();
}

/** Something signed or recorded elsewhere about one seq of a chain. */
interface Claim {
  seq: number;
  hash: string;
  /** Who says so, for the message. */
  by: string;
  from: 'witness' | 'receipt';
}

/** Claims per chain and seq; a claim repeated (every checkpoint repeats its witnesses) is kept once. */
class Claims {
  readonly #byChain = new Map<string, Map<number, Claim[]>>();

  add(chain: string, c: Claim): void {
    let seqs = this.#byChain.get(chain);
    if (seqs === undefined) this.#byChain.set(chain, (seqs = new Map<number, Claim[]>()));
    const at = seqs.get(c.seq) ?? [];
    if (!at.some((o) => o.hash === c.hash && o.from === c.from)) at.push(c);
    seqs.set(c.seq, at);
  }

  /** A checkpoint's witnesses: every other chain it saw, at the seq and hash it saw. */
  addWitnesses(p: CheckpointPayload, by: string): void {
    for (const w of p.witness ?? []) if (w.chain !== p.replica) this.add(w.chain, { seq: w.seq, hash: w.hash, by, from: 'witness' });
  }

  chains(): string[] {
    return [...this.#byChain.keys()];
  }

  of(chain: string): Map<number, Claim[]> {
    return this.#byChain.get(chain) ?? new Map<number, Claim[]>();
  }
}

interface Checkpoints {
  hashes: Map<number, string>;
  count: number;
  lastSeq: number;
  badSignature: ChainBreak | undefined;
}

async function loadCheckpoints(store: Store, replica: string, keys: ReadonlyMap<string, KeyObject>, claims: Claims): Promise<Checkpoints> {
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
        claims.addWitnesses(check.payload, `chain ${replica}'s checkpoint at seq ${seq}`);
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

async function verifyChain(store: Store, replica: string, cps: Checkpoints, claims: Map<number, Claim[]>, removed: ChainBreak | undefined, pageSize: number, progress: (n: number) => void): Promise<ChainReport> {
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
      const other = claims.get(ks)?.find((c) => c.hash !== computed);
      if (other !== undefined) {
        brk(ks, other.from === 'receipt' ? 'receipt-mismatch' : 'witness-mismatch', `seq ${ks} does not match the hash ${other.by} holds for it: the chain was rewritten or replaced by a fresh one`);
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
  if (found === undefined) {
    // the furthest claim the chain no longer reaches
    let beyond: Claim | undefined;
    for (const [seq, cs] of claims) if (seq > lastSeq && (beyond === undefined || seq > beyond.seq)) beyond = cs[0];
    if (beyond !== undefined && lastSeq === 0) brk(1, 'chain-deleted', `the chain has no record, but ${beyond.by} holds seq ${beyond.seq}: the whole chain was deleted`);
    else if (beyond !== undefined) brk(lastSeq + 1, beyond.from === 'receipt' ? 'truncated-behind-receipt' : 'truncated-behind-witness', `the chain ends at seq ${lastSeq} but ${beyond.by} holds seq ${beyond.seq}: seq ${lastSeq + 1}..${beyond.seq} were removed`);
  }
  // the earliest of: a bad signature, the walk's break, a checkpoint the receipt kept that is gone
  const first = [cps.badSignature, found, removed].reduce<ChainBreak | undefined>((a, b) => (b !== undefined && (a === undefined || b.seq < a.seq) ? b : a), undefined);
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
  const earlier = options.receipt;
  const stored = await auditKeysJwks(store);
  const jwks = options.keys?.keys ?? earlier?.keys ?? stored.keys;
  const keys = publicKeyMap({ keys: jwks });
  const keysFrom = options.keys !== undefined ? 'given' : earlier !== undefined ? 'receipt' : 'store';
  const storeRevision = await store.revision();
  const inStore = await listChains(store);

  // Everything that speaks about a chain is read before any chain is walked.
  const claims = new Claims();
  const cps = new Map<string, Checkpoints>();
  for (const c of inStore) cps.set(c, await loadCheckpoints(store, c, keys, claims));
  const badHeads = new Map<string, ChainBreak>();
  for (const h of await new HeadReader(keys).read(store)) {
    if (!isSigned(h)) {
      badHeads.set(h.replica, { replica: h.replica, seq: 0, kind: 'bad-checkpoint-signature', detail: `head record of replica ${h.replica}: ${h.why}` });
      continue;
    }
    const by = `the head record of replica ${h.replica} (seq ${h.payload.seq})`;
    claims.add(h.payload.replica, { seq: h.payload.seq, hash: h.payload.hash, by, from: 'witness' });
    claims.addWitnesses(h.payload, by);
  }
  const removed = new Map<string, ChainBreak>();
  for (const e of earlier?.chains ?? []) {
    claims.add(e.chain, { seq: e.seq, hash: e.hash, by: `the earlier receipt (${earlier!.createdAt})`, from: 'receipt' });
    if (e.checkpoint === undefined) continue;
    const check = await verifyCheckpoint(e.checkpoint.jws, keys);
    if (check.ok && check.payload.replica === e.chain && check.payload.seq === e.checkpoint.seq) {
      claims.add(e.chain, { seq: check.payload.seq, hash: check.payload.hash, by: `the checkpoint in the earlier receipt`, from: 'receipt' });
    }
    const kept = cps.get(e.chain);
    if (kept?.hashes.has(e.checkpoint.seq) !== true && kept?.badSignature?.seq !== e.checkpoint.seq) {
      removed.set(e.chain, { replica: e.chain, seq: e.checkpoint.seq, kind: 'checkpoint-removed', detail: `the checkpoint at seq ${e.checkpoint.seq} the earlier receipt recorded is gone` });
    }
  }

  const chains = options.replica !== undefined ? [options.replica] : [...new Set([...inStore, ...claims.chains(), ...badHeads.keys()])].sort();
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
  const pageSize = options.pageSize ?? 5000;
  const reports: ChainReport[] = [];
  for (const r of chains) {
    const own = cps.get(r) ?? (await loadCheckpoints(store, r, keys, new Claims()));
    const report = await verifyChain(store, r, own, claims.of(r), removed.get(r), pageSize, progress);
    const head = badHeads.get(r);
    if (head !== undefined && report.break === undefined) report.break = head;
    reports.push(report);
  }
  const ok = reports.every((c) => c.break === undefined);
  return {
    ok,
    chains: reports,
    events: reports.reduce((n, c) => n + c.records, 0),
    keysFrom,
    untrustedKeys: stored.keys.map((k) => k.kid).filter((kid) => !keys.has(kid)),
    receipt: {
      format: RECEIPT_FORMAT,
      version: RECEIPT_VERSION,
      createdAt: new Date((options.now ?? Date.now)()).toISOString(),
      storeRevision,
      ok,
      keysFrom,
      keys: receiptKeys(jwks),
      chains: await receiptChains(store, reports, cps, earlier),
    },
  };
}

function receiptKeys(jwks: readonly Partial<AuditPublicJwk>[]): ReceiptKey[] {
  return jwks.flatMap((k) => (k.kty === 'OKP' && k.crv === 'Ed25519' && typeof k.x === 'string' && typeof k.kid === 'string' ? [{ kty: 'OKP', crv: 'Ed25519', x: k.x, kid: k.kid } as const] : []));
}

/**
 * Each chain's anchor: an intact chain's last record; a broken one's newest checkpoint the walk
 * passed (signed and matched, so never a rewritten record). An anchor never moves back: where the
 * earlier receipt holds more, its entry is carried over.
 */
async function receiptChains(store: Store, reports: ChainReport[], cps: Map<string, Checkpoints>, earlier: AuditReceipt | undefined): Promise<ReceiptChain[]> {
  const out = new Map<string, ReceiptChain>();
  for (const e of earlier?.chains ?? []) out.set(e.chain, { ...e, verified: false });
  for (const r of reports) {
    const hashes = cps.get(r.replica)?.hashes ?? new Map<number, string>();
    const bound = r.break === undefined ? r.lastSeq : Math.min(r.lastSeq, r.break.seq - 1);
    let cpSeq = 0;
    for (const seq of hashes.keys()) if (seq <= bound && seq > cpSeq) cpSeq = seq;
    const seq = r.break === undefined ? r.lastSeq : cpSeq;
    const hash = r.break === undefined ? r.lastHash : hashes.get(cpSeq);
    if (seq === 0 || hash === undefined || (out.get(r.replica)?.seq ?? 0) > seq) continue;
    const jws = cpSeq === 0 ? undefined : await store.get(checkpointKey(r.replica, cpSeq));
    out.set(r.replica, { chain: r.replica, seq, hash, verified: true, ...(jws !== undefined ? { checkpoint: { seq: cpSeq, jws: text(jws.value) } } : {}) });
  }
  return [...out.values()].sort((a, b) => (a.chain < b.chain ? -1 : a.chain > b.chain ? 1 : 0));
}

/** One line per chain, the way the CLI prints it. */
export function describeChain(c: ChainReport): string {
  if (c.break !== undefined) return `BROKEN ${c.replica} seq ${c.break.seq}: ${c.break.kind}: ${c.break.detail}`;
  const tail = c.uncheckpointed > 0 ? `; seq ${c.lastCheckpointSeq + 1}..${c.lastSeq} (${c.uncheckpointed}) not yet checkpointed: a truncation there cannot be proven` : '';
  return `ok ${c.replica}: ${c.records} event(s), seq 1..${c.lastSeq}, ${c.checkpoints} checkpoint(s), last at seq ${c.lastCheckpointSeq}${tail}`;
}
