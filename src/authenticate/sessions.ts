// People's sessions. The cookie holds 256 random bits; the store holds only their SHA-256,
// under a lease (idle timeout) shared by the session's per-host aliases and its index entry,
// so revoking that one lease ends the session everywhere. Every replica keeps all sessions
// (and every user's status) in memory, current through two store followers: a lookup per proxied
// request is one hash and one Map lookup. lastSeen is written back lazily, at most once per
// writeback interval, together with a lease keepalive. The cache keeps only what lookups need
// (about 400 bytes a session; ip and userAgent stay in the store) and shares values that
// repeat across sessions (role maps, factor lists, hosts).
import { randomBytes } from 'node:crypto';
import { GatehouseError, isGatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { KeyValue, LeaseId, Store } from '../store/index.js';
import { decodeOrThrow, describeSessionHash, describeSessionKey, jsonCodec, storeKeys } from '../store/keys.js';
import { PrefixMirror, reporterFor, type FollowPhase, type FollowerReporter } from '../store/mirror.js';
import { updateKey } from '../store/update.js';
import { isSecretShape, randomSecret, sha256hex } from './lib/digest.js';
import { Interner } from './lib/intern.js';
import { commit, parseRecord, ttlSeconds, unchanged, type Writes } from './lib/records.js';
import { SESSIONS_PREFIX, USERS_PREFIX, type RoleMap, type SessionAlias, type SessionRecord, type StoredSession, type UserRecord } from './types.js';

export interface SessionManagerOptions {
  store: Store;
  clock: Clock;
  idleMs: number;
  absoluteMs: number;
  /** Failed lastSeen writebacks and (unless `follower` is given) unreadable records and lost watches. */
  onError?: (err: Error) => void;
  /** Where the store followers (users, sessions) report unreadable records, lost watches and resyncs. */
  follower?: FollowerReporter;
  /**
   * A person's identity ended here (so their open channels can be closed): a session ended
   * (logout, expiry, revocation, its record gone or unreadable) or a user was disabled, removed
   * or became unreadable — whether on this replica or, through the followers, on another.
   */
  onEnded?: (end: SessionEnd) => void;
}

/** What ended: a session (by its public sid, never the cookie or its hash) or every session of a user. */
export interface SessionEnd {
  kind: 'session' | 'user';
  id: string;
}

/** What a request learns from its session. */
export interface SessionView {
  /** SHA-256 of the primary session's id: the store key. */
  hash: string;
  sid: string;
  userId: string;
  roles: RoleMap;
  amr: readonly string[];
  acr: string;
  credentialId: string;
  lastWebAuthnAt: number;
  createdAt: number;
  /** The absolute end of the session: no channel that carries it may outlive it. */
  expiresAt: number;
}

export interface NewSession {
  userId: string;
  roles: RoleMap;
  amr: string[];
  acr: string;
  credentialId: string;
  lastWebAuthnAt: number;
  host: string;
  ip: string;
  userAgent: string;
}

export interface SessionDraft {
  /** The cookie value: goes to the browser and nowhere else. */
  id: string;
  hash: string;
  record: SessionRecord;
  writes: Writes;
}

/** A primary session as lookups need it: the record without ip and userAgent, plus its store revision. */
interface CachedPrimary {
  readonly kind: 'primary';
  readonly modRevision: number;
  readonly sid: string;
  readonly userId: string;
  readonly roles: RoleMap;
  readonly amr: readonly string[];
  readonly acr: string;
  readonly credentialId: string;
  readonly host: string;
  readonly createdAt: number;
  readonly lastSeen: number;
  readonly lastWebAuthnAt: number;
  readonly expiresAt: number;
  readonly lease: LeaseId;
}

interface CachedAlias {
  readonly kind: 'alias';
  readonly modRevision: number;
  readonly primary: string;
  readonly host: string;
}

type Cached = CachedPrimary | CachedAlias;

const USER_STATUSES: ReadonlySet<string> = new Set<UserRecord['status']>(['pending', 'active', 'disabled']);

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isRoleMap = (v: unknown): v is RoleMap =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((rs) => Array.isArray(rs) && rs.every(isStr));

/** What is wrong with a stored session as lookups need it (undefined: nothing). */
function sessionProblem(r: Record<string, unknown>): string | undefined {
  if (r.kind === 'alias') return isStr(r.primary) && isStr(r.host) ? undefined : 'alias: primary and host must be strings';
  if (r.kind !== 'primary') return 'kind is neither primary nor alias';
  const ok = [r.sid, r.userId, r.acr, r.credentialId, r.host, r.lease].every(isStr) && [r.createdAt, r.lastSeen, r.lastWebAuthnAt, r.expiresAt].every(isNum) && isRoleMap(r.roles) && Array.isArray(r.amr) && r.amr.every(isStr);
  return ok ? undefined : 'a field is missing or of the wrong type';
}

/** Its messages name the key by its hash's start only: a session's key is the hash of its cookie. */
const sessionCodec = jsonCodec<StoredSession>('session', sessionProblem, { describeKey: describeSessionKey });

function decodeSession(kv: KeyValue): StoredSession {
  return decodeOrThrow(sessionCodec, kv);
}

function decodeUserStatus(kv: KeyValue, id: string): UserRecord['status'] {
  const status = parseRecord<Partial<UserRecord> | null>(kv)?.status;
  if (status === undefined || !USER_STATUSES.has(status)) throw new GatehouseError('ERR_STORE_CORRUPT', `user ${id.slice(0, 64)}: status is not pending, active or disabled`);
  return status;
}

export class SessionManager {
  readonly #o: SessionManagerOptions;
  readonly #sessions = new Map<string, Cached>();
  readonly #users = new Map<string, UserRecord['status']>();
  /** Deletes seen by the watch (hash -> revision), so a slower store read cannot bring a session back. */
  readonly #ended = new Map<string, number>();
  /** lastSeen on this replica, newer than the stored one until written back. */
  readonly #seen = new Map<string, number>();
  readonly #writing = new Set<string>();
  readonly #interned = new Interner();
  readonly #writebackMs: number;
  readonly #followers: PrefixMirror<unknown>[] = [];

  private constructor(o: SessionManagerOptions) {
    this.#o = o;
    this.#writebackMs = Math.min(60_000, Math.floor(o.idleMs / 4));
  }

  /**
   * Loads every user's status and every session, and follows both prefixes. A record that cannot
   * be read is reported and treated as absent (that user's sessions, or that session, are refused)
   * while every later change is still seen.
   */
  static async open(o: SessionManagerOptions): Promise<SessionManager> {
    const m = new SessionManager(o);
    const common = { store: o.store, clock: o.clock, reporter: o.follower ?? reporterFor(o.onError) };
    try {
      m.#followers.push(
        await PrefixMirror.open<UserRecord['status']>(
          { ...common, prefix: USERS_PREFIX, decode: decodeUserStatus },
          {
            put: (id, status, _kv, phase) => m.#onUser(id, status, phase),
            delete: (id) => m.#onUser(id, undefined, 'watch'),
          },
        ),
      );
      m.#followers.push(
        await PrefixMirror.open<Cached>(
          { ...common, prefix: SESSIONS_PREFIX, decode: (kv) => m.#compact(decodeSession(kv), kv.modRevision), describeKey: describeSessionHash },
          {
            put: (hash, cached) => m.#onSession(hash, cached),
            delete: (hash, revision) => m.#onSessionEnded(hash, revision),
          },
        ),
      );
    } catch (err) {
      await m.close();
      throw err;
    }
    return m;
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** A user's status, or undefined once the record is gone or unreadable; an end is announced once. */
  #onUser(id: string, status: UserRecord['status'] | undefined, phase: FollowPhase): void {
    const before = this.#users.get(id);
    if (status === undefined) this.#users.delete(id);
    else this.#users.set(id, status);
    const ended = (s: UserRecord['status'] | undefined): boolean => s === undefined || s === 'disabled';
    if (phase !== 'load' && before !== undefined && !ended(before) && ended(status)) this.#announce({ kind: 'user', id });
  }

  #announce(end: SessionEnd): void {
    try {
      this.#o.onEnded?.(end);
    } catch (err) {
      this.#o.onError?.(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #onSession(hash: string, cached: Cached): void {
    const cur = this.#sessions.get(hash);
    if (cur !== undefined && cur.modRevision >= cached.modRevision) return;
    this.#sessions.set(hash, cached);
  }

  /** Deleted (lease ended, logout), gone since a lost watch, or unreadable: the session ends here. */
  #onSessionEnded(hash: string, revision: number): void {
    const cur = this.#sessions.get(hash);
    this.#sessions.delete(hash);
    if (cur?.kind === 'primary') this.#announce({ kind: 'session', id: cur.sid });
    this.#seen.delete(hash);
    this.#ended.set(hash, revision);
    if (this.#ended.size > 100_000) this.#ended.delete(this.#ended.keys().next().value!);
  }

  #compact(rec: StoredSession, modRevision: number): Cached {
    const i = this.#interned;
    if (rec.kind === 'alias') return { kind: 'alias', modRevision, primary: rec.primary, host: i.str(rec.host) };
    return {
      kind: 'primary',
      modRevision,
      sid: rec.sid,
      userId: i.str(rec.userId),
      roles: i.roles(rec.roles),
      amr: i.list(rec.amr),
      acr: i.str(rec.acr),
      credentialId: i.str(rec.credentialId),
      host: i.str(rec.host),
      createdAt: rec.createdAt,
      lastSeen: rec.lastSeen,
      lastWebAuthnAt: rec.lastWebAuthnAt,
      expiresAt: rec.expiresAt,
      lease: rec.lease,
    };
  }

  userStatus(userId: string): UserRecord['status'] | undefined {
    return this.#users.get(userId);
  }

  /** Creates a session; the returned id goes into the cookie and nowhere else. */
  async create(s: NewSession): Promise<SessionDraft> {
    const draft = this.draft(s, await this.grantLease());
    const revision = await commit(this.#o.store, draft.writes);
    if (revision === undefined) throw new GatehouseError('ERR_INTERNAL', 'session id collision');
    this.adopt(draft, revision);
    return draft;
  }

  /** The lease of a new session (its idle timeout): one per session, so revoking it ends that session only. */
  async grantLease(): Promise<LeaseId> {
    return (await this.#o.store.grant(this.#leaseTtl())).id;
  }

  /** A new session and the writes that store it; commit them (with others), then adopt() it. */
  draft(s: NewSession, lease: LeaseId): SessionDraft {
    const id = randomSecret();
    const hash = sha256hex(id);
    const now = this.#o.clock.now();
    const record: SessionRecord = {
      format: 1,
      kind: 'primary',
      sid: randomBytes(16).toString('base64url'),
      userId: s.userId,
      roles: s.roles,
      amr: s.amr,
      acr: s.acr,
      credentialId: s.credentialId,
      host: s.host,
      createdAt: now,
      lastSeen: now,
      lastWebAuthnAt: s.lastWebAuthnAt,
      expiresAt: now + this.#o.absoluteMs,
      ip: s.ip.slice(0, 64),
      userAgent: s.userAgent.slice(0, 300),
      lease,
    };
    const writes: Writes = {
      compares: [unchanged(storeKeys.session(hash), undefined)],
      ops: [
        { op: 'put', key: storeKeys.session(hash), value: sessionCodec.encode(record), lease },
        { op: 'put', key: storeKeys.userSession(s.userId, hash), value: lease, lease },
      ],
    };
    return { id, hash, record, writes };
  }

  /** Serves a committed draft from memory at once (the watch brings it to the other replicas). */
  adopt(draft: SessionDraft, revision: number): void {
    this.#remember(draft.hash, draft.record, revision);
  }

  /** A cookie for another route host, bound to the same session (and its lease). */
  async createAlias(primaryHash: string, host: string): Promise<{ id: string; hash: string }> {
    const primary = this.#sessions.get(primaryHash);
    if (primary === undefined || primary.kind !== 'primary') throw new GatehouseError('ERR_SESSION_EXPIRED', 'the session ended before the handoff');
    const id = randomSecret();
    const hash = sha256hex(id);
    const alias: SessionAlias = { format: 1, kind: 'alias', primary: primaryHash, host, createdAt: this.#o.clock.now() };
    const r = await this.#o.store.txn(
      [{ key: storeKeys.session(primaryHash), target: 'version', op: '>', value: 0 }],
      [{ op: 'put', key: storeKeys.session(hash), value: sessionCodec.encode(alias), lease: primary.lease }],
    );
    if (!r.succeeded) throw new GatehouseError('ERR_SESSION_EXPIRED', 'the session ended before the handoff');
    this.#remember(hash, alias, r.revision);
    return { id, hash };
  }

  #remember(hash: string, rec: StoredSession, revision: number): void {
    const cur = this.#sessions.get(hash);
    if ((cur === undefined || cur.modRevision < revision) && (this.#ended.get(hash) ?? 0) < revision) this.#sessions.set(hash, this.#compact(rec, revision));
  }

  #leaseTtl(): number {
    // never shorter than the idle timeout plus one writeback interval: the exact idle check is in lookup
    return ttlSeconds(this.#o.idleMs + this.#writebackMs + 1_000);
  }

  /** Fills the cache from the store when a cookie's session is not (yet) known here, e.g. just created on another replica. */
  async ensure(cookie: string | undefined): Promise<void> {
    if (cookie === undefined || !isSecretShape(cookie)) return;
    const hash = sha256hex(cookie);
    // known here, or seen ending (an ended session never comes back): no store read
    if (this.#sessions.has(hash) || this.#ended.has(hash)) return;
    const kv = await this.#o.store.get(storeKeys.session(hash));
    if (kv === undefined) return;
    // an unreadable record is the follower's to report; here it is simply no session
    const rec = readable(kv);
    if (rec === undefined) return;
    this.#remember(hash, rec, kv.modRevision);
    if (rec.kind === 'alias' && !this.#sessions.has(rec.primary)) {
      const p = await this.#o.store.get(storeKeys.session(rec.primary));
      const primary = p === undefined ? undefined : readable(p);
      if (p !== undefined && primary !== undefined) this.#remember(rec.primary, primary, p.modRevision);
    }
  }

  /** The session a cookie names on this host, or why not. Synchronous: served from memory. */
  lookup(cookie: string | undefined, host: string): SessionView | GatehouseError {
    if (cookie === undefined || cookie === '') return new GatehouseError('ERR_SESSION_REQUIRED');
    if (!isSecretShape(cookie)) return new GatehouseError('ERR_SESSION_EXPIRED');
    const hash = sha256hex(cookie);
    const entry = this.#sessions.get(hash);
    if (entry === undefined) return new GatehouseError('ERR_SESSION_EXPIRED');
    // a cookie is good only on the host it was set for
    if (entry.host !== host) return new GatehouseError('ERR_SESSION_EXPIRED', 'the session cookie belongs to another host');
    const primaryHash = entry.kind === 'alias' ? entry.primary : hash;
    const primary = entry.kind === 'alias' ? this.#sessions.get(primaryHash) : entry;
    if (primary === undefined || primary.kind !== 'primary') return new GatehouseError('ERR_SESSION_EXPIRED');
    const status = this.#users.get(primary.userId);
    if (status === 'disabled') {
      void this.end(primaryHash).catch(() => undefined);
      return new GatehouseError('ERR_USER_DISABLED');
    }
    if (status !== 'active') return new GatehouseError('ERR_SESSION_EXPIRED');
    const now = this.#o.clock.now();
    const lastSeen = Math.max(primary.lastSeen, this.#seen.get(primaryHash) ?? 0);
    if (now >= primary.expiresAt || now - lastSeen >= this.#o.idleMs) {
      void this.end(primaryHash).catch(() => undefined);
      return new GatehouseError('ERR_SESSION_EXPIRED', now >= primary.expiresAt ? 'the session reached its absolute lifetime' : 'the session was idle too long');
    }
    this.#touch(primaryHash, primary, now);
    return {
      hash: primaryHash,
      sid: primary.sid,
      userId: primary.userId,
      roles: primary.roles,
      amr: primary.amr,
      acr: primary.acr,
      credentialId: primary.credentialId,
      lastWebAuthnAt: primary.lastWebAuthnAt,
      createdAt: primary.createdAt,
      expiresAt: primary.expiresAt,
    };
  }

  #touch(hash: string, rec: CachedPrimary, now: number): void {
    this.#seen.set(hash, now);
    if (now - rec.lastSeen < this.#writebackMs || this.#writing.has(hash)) return;
    this.#writing.add(hash);
    void this.#writeBack(hash, now).finally(() => this.#writing.delete(hash));
  }

  async #writeBack(hash: string, now: number): Promise<void> {
    const { store } = this.#o;
    try {
      await this.#update(hash, (r) => ({ ...r, lastSeen: Math.max(r.lastSeen, now) }));
      const cur = this.#sessions.get(hash);
      if (cur?.kind === 'primary') await store.keepAlive(cur.lease);
    } catch (err) {
      if (!isGatehouseError(err, 'ERR_STORE_LEASE_NOT_FOUND') && !isGatehouseError(err, 'ERR_STORE_CONFLICT')) this.#o.onError?.(err as Error);
    }
  }

  /** Changes a primary session by compare-and-swap (keeping its lease); undefined when there is none. */
  async #update(hash: string, change: (r: SessionRecord) => SessionRecord): Promise<SessionRecord | undefined> {
    const r = await updateKey(this.#o.store, storeKeys.session(hash), sessionCodec, (rec) => (rec?.kind === 'primary' ? change(rec) : undefined));
    if (!r.written || r.revision === undefined || r.value?.kind !== 'primary') return undefined;
    this.#remember(hash, r.value, r.revision);
    return r.value;
  }

  /** Step-up: a fresh WebAuthn assertion on this session. */
  async markWebAuthn(hash: string, at: number): Promise<void> {
    const r = await this.#update(hash, (rec) => ({ ...rec, lastWebAuthnAt: Math.max(rec.lastWebAuthnAt, at) }));
    if (r === undefined) throw new GatehouseError('ERR_SESSION_EXPIRED');
  }

  /** Ends a session (and its aliases) on every replica: revokes its lease. */
  async end(primaryHash: string): Promise<boolean> {
    const cur = this.#sessions.get(primaryHash);
    const kv = cur === undefined ? await this.#o.store.get(storeKeys.session(primaryHash)) : undefined;
    const rec = cur ?? (kv !== undefined ? readable(kv) : undefined);
    if (rec === undefined || rec.kind !== 'primary') return false;
    // gone from the cache now, so the delete event that follows announces nothing twice
    const held = this.#sessions.delete(primaryHash);
    this.#ended.set(primaryHash, Number.MAX_SAFE_INTEGER);
    if (held) this.#announce({ kind: 'session', id: rec.sid });
    try {
      await this.#o.store.revoke(rec.lease);
    } catch (err) {
      if (!isGatehouseError(err, 'ERR_STORE_LEASE_NOT_FOUND')) throw err;
    }
    return true;
  }

  /** The primary session hash a cookie names (for logout), whatever its state. */
  primaryOf(cookie: string | undefined): string | undefined {
    if (cookie === undefined || !isSecretShape(cookie)) return undefined;
    const hash = sha256hex(cookie);
    const rec = this.#sessions.get(hash);
    return rec === undefined ? undefined : rec.kind === 'alias' ? rec.primary : hash;
  }

  async close(): Promise<void> {
    const fs = this.#followers.splice(0);
    await Promise.all(fs.map((f) => f.close()));
  }
}

function readable(kv: KeyValue): StoredSession | undefined {
  const r = sessionCodec.decode(kv);
  return r instanceof GatehouseError ? undefined : r;
}
