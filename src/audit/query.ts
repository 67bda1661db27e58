// queryAudit: the security team's questions over every replica's chain, merged by @timestamp.
// Each chain is read forward from a per-replica position; the opaque cursor is those positions.
import { GatehouseError } from '../errors.js';
import { parseDuration } from '../lib/duration.js';
import { text, type Store } from '../store/index.js';
import type { AuditEvent } from '../contracts/audit.js';
import { AUDIT_PREFIX, auditKey, chainRange, decodeRecord, parseChainKey } from './chain.js';
import { listChains } from './verify.js';

/** The filters that match one event field exactly (action also by prefix). */
export const AUDIT_FILTER_FIELDS = ['user', 'subject', 'namespace', 'service', 'outcome', 'action', 'replica'] as const;

export interface AuditFilters {
  /** ms since the epoch, inclusive. */
  since?: number;
  /** ms since the epoch, exclusive. */
  until?: number;
  user?: string;
  subject?: string;
  namespace?: string;
  service?: string;
  outcome?: string;
  /** Exact action, or a prefix ending in `*` (`login.*`). */
  action?: string;
  replica?: string;
}

export interface AuditHit {
  replica: string;
  seq: number;
  hash: string;
  event: AuditEvent;
}

export interface QueryPage {
  events: AuditHit[];
  /** Pass back to continue; undefined when every chain is exhausted. */
  nextCursor: string | undefined;
}

/**
 * Events of one chain are appended in the order they happened, but their @timestamp is taken
 * where each event was built, so neighbours can be slightly out of order. Searching and stopping
 * allow this much slack; filtering itself is exact.
 */
export const TIME_SLACK_MS = 5 * 60_000;
const PAGE = 256;

/**
 * How far back a relative time reaches: lib/duration's grammar (15m, 2h, 7d), plus weeks (2w),
 * accepted here only: an audit question reaches back further than any configured duration, and
 * `--since 2w` was accepted before the grammar was one.
 */
function relativeMs(input: string): number | undefined {
  if (!input.endsWith('w')) return parseDuration(input);
  const days = parseDuration(`${input.slice(0, -1)}d`);
  return days === undefined ? undefined : days * 7;
}

/** ISO 8601 (from its date on), or a time relative to now (see relativeMs). */
export function parseTime(input: string, nowMs: number): number {
  const rel = relativeMs(input.trim());
  if (rel !== undefined) return nowMs - rel;
  const t = Date.parse(input);
  if (!/^\d{4}-\d{2}-\d{2}/.test(input) || Number.isNaN(t)) throw new GatehouseError('ERR_BAD_REQUEST', `not a time: ${JSON.stringify(input.slice(0, 64))} (ISO 8601, or relative like 15m, 2h, 7d)`);
  return t;
}

export function matches(e: AuditEvent, f: AuditFilters): boolean {
  const t = Date.parse(e['@timestamp']);
  if (f.since !== undefined && !(t >= f.since)) return false;
  if (f.until !== undefined && !(t < f.until)) return false;
  if (f.user !== undefined && e['user.id'] !== f.user) return false;
  if (f.subject !== undefined && e['gatehouse.subject'] !== f.subject) return false;
  if (f.namespace !== undefined && e['gatehouse.namespace'] !== f.namespace) return false;
  if (f.service !== undefined && e['gatehouse.service'] !== f.service && e['service.name'] !== f.service) return false;
  if (f.outcome !== undefined && e['event.outcome'] !== f.outcome) return false;
  if (f.action !== undefined) {
    const a = e['event.action'];
    if (f.action.endsWith('*') ? !a.startsWith(f.action.slice(0, -1)) : a !== f.action) return false;
  }
  return true;
}

type Positions = Record<string, number>;

function encodeCursor(p: Positions): string {
  return Buffer.from(JSON.stringify({ v: 1, p }), 'utf8').toString('base64url');
}

function decodeCursor(c: string): Positions {
  try {
    const v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as { v?: unknown; p?: unknown };
    if (v.v !== 1 || typeof v.p !== 'object' || v.p === null) throw new Error('shape');
    const out: Positions = {};
    for (const [k, n] of Object.entries(v.p as Record<string, unknown>)) {
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw new Error('seq');
      out[k] = n;
    }
    return out;
  } catch (cause) {
    throw new GatehouseError('ERR_BAD_REQUEST', 'invalid cursor', { cause });
  }
}

async function timeAt(store: Store, replica: string, seq: number): Promise<number | undefined> {
  const kv = await store.get(auditKey(replica, seq));
  const rec = kv === undefined ? undefined : decodeRecord(kv);
  return rec === undefined ? undefined : Date.parse(rec.event['@timestamp']);
}

/** First seq whose event is not older than `since` (less the slack): a binary search with point reads. */
async function firstSeqFrom(store: Store, replica: string, since: number): Promise<number> {
  const last = await store.range({ prefix: `${AUDIT_PREFIX}${replica}/` }, { reverse: true, limit: 1, keysOnly: true });
  const lastSeq = last.kvs[0] === undefined ? 0 : (parseChainKey(text(last.kvs[0].key), AUDIT_PREFIX)?.seq ?? 0);
  let lo = 1;
  let hi = lastSeq + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const t = await timeAt(store, replica, mid);
    // a missing or unreadable record: do not skip past it
    if (t !== undefined && t < since - TIME_SLACK_MS) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class ChainReader {
  buffer: AuditHit[] = [];
  done = false;
  constructor(
    readonly store: Store,
    readonly replica: string,
    public next: number,
    readonly until: number | undefined,
  ) {}

  async peek(): Promise<AuditHit | undefined> {
    if (this.buffer.length === 0 && !this.done) await this.fill();
    return this.buffer[0];
  }

  take(): AuditHit {
    const hit = this.buffer.shift()!;
    this.next = hit.seq + 1;
    return hit;
  }

  async fill(): Promise<void> {
    const page = await this.store.range(chainRange(AUDIT_PREFIX, this.replica, this.next), { limit: PAGE });
    for (const kv of page.kvs) {
      const k = parseChainKey(text(kv.key), AUDIT_PREFIX);
      const rec = decodeRecord(kv);
      if (k === undefined || rec === undefined) continue;
      if (this.until !== undefined && Date.parse(rec.event['@timestamp']) >= this.until + TIME_SLACK_MS) {
        this.done = true;
        break;
      }
      this.buffer.push({ replica: this.replica, seq: k.seq, hash: rec.hash, event: rec.event });
    }
    if (!page.more) this.done = true;
    if (this.buffer.length === 0 && !this.done) {
      // a page of unreadable keys: step past it
      const last = page.kvs.at(-1);
      const k = last === undefined ? undefined : parseChainKey(text(last.key), AUDIT_PREFIX);
      if (k === undefined) this.done = true;
      else this.next = k.seq + 1;
    }
  }
}

/** One page of matching events, oldest first across replicas. `limit` defaults to 100 (most 10,000). */
export async function queryAudit(store: Store, filters: AuditFilters, page: { cursor?: string; limit?: number } = {}): Promise<QueryPage> {
  const limit = Math.min(Math.max(1, page.limit ?? 100), 10_000);
  const positions = page.cursor !== undefined ? decodeCursor(page.cursor) : undefined;
  const chains = filters.replica !== undefined ? [filters.replica] : positions !== undefined ? Object.keys(positions).sort() : await listChains(store);
  const readers: ChainReader[] = [];
  for (const r of chains) {
    const from = positions?.[r] ?? (filters.since !== undefined ? await firstSeqFrom(store, r, filters.since) : 1);
    readers.push(new ChainReader(store, r, from, filters.until));
  }
  const events: AuditHit[] = [];
  while (events.length < limit) {
    let best: ChainReader | undefined;
    let bestT = Infinity;
    for (const r of readers) {
      const h = await r.peek();
      if (h === undefined) continue;
      const t = Date.parse(h.event['@timestamp']);
      if (best === undefined || t < bestT) {
        best = r;
        bestT = t;
      }
    }
    if (best === undefined) break;
    const hit = best.take();
    if (matches(hit.event, filters)) events.push(hit);
  }
  const live = readers.filter((r) => !(r.done && r.buffer.length === 0));
  const next: Positions = {};
  for (const r of live) next[r.replica] = r.buffer[0]?.seq ?? r.next;
  return { events, nextCursor: live.length > 0 ? encodeCursor(next) : undefined };
}

/** Every matching event, page by page (the CLI's streaming form). */
export async function* queryAll(store: Store, filters: AuditFilters, limit = Infinity): AsyncGenerator<AuditHit> {
  let cursor: string | undefined;
  let n = 0;
  do {
    const page = await queryAudit(store, filters, { ...(cursor !== undefined ? { cursor } : {}), limit: Math.min(1000, limit - n) });
    for (const e of page.events) {
      yield e;
      if (++n >= limit) return;
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);
}
