// Every replica's set of what is revoked, fed by two paths: the store (loaded at open, then a
// watch on /gatehouse/revoked/) and the bus (revocation.>, resumed by the bus from the last
// sequence it handed over). Whichever path brings a revocation first applies it; the other is a
// no-op. Lookups are synchronous Map lookups: they run on every request and handshake.
import { isGatehouseError } from '../errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { PrefixMirror, text, type KeyValue, type Store, type WatchEvent } from '../store/index.js';
import type { Bus, BusMessage, Subscription } from '../bus/index.js';
import { canonicalSerial } from '../pki/index.js';
import { REVOCATION_PATTERN, REVOKED_PREFIX, isRevocationKind, type RevocationKind, type RevocationRecord } from './types.js';

export type RevocationPath = 'store' | 'bus';

export interface RevocationSetOptions {
  store: Store;
  /** Undefined: store watch only. */
  bus?: Bus | undefined;
  clock?: Clock;
  onError?: (err: Error) => void;
}

export interface RevocationSetStats {
  size: number;
  /** Revocations this replica learned first from the store watch / from the bus. */
  firstViaStore: number;
  firstViaBus: number;
  /** The last bus sequence handled (0: none). */
  busSequence: number;
  busSubscribed: boolean;
  storeRevision: number;
}

type Listener = (record: RevocationRecord, via: RevocationPath) => void;

const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 10_000;
const SWEEP_MS = 60_000;
/** A bus-only entry is kept this long across a store resync (its store write may still be on the way). */
const BUS_ONLY_GRACE_MS = 30_000;

interface Entry {
  record: RevocationRecord;
  /** Store key present (watch or range) — false while known from the bus only. */
  stored: boolean;
  at: number;
}

function keyOf(kind: RevocationKind, id: string): string {
  return `${kind}\u0000${id}`;
}

export class RevocationSet {
  readonly #bus: Bus | undefined;
  readonly #clock: Clock;
  readonly #onError: (err: Error) => void;
  readonly #entries = new Map<string, Entry>();
  /** Deleted keys (lease ended or lifted) -> revokedAt: an older bus message cannot bring them back. */
  readonly #lifted = new Map<string, string>();
  readonly #listeners = new Set<Listener>();
  #mirror: PrefixMirror | undefined;
  #sub: Subscription | undefined;
  #busSeq = 0;
  #closed = false;
  #busRetry: ReturnType<typeof setTimeout> | undefined;
  #busDelay = RETRY_MIN_MS;
  #sweep: ReturnType<typeof setInterval> | undefined;
  #viaStore = 0;
  #viaBus = 0;

  private constructor(o: RevocationSetOptions) {
    this.#bus = o.bus;
    this.#clock = o.clock ?? systemClock;
    this.#onError = o.onError ?? (() => undefined);
  }

  /** Loads the stored set, starts the watch and (best effort) the bus subscription. */
  static async open(o: RevocationSetOptions): Promise<RevocationSet> {
    const set = new RevocationSet(o);
    // subscribe first (only new messages): anything published before is already in the store read below
    await set.#subscribe();
    set.#mirror = await PrefixMirror.open(
      { store: o.store, prefix: REVOKED_PREFIX, clock: set.#clock, retryMinMs: RETRY_MIN_MS, retryMaxMs: RETRY_MAX_MS },
      { snapshot: (kvs, _rev, firstLoad) => set.#load(kvs, firstLoad), event: (e) => set.#apply(e), onError: (e) => set.#onError(e) },
    );
    set.#sweep = setInterval(() => set.#expire(), SWEEP_MS);
    set.#sweep.unref();
    return set;
  }

  has(kind: RevocationKind, id: string): boolean {
    return this.#entries.has(keyOf(kind, id));
  }

  get(kind: RevocationKind, id: string): RevocationRecord | undefined {
    return this.#entries.get(keyOf(kind, id))?.record;
  }

  isCertRevoked(serial: string): boolean {
    const s = canonicalSerial(serial);
    return s !== undefined && this.#entries.has(keyOf('cert', s));
  }

  /** The token hook (openTokenService isRevoked): its jti, its subject (user or service), its session. */
  isTokenRevoked(claims: { jti: string; sub: string; sid?: string | undefined }): boolean {
    return (
      this.#entries.has(keyOf('token', claims.jti)) ||
      this.#entries.has(keyOf('user', claims.sub)) ||
      this.#entries.has(keyOf('service', claims.sub)) ||
      (claims.sid !== undefined && this.#entries.has(keyOf('session', claims.sid)))
    );
  }

  entries(): RevocationRecord[] {
    return [...this.#entries.values()].map((e) => e.record);
  }

  get size(): number {
    return this.#entries.size;
  }

  stats(): RevocationSetStats {
    return { size: this.#entries.size, firstViaStore: this.#viaStore, firstViaBus: this.#viaBus, busSequence: this.#busSeq, busSubscribed: this.#sub !== undefined, storeRevision: this.#mirror?.revision ?? 0 };
  }

  /** Called once per revocation newly known here (not for those loaded at open), from whichever path came first. */
  onRevoked(fn: Listener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#busRetry !== undefined) clearTimeout(this.#busRetry);
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    const s = this.#sub;
    this.#sub = undefined;
    await Promise.all([this.#mirror?.close(), s?.close().catch(() => undefined)]);
  }

  // ---- applying -------------------------------------------------------------------------

  /** Adds a record; tells the listeners when it is new. Idempotent. */
  #add(record: RevocationRecord, via: RevocationPath, stored: boolean, emit: boolean): void {
    const k = keyOf(record.kind, record.id);
    const cur = this.#entries.get(k);
    if (cur !== undefined) {
      if (stored && !cur.stored) this.#entries.set(k, { ...cur, stored: true, record });
      return;
    }
    this.#entries.set(k, { record, stored, at: this.#clock.now() });
    if (!emit) return;
    if (via === 'store') this.#viaStore++;
    else this.#viaBus++;
    for (const fn of this.#listeners) {
      try {
        fn(record, via);
      } catch (err) {
        this.#onError(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  #expired(record: RevocationRecord): boolean {
    return record.expiresAt !== null && Date.parse(record.expiresAt) <= this.#clock.now();
  }

  /** Bus-only entries whose lease time has passed (store entries leave with their lease's delete event). */
  #expire(): void {
    for (const [k, e] of this.#entries) if (!e.stored && this.#expired(e.record)) this.#entries.delete(k);
    if (this.#lifted.size > 10_000) this.#lifted.clear();
  }

  // ---- the bus path ---------------------------------------------------------------------

  #onMessage(m: BusMessage): void {
    this.#busSeq = Math.max(this.#busSeq, m.seq);
    let record: RevocationRecord | undefined;
    try {
      record = normalise(JSON.parse(Buffer.from(m.data).toString('utf8')));
    } catch {
      record = undefined;
    }
    if (record === undefined) {
      this.#onError(new Error(`revocation: ignoring an unreadable bus message (seq ${m.seq}, ${m.subject})`));
      return;
    }
    if (this.#expired(record)) return;
    const k = keyOf(record.kind, record.id);
    const lifted = this.#lifted.get(k);
    if (lifted !== undefined && lifted >= record.revokedAt) return;
    this.#add(record, 'bus', false, true);
  }

  async #subscribe(): Promise<void> {
    const bus = this.#bus;
    if (bus === undefined || this.#closed) return;
    try {
      const sub = await bus.subscribe(REVOCATION_PATTERN, (m) => this.#onMessage(m), {
        // after a restart of this subscription: resume after the last message handled
        ...(this.#busSeq > 0 ? { fromSequence: this.#busSeq + 1 } : {}),
        onError: (err) => {
          this.#onError(err);
          // the subscription ended on its own (e.g. the stream no longer holds our sequence): start again
          if (isGatehouseError(err, 'ERR_BUS_SEQUENCE_GONE')) {
            this.#busSeq = 0;
            this.#restartBus();
          } else if (isGatehouseError(err, 'ERR_BUS_CLOSED')) {
            this.#sub = undefined;
          }
        },
      });
      if (this.#closed) {
        await sub.close();
        return;
      }
      this.#sub = sub;
      this.#busDelay = RETRY_MIN_MS;
    } catch (err) {
      // NATS down at start: the store watch alone keeps the set complete; keep trying the bus
      this.#onError(err instanceof Error ? err : new Error(String(err)));
      if (isGatehouseError(err, 'ERR_BUS_SEQUENCE_GONE')) this.#busSeq = 0;
      this.#scheduleBus();
    }
  }

  #restartBus(): void {
    const old = this.#sub;
    this.#sub = undefined;
    void old?.close().catch(() => undefined);
    this.#scheduleBus();
  }

  #scheduleBus(): void {
    if (this.#closed || this.#bus === undefined) return;
    const delay = this.#busDelay;
    this.#busDelay = Math.min(RETRY_MAX_MS, delay * 2);
    if (this.#busRetry !== undefined) clearTimeout(this.#busRetry);
    this.#busRetry = setTimeout(() => void this.#subscribe(), delay);
    this.#busRetry.unref();
  }

  // ---- the store path -------------------------------------------------------------------

  /** The whole stored set at one revision (at open, and after a lost watch). */
  #load(kvs: readonly KeyValue[], firstLoad: boolean): void {
    const seen = new Set<string>();
    for (const kv of kvs) {
      const rec = this.#decode(kv);
      if (rec === undefined) continue;
      seen.add(keyOf(rec.kind, rec.id));
      this.#add(rec, 'store', true, !firstLoad);
    }
    // gone from the store while we were not watching: the lease ended (or it was lifted)
    const now = this.#clock.now();
    for (const [k, e] of this.#entries) {
      if (seen.has(k)) continue;
      if (!e.stored && now - e.at < BUS_ONLY_GRACE_MS && !this.#expired(e.record)) continue;
      this.#entries.delete(k);
      this.#lifted.set(k, e.record.revokedAt);
    }
  }

  #apply(event: WatchEvent): void {
    if (event.type === 'delete') {
      const parsed = parseKey(text(event.kv.key));
      if (parsed === undefined) return;
      const k = keyOf(parsed.kind, parsed.id);
      const e = this.#entries.get(k);
      if (e !== undefined) {
        this.#entries.delete(k);
        this.#lifted.set(k, e.record.revokedAt);
      }
      return;
    }
    const rec = this.#decode(event.kv);
    if (rec !== undefined) this.#add(rec, 'store', true, true);
  }

  /** A key that names a kind and id counts as revoked even when its value is unreadable: fail closed. */
  #decode(kv: KeyValue): RevocationRecord | undefined {
    const key = text(kv.key);
    const parsed = parseKey(key);
    if (parsed === undefined) {
      this.#onError(new Error(`revocation: ignoring ${JSON.stringify(key.slice(0, 120))}`));
      return undefined;
    }
    const fallback: RevocationRecord = { format: 1, kind: parsed.kind, id: parsed.id, reason: 'unspecified', revokedAt: new Date(this.#clock.now()).toISOString(), by: 'unknown', expiresAt: null };
    try {
      const v = JSON.parse(text(kv.value)) as Record<string, unknown>;
      if (parsed.kind === 'cert') {
        // the existing certificate record (revokeCertificate): {serial, revokedAt, reason, notAfter}
        return { ...fallback, reason: typeof v.reason === 'string' ? v.reason : 'unspecified', revokedAt: typeof v.revokedAt === 'string' ? v.revokedAt : fallback.revokedAt, by: typeof v.by === 'string' ? v.by : 'cert revoke' };
      }
      const rec = normalise(v);
      if (rec === undefined || rec.kind !== parsed.kind || rec.id !== parsed.id) throw new Error('the record does not match its key');
      return rec;
    } catch (cause) {
      this.#onError(new Error(`revocation: the record at ${key.slice(0, 120)} is unreadable; treating it as revoked`, { cause }));
      return fallback;
    }
  }


}

function parseKey(key: string): { kind: RevocationKind; id: string } | undefined {
  if (!key.startsWith(REVOKED_PREFIX)) return undefined;
  const rest = key.slice(REVOKED_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const kind = rest.slice(0, slash);
  if (!isRevocationKind(kind)) return undefined;
  let id: string;
  try {
    id = decodeURIComponent(rest.slice(slash + 1));
  } catch {
    return undefined;
  }
  if (id === '') return undefined;
  if (kind === 'cert') {
    const s = canonicalSerial(id);
    return s === undefined ? undefined : { kind, id: s };
  }
  return { kind, id };
}

/** A record from the bus or the store, checked field by field. */
export function normalise(v: unknown): RevocationRecord | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const r = v as Record<string, unknown>;
  if (!isRevocationKind(r.kind) || typeof r.id !== 'string' || r.id === '') return undefined;
  if (typeof r.revokedAt !== 'string' || Number.isNaN(Date.parse(r.revokedAt))) return undefined;
  if (r.expiresAt !== null && (typeof r.expiresAt !== 'string' || Number.isNaN(Date.parse(r.expiresAt)))) return undefined;
  const id = r.kind === 'cert' ? canonicalSerial(r.id) : r.id;
  if (id === undefined) return undefined;
  return {
    format: 1,
    kind: r.kind,
    id,
    reason: typeof r.reason === 'string' ? r.reason.slice(0, 200) : 'unspecified',
    revokedAt: r.revokedAt,
    by: typeof r.by === 'string' ? r.by.slice(0, 200) : 'unknown',
    expiresAt: r.expiresAt,
    ...(typeof r.subject === 'string' ? { subject: r.subject } : {}),
  };
}
