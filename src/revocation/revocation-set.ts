// Every replica's set of what is revoked, fed by two paths: the store (loaded at open, then a
// watch on /gatehouse/revoked/) and the bus (revocation.>, resumed by the bus from the last
// sequence it handed over). Whichever path brings a revocation first applies it; the other is a
// no-op. Lookups are synchronous Map lookups: they run on every request and handshake.
import { GatehouseError, isGatehouseError } from '../errors.js';
import { Backoff } from '../lib/backoff.js';
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.js';
import { text, type KeyValue, type Store } from '../store/index.js';
import { PrefixMirror, reporterFor, type FollowPhase, type FollowerReporter } from '../store/mirror.js';
import type { Bus, BusMessage, Subscription } from '../bus/index.js';
import { canonicalSerial } from '../pki/index.js';
import { LIFT_SUBJECT_PREFIX, REVOCATION_PATTERN, REVOKED_PREFIX, isRevocationKind, type RevocationKind, type RevocationRecord } from './types.js';

export type RevocationPath = 'store' | 'bus';

export interface RevocationSetOptions {
  store: Store;
  /** Undefined: store watch only. */
  bus?: Bus | undefined;
  clock?: Clock;
  /** Bus trouble, listener failures and (unless `follower` is given) unreadable records and lost watches. */
  onError?: (err: Error) => void;
  /** Where the store follower reports unreadable records, lost watches and resyncs (the gateway's shared reporter). */
  follower?: FollowerReporter;
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

/** Re-reading the store after a lost watch, and re-subscribing to the bus. */
const RETRY = { minMs: 250, maxMs: 10_000 };
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
  #mirror: PrefixMirror<RevocationRecord> | undefined;
  #sub: Subscription | undefined;
  #busSeq = 0;
  #closed = false;
  readonly #busRetry: Backoff;
  #sweep: TimerHandle | undefined;
  #viaStore = 0;
  #viaBus = 0;

  private constructor(o: RevocationSetOptions) {
    this.#bus = o.bus;
    this.#clock = o.clock ?? systemClock;
    this.#onError = o.onError ?? (() => undefined);
    this.#busRetry = new Backoff(this.#clock, RETRY, () => this.#subscribe(), (err) => this.#busFailed(err));
  }

  /** Loads the stored set, starts the watch and (best effort) the bus subscription. */
  static async open(o: RevocationSetOptions): Promise<RevocationSet> {
    const set = new RevocationSet(o);
    // subscribe first (only new messages): anything published before is already in the store read below
    if (set.#bus !== undefined) await set.#subscribe().catch((err: unknown) => set.#busFailed(err, true));
    set.#mirror = await PrefixMirror.open<RevocationRecord>(
      {
        store: o.store,
        prefix: REVOKED_PREFIX,
        clock: set.#clock,
        retry: RETRY,
        reporter: o.follower ?? reporterFor(set.#onError),
        decode: (kv, name) => decodeStoredRevocation(kv, name, set.#clock.now()),
      },
      {
        put: (_name, rec, _kv, phase) => set.#add(rec, 'store', true, phase !== 'load'),
        invalid: (name, _kv, phase) => set.#failClosed(name, phase),
        delete: (name) => set.#removeStored(name),
        synced: (_rev, phase) => {
          if (phase === 'resync') set.#dropUnstored();
        },
      },
    ).catch(async (err: unknown) => {
      await set.close();
      throw err;
    });
    set.#armSweep();
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
    this.#busRetry.stop();
    this.#sweep?.cancel();
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

  #armSweep(): void {
    if (this.#closed) return;
    this.#sweep = this.#clock.setTimer(() => {
      this.#expire();
      this.#armSweep();
    }, SWEEP_MS);
  }

  /** Bus-only entries whose lease time has passed (store entries leave with their lease's delete event). */
  #expire(): void {
    for (const [k, e] of this.#entries) if (!e.stored && this.#expired(e.record)) this.#entries.delete(k);
    if (this.#lifted.size > 10_000) this.#lifted.clear();
  }

  // ---- the bus path ---------------------------------------------------------------------

  #onMessage(m: BusMessage): void {
    this.#busSeq = Math.max(this.#busSeq, m.seq);
    if (m.subject.startsWith(LIFT_SUBJECT_PREFIX)) {
      this.#onLift(m);
      return;
    }
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

  /**
   * A lift on the bus: the store already deleted the record, and its delete event drops a stored
   * entry (the store decides). Here: an entry this replica knows from the bus only (whose store
   * record it may never see: written and deleted while its watch was away), and any older
   * revocation message of that kind and id still to come.
   */
  #onLift(m: BusMessage): void {
    const lift = parseLift(Buffer.from(m.data).toString('utf8'));
    if (lift === undefined) {
      this.#onError(new Error(`revocation: ignoring an unreadable lift message (seq ${m.seq}, ${m.subject})`));
      return;
    }
    const k = keyOf(lift.kind, lift.id);
    const e = this.#entries.get(k);
    if (e !== undefined && !e.stored && e.record.revokedAt <= lift.revokedAt) this.#entries.delete(k);
    const before = this.#lifted.get(k);
    if (before === undefined || before < lift.revokedAt) this.#lifted.set(k, lift.revokedAt);
  }

  /** Subscribes to the bus (resuming after the last message handled); throws when it cannot, and the caller retries. */
  async #subscribe(): Promise<void> {
    const bus = this.#bus;
    if (bus === undefined || this.#closed) return;
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
    this.#busRetry.reset();
  }

  /** NATS down (at start or later): the store watch alone keeps the set complete; keep trying the bus. */
  #busFailed(err: unknown, schedule = false): void {
    this.#onError(err instanceof Error ? err : new Error(String(err)));
    if (isGatehouseError(err, 'ERR_BUS_SEQUENCE_GONE')) this.#busSeq = 0;
    // the retry loop schedules its next attempt itself; a first attempt outside it asks here
    if (schedule) this.#busRetry.schedule();
  }

  #restartBus(): void {
    const old = this.#sub;
    this.#sub = undefined;
    void old?.close().catch(() => undefined);
    this.#busRetry.schedule();
  }

  // ---- the store path -------------------------------------------------------------------

  /** A key that names a kind and id counts as revoked even when its value is unreadable: fail closed. */
  #failClosed(name: string, phase: FollowPhase): void {
    const parsed = parseRevokedKey(REVOKED_PREFIX + name);
    if (parsed === undefined) return;
    const fallback: RevocationRecord = { format: 1, kind: parsed.kind, id: parsed.id, reason: 'unspecified', revokedAt: new Date(this.#clock.now()).toISOString(), by: 'unknown', expiresAt: null };
    this.#add(fallback, 'store', true, phase !== 'load');
  }

  /** The key left the store (lease end, lifted): an older bus message cannot bring it back. */
  #removeStored(name: string): void {
    const parsed = parseRevokedKey(REVOKED_PREFIX + name);
    if (parsed === undefined) return;
    const k = keyOf(parsed.kind, parsed.id);
    const e = this.#entries.get(k);
    if (e === undefined) return;
    this.#entries.delete(k);
    this.#lifted.set(k, e.record.revokedAt);
  }

  /** After a re-read: bus-only entries not in the store, unless their store write may still be on the way. */
  #dropUnstored(): void {
    const now = this.#clock.now();
    for (const [k, e] of this.#entries) {
      if (e.stored || (now - e.at < BUS_ONLY_GRACE_MS && !this.#expired(e.record))) continue;
      this.#entries.delete(k);
      this.#lifted.set(k, e.record.revokedAt);
    }
  }
}

/** The kind, id and revokedAt of a lift message, or undefined. */
function parseLift(body: string): { kind: RevocationKind; id: string; revokedAt: string } | undefined {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return undefined;
  }
  const l = (v !== null && typeof v === 'object' ? (v as { lift?: unknown }).lift : undefined) as Record<string, unknown> | undefined;
  if (l === null || typeof l !== 'object' || !isRevocationKind(l.kind) || typeof l.id !== 'string' || l.id === '') return undefined;
  if (typeof l.revokedAt !== 'string' || Number.isNaN(Date.parse(l.revokedAt))) return undefined;
  const id = l.kind === 'cert' ? canonicalSerial(l.id) : l.id;
  return id === undefined ? undefined : { kind: l.kind, id, revokedAt: l.revokedAt };
}

/** One stored revocation; throws for a key that names no kind and id, or a value that cannot be read. */
export function decodeStoredRevocation(kv: KeyValue, name: string, now: number): RevocationRecord {
  const key = REVOKED_PREFIX + name;
  const parsed = parseRevokedKey(key);
  if (parsed === undefined) throw new GatehouseError('ERR_STORE_CORRUPT', `revocation: ignoring ${JSON.stringify(key.slice(0, 120))}: not <kind>/<id>`);
  const unreadable = (why: string): GatehouseError =>
    new GatehouseError('ERR_STORE_CORRUPT', `revocation: the record at ${key.slice(0, 120)} is unreadable (${why}); treating it as revoked`);
  let v: unknown;
  try {
    v = JSON.parse(text(kv.value));
  } catch {
    throw unreadable('not JSON');
  }
  if (parsed.kind === 'cert') {
    // the existing certificate record (revokeCertificate): {serial, revokedAt, reason, notAfter}
    const c = (v !== null && typeof v === 'object' ? v : {}) as Record<string, unknown>;
    return {
      format: 1, kind: 'cert', id: parsed.id, expiresAt: null,
      reason: typeof c.reason === 'string' ? c.reason : 'unspecified',
      revokedAt: typeof c.revokedAt === 'string' ? c.revokedAt : new Date(now).toISOString(),
      by: typeof c.by === 'string' ? c.by : 'cert revoke',
    };
  }
  const rec = normalise(v);
  if (rec === undefined || rec.kind !== parsed.kind || rec.id !== parsed.id) throw unreadable('the record does not match its key');
  return rec;
}

/** The kind and (canonical) id a key under revoked/ names, or undefined: such a key revokes nothing. */
export function parseRevokedKey(key: string): { kind: RevocationKind; id: string } | undefined {
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
