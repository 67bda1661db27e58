// compact(R): the compacted revision is recorded first (reads below it fail from then on),
// then old versions are dropped in bounded steps so other writes interleave. For each key the
// newest version <= R stays unless it is a tombstone; everything older goes. Versions of a key
// are visited oldest first, so a tombstone is dropped only after the versions beneath it:
// a read at >= R never sees a version resurface, even between steps.
import type { OpContext } from './context.js';
import { isTombstone, revKey, splitVersionKey } from './encoding.js';

const STEP_ENTRIES = 20_000;

export interface CompactionCursor {
  readonly target: number;
  /** Last version key visited; the next step starts after it. */
  after: Buffer | undefined;
  /** The newest version <= target seen so far of the key being visited. */
  pending: { vkey: Buffer; tombstone: boolean } | undefined;
  versionsDone: boolean;
}

function sameKey(a: Buffer, b: Uint8Array, encodedLength: number): boolean {
  return a.length === b.length && Buffer.compare(a.subarray(0, encodedLength), b.subarray(0, encodedLength)) === 0;
}

/**
 * Runs one step from `from` (left untouched: a step may be redone if its batch is retried);
 * returns where the next step starts, or 'done'.
 */
export function compactStep(ctx: OpContext, from: CompactionCursor): CompactionCursor | 'done' {
  const cursor: CompactionCursor = { ...from };
  const { versions, log } = ctx.t;
  const drop: Buffer[] = [];
  const dropLog: Buffer[] = [];
  let visited = 0;
  if (!cursor.versionsDone) {
    const range = cursor.after === undefined ? {} : { start: cursor.after, exclusiveStart: true };
    let exhausted = true;
    for (const { key, value } of versions.getRange(range)) {
      if (visited === STEP_ENTRIES) {
        exhausted = false;
        break;
      }
      visited++;
      const vkey = Buffer.from(key);
      cursor.after = vkey;
      const { encodedLength, rev } = splitVersionKey(vkey);
      const p = cursor.pending;
      if (p !== undefined && (!sameKey(p.vkey, vkey, encodedLength) || rev > cursor.target)) {
        if (p.tombstone) drop.push(p.vkey);
        cursor.pending = undefined;
      }
      if (rev <= cursor.target) {
        if (cursor.pending !== undefined) drop.push(cursor.pending.vkey);
        cursor.pending = { vkey, tombstone: isTombstone(value) };
      }
    }
    if (exhausted) {
      if (cursor.pending?.tombstone === true) drop.push(cursor.pending.vkey);
      cursor.pending = undefined;
      cursor.versionsDone = true;
    }
  }
  // The log below the target: a watch may start at the target itself, not before.
  let logDone = true;
  if (cursor.versionsDone) {
    for (const key of log.getKeys({ end: revKey(cursor.target) })) {
      if (visited === STEP_ENTRIES) {
        logDone = false;
        break;
      }
      visited++;
      dropLog.push(Buffer.from(key));
    }
  }
  if (drop.length > 0 || dropLog.length > 0) ctx.dirty = true;
  for (const k of drop) versions.removeSync(k);
  for (const k of dropLog) log.removeSync(k);
  return cursor.versionsDone && logDone ? 'done' : cursor;
}
