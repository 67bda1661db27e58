// Appends audit events to this replica's hash chain in the store (see chain.ts), in batches,
// so the proxy never waits on the store per request: append() is synchronous and only queues.
//
// - Each batch is one transaction guarded by a compare-and-swap on the chain head (the last
//   record unchanged, the next seq absent), so two processes using one replica id cannot fork
//   the chain silently: the loser moves to a fresh chain `<replica>.fork-<time>-<rand>`, whose
//   first event is an alert naming the forked chain, and reports ERR_AUDIT_CHAIN_FORKED.
// - Every `checkpointEvery` events or `checkpointIntervalMs` a signed checkpoint is stored,
//   witnessing the newest head of every other chain it has seen; the same head, signed without
//   that list, replaces the replica's record in the heads registry (chain.ts, AUDIT_HEAD_PREFIX).
// - At start it resumes the chain its head record names, and refuses to extend a chain that no
//   longer holds what was signed about it (its checkpoint, head record or another chain's witness)
//   or to begin one while an older chain of the replica exists: a fresh chain then begins with an
//   alert naming the older head (ERR_AUDIT_CHAIN_RESTARTED).
// - While the store cannot be reached, events go to a spool file (lib/spool.ts) and reach the
//   chain in order once it answers again; a restarted writer replays the spool before new events.
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import type { Store, TxnOp, Compare } from '../store/index.js';
import { LIMITS, rangePages } from '../store/index.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { Delays } from '../lib/backoff.js';
import type { AuditEvent, AuditSink } from '../contracts/audit.js';
import { GatehouseError, isGatehouseError } from '../errors.js';
import { canonicalJson } from './lib/canonical-json.js';
import { Spool } from './lib/spool.js';
import { AUDIT_PREFIX, CHECKPOINT_PREFIX, GENESIS, REPLICA_ID, auditKey, chainHash, chainNames, chainRange, checkpointKey, decodeRecord, encodeRecord, headKey, isChainOf, parseChainKey, recomputeHash } from './chain.js';
import { ensureAuditKey, type AuditSigningKey } from './audit-key.js';
import { signCheckpoint, verifyCheckpoint, type CheckpointPayload, type Witness } from './checkpoint.js';
import { HeadReader, checkHead, isSigned, latestSignedCheckpoint } from './heads.js';

export { AUDIT_PREFIX, auditKey } from './chain.js';

export interface AuditWriterOptions {
  store: Store;
  replica: string;
  clock: Clock;
  /** Flush when this many events wait (default 256; a transaction holds at most 128). */
  batchSize?: number;
  /** Flush at least this often, ms (default 50). */
  flushIntervalMs?: number;
  /** Most events held in memory (default 100,000); beyond it events are counted as dropped and an alert says how many. */
  maxQueued?: number;
  /** Seals the audit signing key; without it no checkpoints are signed (the chain alone still detects edits). */
  kek?: KeyObject;
  /** Sign a checkpoint after this many events (default 1,000). */
  checkpointEvery?: number;
  /** ... or after this long with unsigned events, ms (default 10,000). */
  checkpointIntervalMs?: number;
  /** Where events wait while the store is unreachable; without it they wait in memory only (bounded by maxQueued). */
  spoolDir?: string;
  /** Largest spool file, bytes (default 1 GiB); beyond it events are counted as dropped. */
  spoolMaxBytes?: number;
  onError?: (err: unknown) => void;
}

export interface AuditWriterStats {
  appended: number;
  written: number;
  dropped: number;
  queued: number;
  failures: number;
  /** Events written to the spool file since start. */
  spooled: number;
  checkpoints: number;
  forks: number;
}

interface Head {
  seq: number;
  hash: string;
  modRevision: number;
}

/** What an older head of a chain was, and how the writer knows. */
interface Older {
  chain: string;
  seq: number;
  hash?: string;
  /** Learned from a checkpoint signed with the audit key (so it is carried on as a witness). */
  signed: boolean;
  evidence: string;
}

interface Entry {
  canonical: string;
  source: 'priority' | 'queue' | 'spool';
  /** Spool entries: bytes of the line, newline included. */
  bytes: number;
}

const now = (clock: Clock): string => new Date(clock.now()).toISOString();

function encodeEvent(event: AuditEvent, clock: Clock): string {
  try {
    return canonicalJson(event);
  } catch (err) {
    // An unencodable field (NaN, a function) must not stop the chain: record that it happened.
    return canonicalJson({ '@timestamp': now(clock), 'event.action': 'audit.event.invalid', 'event.outcome': 'unknown', 'event.reason': (err as Error).message, 'gatehouse.original_action': String(event['event.action']) });
  }
}

export class AuditWriter implements AuditSink {
  /** The configured replica id. */
  readonly replica: string;
  readonly stats: AuditWriterStats = { appended: 0, written: 0, dropped: 0, queued: 0, failures: 0, spooled: 0, checkpoints: 0, forks: 0 };
  #o: AuditWriterOptions;
  #store: Store;
  #clock: Clock;
  #batchSize: number;
  #interval: number;
  #maxQueued: number;
  #checkpointEvery: number;
  #checkpointIntervalMs: number;
  #spoolMax: number;
  #onError: (err: unknown) => void;

  /** The chain being written: the replica id, or a fresh chain after a fork. */
  #chain: string;
  #head: Head | undefined;
  #key: AuditSigningKey | undefined;
  #keyFailed = false;
  /** The audit key's public half: the only key whose checkpoints this writer believes (one planted in the store is not). */
  #trusted: Map<string, KeyObject> | undefined;
  #heads: HeadReader | undefined;
  /** The newest head seen of every other chain, carried into each checkpoint; it never moves back. */
  readonly #witness = new Map<string, Witness>();
  /** The chain was chosen and its history checked (by the first #ready that reached the store). */
  #started = false;
  #lastCheckpointSeq = 0;
  /** The newest checkpoint of this chain known to verify. */
  #lastSigned: Witness | undefined;
  #checkpointDue = false;

  #priority: AuditEvent[] = [];
  #queue: AuditEvent[] = [];
  #mode: 'memory' | 'spool' = 'memory';
  #spool: Spool | undefined;
  #spoolOpening: Promise<Spool> | undefined;
  /** Next unread byte of the spool; undefined until the head is known (restart: computed from the chain). */
  #spoolOffset: number | undefined;
  #spoolPending: string[] = [];
  #spoolPendingBytes = 0;
  #spoolWriting: Promise<void> = Promise.resolve();
  #spoolWritesInFlight = 0;
  #spoolTimer: TimerHandle | undefined;
  #droppedUnreported = 0;

  #timer: TimerHandle | undefined;
  #checkpointTimer: TimerHandle | undefined;
  #flushing: Promise<void> | undefined;
  /** close() has begun: no timer, retry or flush() starts a pump any more. */
  #closing = false;
  #closingDone: Promise<void> | undefined;
  /** close() is done: the spool file is closed and nothing may touch it. */
  #closed = false;
  /** The wait before the next write after a store failure; 0 while writes succeed. */
  #backoffMs = 0;
  readonly #retryDelays = new Delays({ minMs: 100, maxMs: 2_000 });

  private constructor(o: AuditWriterOptions) {
    this.#o = o;
    this.replica = o.replica;
    this.#chain = o.replica;
    this.#store = o.store;
    this.#clock = o.clock;
    this.#batchSize = Math.max(1, o.batchSize ?? 256);
    this.#interval = o.flushIntervalMs ?? 50;
    this.#maxQueued = o.maxQueued ?? 100_000;
    this.#checkpointEvery = Math.max(1, o.checkpointEvery ?? 1_000);
    this.#checkpointIntervalMs = Math.max(1, o.checkpointIntervalMs ?? 10_000);
    this.#spoolMax = o.spoolMaxBytes ?? 1024 ** 3;
    this.#onError = o.onError ?? (() => undefined);
  }

  /**
   * Opens the writer: continues this replica's chain after its last record (verified first),
   * opens or creates the audit key when a KEK is given, and replays a spool left behind.
   * With a spoolDir, an unreachable store does not stop it opening: events spool until it answers.
   */
  static async open(o: AuditWriterOptions): Promise<AuditWriter> {
    if (!REPLICA_ID.test(o.replica)) throw new TypeError(`bad replica id ${JSON.stringify(o.replica)}`);
    const w = new AuditWriter(o);
    if (o.spoolDir !== undefined) {
      const left = await Spool.openExisting(o.spoolDir, o.replica);
      if (left !== undefined) {
        w.#spool = left;
        w.#spoolOpening = Promise.resolve(left);
        w.#mode = 'spool';
      }
    }
    try {
      await w.#ready(true);
    } catch (err) {
      if (o.spoolDir === undefined || !isUnavailable(err)) {
        await w.#spool?.close();
        throw err;
      }
      w.#failed(err);
      w.#enterSpool();
    }
    w.#armCheckpointTimer();
    if (w.#mode === 'spool') w.#schedule(0);
    return w;
  }

  /** The chain this writer appends to (the replica id unless it had to fork). */
  get chain(): string {
    return this.#chain;
  }

  /** The last record known to be in the store. */
  get head(): { chain: string; seq: number; hash: string } | undefined {
    return this.#head === undefined ? undefined : { chain: this.#chain, seq: this.#head.seq, hash: this.#head.hash };
  }

  append(event: AuditEvent): void {
    if (this.#closed) return;
    this.stats.appended++;
    if (this.#mode === 'spool') {
      const line = encodeEvent(event, this.#clock);
      const size = (this.#spool?.size ?? 0) + this.#spoolPendingBytes + line.length + 1;
      if (size > this.#spoolMax || this.#spoolPending.length >= this.#maxQueued) {
        this.#drop();
        return;
      }
      this.#spoolPending.push(line);
      this.#spoolPendingBytes += line.length + 1;
      this.stats.queued = this.#spoolPending.length;
      if (this.#spoolPending.length >= this.#batchSize) this.#writeSpool();
      else if (this.#spoolTimer === undefined) {
        this.#spoolTimer = this.#clock.setTimer(() => {
          this.#spoolTimer = undefined;
          this.#writeSpool();
        }, this.#interval);
      }
      return;
    }
    if (this.#queue.length >= this.#maxQueued) {
      this.#drop();
      return;
    }
    this.#queue.push(event);
    this.stats.queued = this.#queue.length;
    // a running pump takes what is queued before it stops: no need to wake another
    if (this.#queue.length >= this.#batchSize && this.#backoffMs === 0) {
      if (this.#flushing === undefined) void this.flush();
    }
    else this.#schedule(this.#backoffMs || this.#interval);
  }

  #drop(): void {
    this.stats.dropped++;
    if (this.#droppedUnreported++ === 0) this.#onError(new GatehouseError('ERR_AUDIT_SPOOL_FULL', `audit events are being dropped (memory queue or spool full); an alert will count them`));
  }

  #schedule(ms: number): void {
    if (this.#timer !== undefined || this.#closing) return;
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      void this.flush();
    }, ms);
  }

  #armCheckpointTimer(): void {
    if (this.#closing || this.#o.kek === undefined) return;
    this.#checkpointTimer = this.#clock.setTimer(() => {
      this.#checkpointTimer = undefined;
      if (this.#head !== undefined && this.#head.seq > this.#lastCheckpointSeq) {
        this.#checkpointDue = true;
        void this.flush();
      }
      this.#armCheckpointTimer();
    }, this.#checkpointIntervalMs);
  }

  /**
   * Writes everything queued (and drains the spool); resolves when done or when the store failed.
   * Once close() has begun it starts no pump of its own: it waits for the one running.
   */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#closing) return;
    return this.#startPump();
  }

  #startPump(): Promise<void> {
    const pump = this.#pump().finally(() => {
      if (this.#flushing === pump) this.#flushing = undefined;
    });
    this.#flushing = pump;
    return pump;
  }

  // ---- the pump: one at a time (flush serialises it) ----

  async #pump(): Promise<void> {
    if (this.#head === undefined) {
      try {
        await this.#ready();
      } catch (err) {
        this.#failed(err);
        return;
      }
    }
    for (;;) {
      const entries = await this.#nextBatch();
      if (entries === undefined) return;
      if (entries.length === 0) break;
      if (!(await this.#commit(entries))) return;
      if (this.#head !== undefined && this.#head.seq - this.#lastCheckpointSeq >= this.#checkpointEvery) await this.#checkpoint();
    }
    if (this.#checkpointDue) await this.#checkpoint();
  }

  /**
   * Finds the chain (the first time: the one the head record names) and its head (verifying the
   * last record), the checkpoint position, the key, and how much of a spool is already in.
   */
  async #ready(strict = false): Promise<void> {
    const store = this.#store;
    await this.#openKey(strict);
    const resumed = this.#started ? undefined : await this.#resume();
    const last = await store.range({ prefix: `${AUDIT_PREFIX}${this.#chain}/` }, { reverse: true, limit: 2 });
    let head: Head = { seq: 0, hash: GENESIS, modRevision: 0 };
    let forked = false;
    const [top, below] = last.kvs;
    if (top !== undefined) {
      const key = parseChainKey(Buffer.from(top.key).toString('utf8'), AUDIT_PREFIX);
      const rec = decodeRecord(top);
      const belowRec = below === undefined ? undefined : decodeRecord(below);
      const problem =
        key === undefined || rec === undefined ? 'is not a chain record'
        : rec.seq !== key.seq ? `holds seq ${rec.seq}`
        : recomputeHash(rec) !== rec.hash ? 'does not match its hash (edited)'
        : below === undefined ? (rec.seq === 1 && rec.prev === GENESIS ? undefined : 'has no predecessor')
        : belowRec === undefined || belowRec.hash !== rec.prev ? 'does not link to the record before it'
        : undefined;
      if (problem === undefined && key !== undefined) head = { seq: key.seq, hash: rec!.hash, modRevision: top.modRevision };
      else {
        this.#head = head;
        this.#abandon(`its last record ${Buffer.from(top.key).toString('utf8')} ${problem ?? 'is malformed'}`, { chain: this.#chain, seq: key?.seq ?? 0, ...(rec !== undefined ? { hash: rec.hash } : {}), signed: false, evidence: 'its last record' });
        head = this.#head;
        forked = true;
      }
    }
    const cp = await store.range({ prefix: `${CHECKPOINT_PREFIX}${this.#chain}/` }, { reverse: true, limit: 1, keysOnly: true });
    const cpKey = cp.kvs[0] === undefined ? undefined : parseChainKey(Buffer.from(cp.kvs[0].key).toString('utf8'), CHECKPOINT_PREFIX);
    this.#lastCheckpointSeq = cpKey?.seq ?? 0;
    if (!this.#started) {
      this.#started = true;
      if (!forked) head = await this.#checkHistory(head, resumed);
    }
    const spool = this.#spool ?? (this.#spoolOpening !== undefined ? await this.#spoolOpening : undefined);
    if (spool !== undefined && this.#spoolOffset === undefined) {
      if (spool.header.afterSeq === -1) {
        // spooled before the head was known: none of it can be in the chain yet
        await spool.setHeader({ gatehouseAuditSpool: 1, chain: this.#chain, afterSeq: head.seq, afterHash: head.hash });
        this.#spoolOffset = spool.dataStart;
      } else this.#spoolOffset = await this.#spoolAlreadyIn(spool);
    }
    this.#head = head;
  }

  async #openKey(strict: boolean): Promise<void> {
    if (this.#o.kek === undefined || this.#key !== undefined || this.#keyFailed) return;
    try {
      this.#key = await ensureAuditKey(this.#store, this.#o.kek, this.#clock);
      this.#trusted = new Map([[this.#key.kid, createPublicKey(this.#key.privateKey)]]);
      this.#heads = new HeadReader(this.#trusted);
    } catch (err) {
      if (strict || isUnavailable(err)) throw err;
      // another KEK, a damaged key record: the chain goes on, checkpoints stop (and the log says why)
      this.#keyFailed = true;
      this.#onError(err);
    }
  }

  /** The chain this replica's head record names (a fork it moved to), when the record verifies. */
  async #resume(): Promise<CheckpointPayload | undefined> {
    if (this.#trusted === undefined) return undefined;
    const kv = await this.#store.get(headKey(this.replica));
    if (kv === undefined) return undefined;
    // one that does not verify is left for `audit verify` to report
    const h = await checkHead(this.replica, Buffer.from(kv.value).toString('utf8'), this.#trusted);
    if (!isSigned(h)) return undefined;
    this.#chain = h.payload.replica;
    return h.payload;
  }

  /**
   * Before the first write: everything signed about this chain (its head record, its latest
   * checkpoint, other chains' witnesses) must be in it, and an empty chain must be the replica's
   * only one. Otherwise its history was deleted, truncated or replaced: continue in a fresh chain
   * whose first event names the older head, never on top of what is left.
   */
  async #checkHistory(head: Head, resumed: CheckpointPayload | undefined): Promise<Head> {
    const chain = this.#chain;
    const claims: Older[] = [];
    if (this.#trusted !== undefined && this.#heads !== undefined) {
      if (resumed !== undefined && resumed.replica === chain) claims.push({ chain, seq: resumed.seq, hash: resumed.hash, signed: true, evidence: `its head record ${headKey(this.replica)}` });
      const own = await latestSignedCheckpoint(this.#store, chain, this.#trusted);
      if (own !== undefined) {
        claims.push({ chain, seq: own.seq, hash: own.hash, signed: true, evidence: `its checkpoint at seq ${own.seq}` });
        this.#see(own);
        this.#lastSigned = { chain, seq: own.seq, hash: own.hash };
      }
      // head records carry no witness (kept small for the read at every checkpoint): what the
      // others witnessed is in the checkpoints they name
      for (const h of await this.#heads.read(this.#store)) {
        if (!isSigned(h) || h.payload.replica === chain) continue;
        this.#see(h.payload);
        const kv = await this.#store.get(checkpointKey(h.payload.replica, h.payload.seq));
        const check = kv === undefined ? undefined : await verifyCheckpoint(Buffer.from(kv.value).toString('utf8'), this.#trusted);
        if (check?.ok !== true || check.payload.replica !== h.payload.replica || check.payload.seq !== h.payload.seq) continue;
        this.#see(check.payload);
        for (const w of check.payload.witness ?? []) {
          if (w.chain === chain) claims.push({ chain, seq: w.seq, hash: w.hash, signed: true, evidence: `chain ${check.payload.replica}'s checkpoint at seq ${check.payload.seq}` });
        }
      }
    }
    claims.sort((a, b) => b.seq - a.seq);
    for (const c of claims) {
      if (await this.#holds(head, c)) continue;
      this.#head = head;
      this.#abandon(`it holds seq 1..${head.seq}, but ${c.evidence} signed seq ${c.seq} (hash ${c.hash!.slice(0, 12)}…): its history was deleted, truncated or replaced`, c, 'restarted');
      return this.#head;
    }
    if (head.seq > 0) return head;
    const older = await this.#olderChain();
    if (older === undefined) return head;
    this.#head = head;
    this.#abandon(`it starts at seq 1 while chain ${older.chain} of replica ${this.replica} exists (head seq ${older.seq})`, older, 'restarted');
    return this.#head;
  }

  /** Whether the chain at `head` holds the claimed seq with the claimed hash. */
  async #holds(head: Head, c: Older): Promise<boolean> {
    if (c.seq > head.seq) return false;
    if (c.seq === head.seq) return c.hash === head.hash;
    const kv = await this.#store.get(auditKey(this.#chain, c.seq));
    return kv !== undefined && decodeRecord(kv)?.hash === c.hash;
  }

  /** Another chain of this replica (the newest by name), with its head as stored. */
  async #olderChain(): Promise<Older | undefined> {
    const names = new Set<string>();
    for (const prefix of [AUDIT_PREFIX, CHECKPOINT_PREFIX]) {
      for (const n of await chainNames(this.#store, prefix, this.replica)) if (isChainOf(n, this.replica) && n !== this.#chain) names.add(n);
    }
    const chain = [...names].sort().at(-1);
    if (chain === undefined) return undefined;
    const last = await this.#store.range(chainRange(AUDIT_PREFIX, chain), { reverse: true, limit: 1 });
    const rec = last.kvs[0] === undefined ? undefined : decodeRecord(last.kvs[0]);
    if (rec !== undefined) return { chain, seq: rec.seq, hash: rec.hash, signed: false, evidence: `chain ${chain} in the store` };
    const cp = await this.#store.range(chainRange(CHECKPOINT_PREFIX, chain), { reverse: true, limit: 1, keysOnly: true });
    const seq = cp.kvs[0] === undefined ? 0 : (parseChainKey(Buffer.from(cp.kvs[0].key).toString('utf8'), CHECKPOINT_PREFIX)?.seq ?? 0);
    return { chain, seq, signed: false, evidence: `checkpoints of chain ${chain} in the store` };
  }

  /** Takes a verified checkpoint's head, and what it witnessed, into the witness (newest seq per chain). */
  #see(p: CheckpointPayload): void {
    this.#witnessed({ chain: p.replica, seq: p.seq, hash: p.hash });
    for (const w of p.witness ?? []) this.#witnessed(w);
  }

  #witnessed(w: Witness): void {
    if (w.chain === this.#chain) return;
    const had = this.#witness.get(w.chain);
    if (had === undefined || w.seq > had.seq) this.#witness.set(w.chain, { chain: w.chain, seq: w.seq, hash: w.hash });
  }

  /**
   * After a restart: the first spool byte not yet in the chain. Lines after the header landed at
   * afterSeq+1, afterSeq+2, ... (an alert may sit between them), so walk the chain from afterSeq
   * and match lines in order. If the chain no longer holds what the header says, replay everything
   * (duplicates are then possible, loss is not).
   */
  async #spoolAlreadyIn(spool: Spool): Promise<number> {
    const h = spool.header;
    let offset = spool.dataStart;
    if (h.afterSeq > 0) {
      const at = await this.#store.get(auditKey(h.chain, h.afterSeq));
      const rec = at === undefined ? undefined : decodeRecord(at);
      if (rec?.hash !== h.afterHash) {
        this.#onError(new GatehouseError('ERR_AUDIT_SPOOL_INVALID', `${spool.file}: chain ${h.chain} no longer holds seq ${h.afterSeq} as spooled; replaying the whole spool`));
        return offset;
      }
    }
    let pending = await spool.read(offset, 512);
    for await (const page of rangePages(this.#store, chainRange(AUDIT_PREFIX, h.chain, h.afterSeq + 1), { limit: 512 })) {
      for (const kv of page) {
        const rec = decodeRecord(kv);
        if (pending.length === 0) pending = await spool.read(offset, 512);
        const line = pending[0];
        if (line === undefined) return offset;
        if (rec !== undefined && canonicalJson(rec.event) === line.line) {
          offset += line.bytes;
          pending.shift();
        }
      }
    }
    return offset;
  }

  /** The next batch: alerts first, then the queue or the spool. undefined: wait (spool write in flight failed). */
  async #nextBatch(): Promise<Entry[] | undefined> {
    if (this.#closed) return undefined;
    const limit = Math.min(this.#batchSize, LIMITS.maxTxnOps - 1);
    if (this.#droppedUnreported > 0) {
      this.#priority.push({ '@timestamp': now(this.#clock), 'event.action': 'audit.events.dropped', 'event.outcome': 'failure', 'event.kind': 'alert', 'event.severity': 8, 'gatehouse.error_code': 'ERR_AUDIT_SPOOL_FULL', 'gatehouse.dropped': this.#droppedUnreported });
      this.#droppedUnreported = 0;
    }
    const entries: Entry[] = this.#priority.slice(0, limit).map((e) => ({ canonical: encodeEvent(e, this.#clock), source: 'priority', bytes: 0 }));
    if (this.#mode === 'memory') {
      for (const e of this.#queue.slice(0, limit - entries.length)) entries.push({ canonical: encodeEvent(e, this.#clock), source: 'queue', bytes: 0 });
      return entries;
    }
    const spool = await this.#spoolOpening;
    if (spool === undefined || this.#spoolOffset === undefined) return entries;
    if (entries.length < limit) {
      for (const l of await spool.read(this.#spoolOffset, limit - entries.length)) entries.push({ canonical: l.line, source: 'spool', bytes: l.bytes });
    }
    if (entries.length > 0) return entries;
    // Everything durable is in the chain: write what waits, or leave spool mode.
    if (this.#spoolPending.length > 0 || this.#spoolWritesInFlight > 0) {
      this.#writeSpool();
      await this.#spoolWriting;
      return this.#spoolOffset < spool.size ? this.#nextBatch() : undefined;
    }
    this.#mode = 'memory';
    this.#spool = undefined;
    this.#spoolOpening = undefined;
    this.#spoolOffset = undefined;
    await spool.remove();
    return [];
  }

  /** One transaction; true when the loop may go on. */
  async #commit(entries: Entry[]): Promise<boolean> {
    const head = this.#head!;
    const chain = this.#chain;
    const ops: TxnOp[] = [];
    const hashes: string[] = [];
    let prev = head.hash;
    for (let i = 0; i < entries.length; i++) {
      const seq = head.seq + 1 + i;
      const hash = chainHash(prev, entries[i]!.canonical);
      ops.push({ op: 'put', key: auditKey(chain, seq), value: encodeRecord(seq, prev, hash, entries[i]!.canonical) });
      hashes.push(hash);
      prev = hash;
    }
    const compares: Compare[] = [{ key: auditKey(chain, head.seq + 1), target: 'version', op: '==', value: 0 }];
    if (head.seq > 0) compares.push({ key: auditKey(chain, head.seq), target: 'modRevision', op: '==', value: head.modRevision });
    try {
      const r = await this.#store.txn(compares, ops);
      if (r.succeeded) {
        this.#advance(entries, entries.length, { seq: head.seq + entries.length, hash: prev, modRevision: r.revision });
        return true;
      }
      // A retry of a write that did land (timed out, then committed) looks like a conflict: adopt it.
      const adopted = await this.#adopt(head, hashes);
      if (adopted !== undefined) {
        this.#advance(entries, adopted.count, { seq: head.seq + adopted.count, hash: hashes[adopted.count - 1]!, modRevision: adopted.modRevision });
        return true;
      }
    } catch (err) {
      this.#failed(err);
      if (this.#o.spoolDir !== undefined) this.#enterSpool();
      return false;
    }
    this.#abandon(`another writer changed it at seq ${head.seq + 1} (two processes with replica id ${this.replica}?)`, { chain, seq: head.seq + 1, signed: false, evidence: 'a conflicting write' });
    return true;
  }

  async #adopt(head: Head, hashes: string[]): Promise<{ count: number; modRevision: number } | undefined> {
    const r = await this.#store.range({ start: auditKey(this.#chain, head.seq), end: auditKey(this.#chain, head.seq + hashes.length + 1) });
    let i = 0;
    let modRevision = 0;
    for (const kv of r.kvs) {
      const key = parseChainKey(Buffer.from(kv.key).toString('utf8'), AUDIT_PREFIX);
      if (key === undefined) return undefined;
      if (key.seq === head.seq) {
        if (kv.modRevision !== head.modRevision) return undefined;
        continue;
      }
      if (key.seq !== head.seq + 1 + i || decodeRecord(kv)?.hash !== hashes[i]) break;
      modRevision = kv.modRevision;
      i++;
    }
    return i > 0 ? { count: i, modRevision } : undefined;
  }

  #advance(entries: Entry[], count: number, head: Head): void {
    let priority = 0;
    let queue = 0;
    for (const e of entries.slice(0, count)) {
      if (e.source === 'priority') priority++;
      else if (e.source === 'queue') queue++;
      else this.#spoolOffset! += e.bytes;
    }
    this.#priority.splice(0, priority);
    this.#queue.splice(0, queue);
    this.#head = head;
    this.#backoffMs = 0;
    this.stats.written += count;
    this.stats.queued = this.#queue.length + this.#spoolPending.length;
  }

  /** The store failed: count, report, retry with backoff. */
  #failed(err: unknown): void {
    this.stats.failures++;
    this.#onError(err);
    // a success (#advance) set it back to 0: start the delays over
    if (this.#backoffMs === 0) this.#retryDelays.reset();
    this.#backoffMs = this.#retryDelays.next();
    this.#schedule(this.#backoffMs);
  }

  /** Moves what is queued to a new spool file; from now on append() writes there. */
  #enterSpool(): void {
    if (this.#mode === 'spool' || this.#o.spoolDir === undefined) return;
    this.#mode = 'spool';
    const head = this.#head;
    this.#spoolPending = this.#queue.map((e) => encodeEvent(e, this.#clock));
    this.#spoolPendingBytes = this.#spoolPending.reduce((n, l) => n + l.length + 1, 0);
    this.#queue = [];
    const dir = this.#o.spoolDir;
    this.#spoolOpening = Spool.create(dir, this.replica, { gatehouseAuditSpool: 1, chain: this.#chain, afterSeq: head?.seq ?? -1, afterHash: head?.hash ?? GENESIS }).then((s) => {
      this.#spool = s;
      if (head !== undefined) this.#spoolOffset = s.dataStart;
      return s;
    });
    this.#spoolOpening.catch((err: unknown) => this.#onError(err));
    this.#writeSpool();
  }

  /** Appends pending lines to the spool file and fsyncs them (one write at a time, in order). */
  #writeSpool(): void {
    this.#spoolTimer?.cancel();
    this.#spoolTimer = undefined;
    const lines = this.#spoolPending;
    if (lines.length === 0) return;
    const bytes = this.#spoolPendingBytes;
    this.#spoolPending = [];
    this.#spoolPendingBytes = 0;
    this.#spoolWritesInFlight++;
    const opening = this.#spoolOpening;
    this.#spoolWriting = this.#spoolWriting
      .then(async () => {
        const spool = await opening;
        if (spool === undefined) throw new GatehouseError('ERR_AUDIT_SPOOL_INVALID', 'no spool file');
        await spool.append(lines);
        this.stats.spooled += lines.length;
      })
      .catch((err: unknown) => {
        // Keep the lines (in front, in order) and try again later.
        this.#spoolPending = [...lines, ...this.#spoolPending];
        this.#spoolPendingBytes += bytes;
        this.#onError(err);
        if (this.#spoolTimer === undefined && !this.#closing) {
          this.#spoolTimer = this.#clock.setTimer(() => {
            this.#spoolTimer = undefined;
            this.#writeSpool();
          }, 1000);
        }
      })
      .finally(() => {
        this.#spoolWritesInFlight--;
      });
  }

  /**
   * The chain cannot be extended safely: continue in a fresh chain whose first event says why and
   * names the older head; the fresh chain's checkpoints go on witnessing what was signed of the old.
   */
  #abandon(why: string, older: Older, kind: 'forked' | 'restarted' = 'forked'): void {
    const old = this.#chain;
    const fresh = `${this.replica.slice(0, 100)}.fork-${this.#clock.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    const code = kind === 'forked' ? 'ERR_AUDIT_CHAIN_FORKED' : 'ERR_AUDIT_CHAIN_RESTARTED';
    const err = new GatehouseError(code, `audit chain ${old}: ${why}; continuing in chain ${fresh}`, { details: { chain: older.chain, seq: older.seq, fresh } });
    this.#chain = fresh;
    if (this.#lastSigned !== undefined) this.#witnessed(this.#lastSigned);
    if (older.signed && older.hash !== undefined) this.#witnessed({ chain: older.chain, seq: older.seq, hash: older.hash });
    this.#head = { seq: 0, hash: GENESIS, modRevision: 0 };
    this.#lastCheckpointSeq = 0;
    this.#lastSigned = undefined;
    // sign the alert soon: the head record then names the fresh chain
    this.#checkpointDue = this.#key !== undefined;
    this.stats.forks++;
    this.#priority.unshift({
      '@timestamp': now(this.#clock),
      'event.action': `audit.chain.${kind}`,
      'event.outcome': 'failure',
      'event.kind': 'alert',
      'event.severity': 9,
      'event.reason': err.message.slice(0, 500),
      'gatehouse.error_code': code,
      'gatehouse.audit.chain': older.chain,
      'gatehouse.audit.seq': older.seq,
      ...(older.hash !== undefined ? { 'gatehouse.audit.hash': older.hash } : {}),
      'gatehouse.audit.evidence': older.evidence,
    });
    this.#onError(err);
  }

  async #checkpoint(): Promise<void> {
    const head = this.#head;
    const key = this.#key;
    if (key === undefined || head === undefined || head.seq <= this.#lastCheckpointSeq) {
      this.#checkpointDue = false;
      return;
    }
    const chain = this.#chain;
    try {
      for (const h of (await this.#heads?.read(this.#store)) ?? []) if (isSigned(h)) this.#see(h.payload);
      const witness = [...this.#witness.values()].filter((w) => w.chain !== chain).sort((a, b) => (a.chain < b.chain ? -1 : a.chain > b.chain ? 1 : 0));
      const storeRevision = await this.#store.revision();
      const payload: CheckpointPayload = { replica: chain, seq: head.seq, hash: head.hash, time: now(this.#clock), storeRevision };
      const jws = await signCheckpoint(key, { ...payload, witness });
      const at = checkpointKey(chain, head.seq);
      // the head record signs the same head without the witness: every checkpoint reads them all
      const toHead: TxnOp = { op: 'put', key: headKey(this.replica), value: await signCheckpoint(key, payload) };
      // an existing checkpoint is a retry that landed: keep it, still move the head record
      await this.#store.txn([{ key: at, target: 'version', op: '==', value: 0 }], [{ op: 'put', key: at, value: jws }, toHead], [toHead]);
      if (chain === this.#chain) {
        this.#lastCheckpointSeq = Math.max(this.#lastCheckpointSeq, head.seq);
        this.#lastSigned = { chain, seq: head.seq, hash: head.hash };
      }
      this.#checkpointDue = false;
      this.stats.checkpoints++;
    } catch (err) {
      this.#onError(err); // tried again at the next batch or interval
    }
  }

  /**
   * Flushes what is queued (bounded by the store's own deadlines), signs a last checkpoint and
   * stops. A pump already running is waited for, the last one is close()'s own, and no other can
   * start after it, so the spool file is closed only when nothing can read or write it.
   */
  close(): Promise<void> {
    this.#closingDone ??= this.#close();
    return this.#closingDone;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    this.#cancelTimers();
    this.#checkpointDue = true;
    while (this.#flushing) await this.#flushing.catch(() => undefined);
    // events appended while the last batch committed get another pump, unless the store is failing
    for (let round = 0; round < 3; round++) {
      await this.#startPump().catch(() => undefined);
      if (this.#backoffMs > 0 || (this.#queue.length === 0 && this.#priority.length === 0)) break;
    }
    this.#cancelTimers(); // the last pump may have armed a retry before it saw #closing
    this.#writeSpool();
    await this.#spoolWriting;
    this.#cancelTimers();
    this.#closed = true;
    await this.#spool?.close();
  }

  #cancelTimers(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#checkpointTimer?.cancel();
    this.#checkpointTimer = undefined;
    this.#spoolTimer?.cancel();
    this.#spoolTimer = undefined;
  }
}

function isUnavailable(err: unknown): boolean {
  return isGatehouseError(err, 'ERR_STORE_UNAVAILABLE') || isGatehouseError(err, 'ERR_STORE_CLOSED');
}
