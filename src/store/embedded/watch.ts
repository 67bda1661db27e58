// Watches. Live events come from the writer after each commit, in revision order. A watch
// with fromRevision first replays the log up to the last revision the writer has dispatched;
// it is registered in the same synchronous step, so the next dispatch starts exactly one
// revision later: no gap, no duplicate.
import type { Transaction } from 'lmdb';
import { GatehouseError } from '../../errors.js';
import { compareBytes, inRange, toBytes } from '../bytes.js';
import type { Bytes, KeySelector, Watch, WatchEvent, WatchHandler } from '../types.js';
import { copyBytes, decodeLog, encodeKey, readU64, revKey, toKeyValue, versionKey } from './encoding.js';
import { META_COMPACTED, type Tables } from './tables.js';

type Match = (key: Bytes) => boolean;

function startsWith(key: Bytes, prefix: Bytes): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

export function matcher(selector: KeySelector): Match {
  if ('key' in selector) {
    const k = toBytes(selector.key);
    return (key) => compareBytes(key, k) === 0;
  }
  if ('prefix' in selector) {
    const p = toBytes(selector.prefix);
    return (key) => startsWith(key, p);
  }
  const start = toBytes(selector.start);
  const end = selector.end === undefined ? new Uint8Array(0) : toBytes(selector.end);
  return (key) => inRange(key, start, end);
}

export class Watcher implements Watch {
  readonly startRevision: number;
  readonly #match: Match;
  readonly #handler: WatchHandler;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #hub: WatchHub;
  /** Every event up to this revision has been queued. */
  #through: number;
  #queue: WatchEvent[] = [];
  #head = 0;
  #delivering = false;
  #closed = false;

  constructor(hub: WatchHub, match: Match, handler: WatchHandler, startRevision: number, through: number, onError: ((err: Error) => void) | undefined) {
    this.#hub = hub;
    this.#match = match;
    this.#handler = handler;
    this.startRevision = startRevision;
    this.#through = through;
    this.#onError = onError;
  }

  get match(): Match {
    return this.#match;
  }

  enqueue(events: readonly WatchEvent[], through: number): void {
    if (this.#closed) return;
    for (const e of events) {
      const rev = e.kv.modRevision;
      if (rev > this.#through && rev >= this.startRevision && this.#match(e.kv.key)) this.#queue.push(e);
    }
    if (through > this.#through) this.#through = through;
  }

  deliver(): void {
    if (this.#delivering) return;
    this.#delivering = true;
    try {
      while (!this.#closed && this.#head < this.#queue.length) {
        const event = this.#queue[this.#head++]!;
        try {
          this.#handler(event);
        } catch (err) {
          // A throwing handler ends its own watch, not the store.
          this.end(err instanceof Error ? err : new Error(String(err)));
        }
      }
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    } finally {
      this.#delivering = false;
    }
  }

  /** Ends the watch from the store's side and tells the owner why. */
  end(err: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#hub.remove(this);
    this.#onError?.(err);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#hub.remove(this);
  }
}

export class WatchHub {
  readonly #watchers = new Set<Watcher>();

  get size(): number {
    return this.#watchers.size;
  }

  add(w: Watcher): void {
    this.#watchers.add(w);
  }

  remove(w: Watcher): void {
    this.#watchers.delete(w);
  }

  dispatch(events: readonly WatchEvent[], revision: number): void {
    if (this.#watchers.size === 0) return;
    for (const w of [...this.#watchers]) {
      w.enqueue(events, revision);
      w.deliver();
    }
  }

  endAll(err: Error): void {
    for (const w of [...this.#watchers]) w.end(err);
  }
}

/** The events in revisions [from, to] that match, read from the log in one snapshot. */
export function replay(t: Tables, match: Match, from: number, to: number, txn: Transaction, checkCompacted = true): WatchEvent[] {
  const compacted = t.meta.get(META_COMPACTED, { transaction: txn }) ?? 0;
  if (checkCompacted && from < compacted) {
    throw new GatehouseError('ERR_STORE_COMPACTED', `revision ${from} is compacted (compacted through ${compacted})`, { details: { compactRevision: compacted } });
  }
  const events: WatchEvent[] = [];
  if (from > to) return events;
  for (const { key: rk, value } of t.log.getRange({ start: revKey(from), end: revKey(to + 1), transaction: txn })) {
    const rev = readU64(rk, 0);
    for (const change of decodeLog(value)) {
      if (!match(change.key)) continue;
      if (change.type === 'delete') {
        events.push({ type: 'delete', kv: { key: copyBytes(change.key), value: new Uint8Array(0), createRevision: 0, modRevision: rev, version: 0 } });
        continue;
      }
      const record = t.versions.get(versionKey(encodeKey(change.key), rev), { transaction: txn });
      if (record === undefined) throw new GatehouseError('ERR_STORE_CORRUPT', `revision ${rev} is in the log but its version is missing`);
      events.push({ type: 'put', kv: toKeyValue(change.key, record) });
    }
  }
  return events;
}
