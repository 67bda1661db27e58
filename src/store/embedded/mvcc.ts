// The writes, as they run inside a batch transaction (see writer.ts). Each keeps etcd's
// bookkeeping: createRevision/version reset after a delete, one revision per operation, a
// tombstone version per deleted key, and the lease <-> key index in step.
import { GatehouseError } from '../../errors.js';
import type { Bytes } from '../types.js';
import type { OpContext } from './context.js';
import {
  encodeLease, decodeLease, leaseKey, nextRecordScratch, readMeta, recordLease, revKey, toKeyValue, tombstoneScratch,
  versionKeyScratch, copyBytes, REV_BYTES,
  type RecordMeta,
} from './encoding.js';
import { META_NEXT_LEASE } from './tables.js';

const MARK = Buffer.from([1]);
const ABSENT: RecordMeta = { createRevision: 0, modRevision: 0, version: 0, lease: 0 };

/** The live record of key (a copy), or undefined. */
export function latestRecord(ctx: OpContext, key: Bytes): Buffer | undefined {
  return ctx.t.latest.getBinary(key);
}

/** The live key's metadata, without copying its value; an absent key has 0s. */
export function latestMeta(ctx: OpContext, key: Bytes): RecordMeta & { exists: boolean } {
  const record = ctx.t.latest.getBinaryFast(key);
  return record === undefined ? { ...ABSENT, exists: false } : { ...readMeta(record), exists: true };
}

export function conflict(current: number): GatehouseError {
  return new GatehouseError('ERR_STORE_CONFLICT', `the key's modRevision is ${current}`, { details: { modRevision: current } });
}

export function writePut(ctx: OpContext, key: Bytes, value: Bytes, lease: number): number {
  const t = ctx.t;
  // One lookup; the shared read buffer is consumed before the next LMDB call.
  const prev = t.latest.getBinaryFast(key);
  const prevLease = prev === undefined ? 0 : recordLease(prev);
  const rev = ctx.revision();
  const record = nextRecordScratch(prev, rev, lease, value);
  ctx.dirty = true;
  t.latest.putSync(key, record);
  t.versions.putSync(versionKeyScratch(key, rev), record);
  if (ctx.wantEvents) ctx.events.push({ type: 'put', kv: toKeyValue(key, record) });
  if (prevLease !== lease) {
    if (prevLease !== 0) t.leaseKeys.removeSync(leaseKey(prevLease, key));
    if (lease !== 0) t.leaseKeys.putSync(leaseKey(lease, key), MARK);
  }
  ctx.changes.push({ type: 'put', key });
  return rev;
}

/** Deletes a live key; prevLease is the lease it is bound to (0: none). */
export function writeDelete(ctx: OpContext, key: Bytes, prevLease: number): void {
  const rev = ctx.revision();
  ctx.dirty = true;
  if (prevLease !== 0) ctx.t.leaseKeys.removeSync(leaseKey(prevLease, key));
  ctx.t.latest.removeSync(key);
  ctx.t.versions.putSync(versionKeyScratch(key, rev), tombstoneScratch(rev));
  ctx.changes.push({ type: 'delete', key });
  if (ctx.wantEvents) ctx.events.push({ type: 'delete', kv: { key: copyBytes(key), value: new Uint8Array(0), createRevision: 0, modRevision: rev, version: 0 } });
}

/** Deletes every live key in [start, end) (empty end: no upper bound); returns how many. */
export function deleteRange(ctx: OpContext, start: Bytes, end: Bytes): number {
  if (end.length > 0 && Buffer.compare(start, end) >= 0) return 0;
  const found: Array<{ key: Bytes; lease: number }> = [];
  const range = end.length === 0 ? { start } : { start, end };
  for (const { key, value } of ctx.t.latest.getRange(range)) found.push({ key: copyBytes(key), lease: readMeta(value).lease });
  for (const { key, lease } of found) writeDelete(ctx, key, lease);
  return found.length;
}

export function readLease(ctx: OpContext, lease: number): { ttlSeconds: number; deadline: number } | undefined {
  const raw = ctx.t.leases.getBinary(revKey(lease));
  return raw === undefined ? undefined : decodeLease(raw);
}

export function leaseNotFound(): GatehouseError {
  return new GatehouseError('ERR_STORE_LEASE_NOT_FOUND');
}

export function requireLease(ctx: OpContext, lease: number): void {
  if (lease !== 0 && readLease(ctx, lease) === undefined) throw leaseNotFound();
}

export function grantLease(ctx: OpContext, ttlSeconds: number): number {
  const id = ctx.t.meta.get(META_NEXT_LEASE) ?? 1;
  const deadline = ctx.now + ttlSeconds * 1000;
  ctx.dirty = true;
  ctx.t.meta.putSync(META_NEXT_LEASE, id + 1);
  ctx.t.leases.putSync(revKey(id), encodeLease(ttlSeconds, deadline));
  ctx.after.push(() => ctx.leaseTimers.schedule(id, deadline));
  return id;
}

export function refreshLease(ctx: OpContext, lease: number, ttlSeconds: number): void {
  const deadline = ctx.now + ttlSeconds * 1000;
  ctx.dirty = true;
  ctx.t.leases.putSync(revKey(lease), encodeLease(ttlSeconds, deadline));
  ctx.after.push(() => ctx.leaseTimers.schedule(lease, deadline));
}

/** Ends a lease: deletes its keys (all at one revision) and the lease itself. */
export function endLease(ctx: OpContext, lease: number): number {
  const keys: Bytes[] = [];
  for (const k of ctx.t.leaseKeys.getKeys({ start: leaseKey(lease, new Uint8Array(0)), end: revKey(lease + 1) })) {
    keys.push(copyBytes(k.subarray(REV_BYTES)));
  }
  ctx.dirty = true;
  let deleted = 0;
  for (const key of keys) {
    const old = latestMeta(ctx, key);
    // The index is kept in step with `latest`; a key no longer bound to this lease is left alone.
    if (old.exists && old.lease === lease) {
      writeDelete(ctx, key, lease);
      deleted++;
    } else {
      ctx.t.leaseKeys.removeSync(leaseKey(lease, key));
    }
  }
  ctx.t.leases.removeSync(revKey(lease));
  ctx.after.push(() => ctx.leaseTimers.cancel(lease));
  return deleted;
}
