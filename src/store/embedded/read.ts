// Reads. At the current revision they use `latest` (one lookup per key); at an older revision
// they seek `versions`, unless no write since that revision touched the range. Outside a write
// batch, a multi-step read runs in one LMDB read snapshot so its header revision matches its
// data; inside a batch, the same functions read the write transaction (no `txn`) and see the
// batch's own earlier writes.
import type { Transaction, RangeOptions as LmdbRangeOptions } from 'lmdb';
import { compareBytes, inRange } from '../bytes.js';
import type { Bytes, KeyValue } from '../types.js';
import { decodeKey, decodeLog, encodeKey, isTombstone, revKey, splitVersionKey, toKeyValue, versionKey } from './encoding.js';
import type { Tables } from './tables.js';

export interface RangeQuery {
  start: Bytes;
  /** Empty: no upper bound. */
  end: Bytes;
  limit: number;
  reverse: boolean;
  keysOnly: boolean;
}

export interface RangeRows {
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

function inTxn(options: LmdbRangeOptions, txn: Transaction | undefined): LmdbRangeOptions {
  if (txn !== undefined) options.transaction = txn;
  return options;
}

export function readLatest(t: Tables, key: Bytes): KeyValue | undefined {
  // getBinaryFast returns a shared buffer; toKeyValue copies out of it at once.
  const record = t.latest.getBinaryFast(key);
  return record === undefined ? undefined : toKeyValue(key, record);
}

/** The key as it was at revision rev: the newest version <= rev, unless that is a tombstone. */
export function readAt(t: Tables, key: Bytes, rev: number, txn?: Transaction): KeyValue | undefined {
  const enc = encodeKey(key);
  for (const { value } of t.versions.getRange(inTxn({ start: versionKey(enc, rev), end: enc, reverse: true, limit: 1 }, txn))) {
    return isTombstone(value) ? undefined : toKeyValue(key, value);
  }
  return undefined;
}

function emptyRange(q: RangeQuery): boolean {
  return q.end.length > 0 && compareBytes(q.start, q.end) >= 0;
}

export function rangeLatest(t: Tables, q: RangeQuery, txn?: Transaction): RangeRows {
  if (emptyRange(q)) return { kvs: [], more: false, count: 0 };
  const bounded = q.end.length > 0;
  const count = t.latest.getCount(inTxn(bounded ? { start: q.start, end: q.end } : { start: q.start }, txn));
  // lmdb-js reverse ranges run from `start` (upper) down to `end` (lower, exclusive by default).
  const options: LmdbRangeOptions = q.reverse
    ? { ...(bounded ? { start: q.end, exclusiveStart: true } : {}), end: q.start, inclusiveEnd: true, reverse: true }
    : bounded ? { start: q.start, end: q.end } : { start: q.start };
  if (q.limit > 0) options.limit = q.limit;
  const kvs: KeyValue[] = [];
  for (const { key, value } of t.latest.getRange(inTxn(options, txn))) kvs.push(toKeyValue(key, value, q.keysOnly));
  return { kvs, more: kvs.length < count, count };
}

/** Most log entries read to learn whether a range changed since a revision; beyond, scan versions. */
const MAX_LOG_CHECK = 1000;

/**
 * The range at revision rev of a snapshot at revision current. When no write after rev touched
 * the range, its rows then are its rows now: served from `latest`, one seek per row. Paging
 * through a prefix at a fixed revision (loading every session at start) then costs O(rows)
 * instead of a scan of all the prefix's versions per page.
 */
export function rangeAsOf(t: Tables, q: RangeQuery, rev: number, current: number, txn: Transaction): RangeRows {
  return unchangedSince(t, q, rev, current, txn) ? rangeLatest(t, q, txn) : rangeAt(t, q, rev, txn);
}

function unchangedSince(t: Tables, q: RangeQuery, rev: number, current: number, txn: Transaction): boolean {
  if (current - rev > MAX_LOG_CHECK) return false;
  for (const { value } of t.log.getRange({ start: revKey(rev + 1), end: revKey(current + 1), transaction: txn })) {
    if (decodeLog(value).some((c) => inRange(c.key, q.start, q.end))) return false;
  }
  return true;
}

export function rangeAt(t: Tables, q: RangeQuery, rev: number, txn?: Transaction): RangeRows {
  if (emptyRange(q)) return { kvs: [], more: false, count: 0 };
  const start = encodeKey(q.start);
  const options: LmdbRangeOptions = q.end.length > 0 ? { start, end: encodeKey(q.end) } : { start };
  const all: KeyValue[] = [];
  let group: Buffer | undefined;
  let best: Uint8Array | undefined;
  const flush = (): void => {
    if (group !== undefined && best !== undefined && !isTombstone(best)) all.push(toKeyValue(decodeKey(group), best, q.keysOnly));
  };
  for (const { key, value } of t.versions.getRange(inTxn(options, txn))) {
    const { encodedLength, rev: vrev } = splitVersionKey(key);
    if (group === undefined || group.length !== encodedLength || Buffer.compare(group, key.subarray(0, encodedLength)) !== 0) {
      flush();
      group = Buffer.from(key.subarray(0, encodedLength));
      best = undefined;
    }
    if (vrev <= rev) best = value;
  }
  flush();
  if (q.reverse) all.reverse();
  const kvs = q.limit > 0 ? all.slice(0, q.limit) : all;
  return { kvs, more: kvs.length < all.length, count: all.length };
}
