// txn(compares, onSuccess, onFailure): checked and compiled before queueing, applied inside
// one write batch at one revision (etcd semantics: an absent key compares as 0s; a value
// compare on an absent key is false; puts may not overlap each other or a delete).
import { GatehouseError } from '../../errors.js';
import { compareBytes, inRange, resolveRange } from '../bytes.js';
import { LIMITS, type Bytes, type Compare, type CompareOp, type TxnOp, type TxnOpResult, type TxnResult } from '../types.js';
import type { OpContext } from './context.js';
import { recordValue } from './encoding.js';
import { deleteRange, latestMeta, latestRecord, requireLease, writeDelete, writePut } from './mvcc.js';
import { readLatest, rangeLatest, type RangeQuery } from './read.js';
import { badArgument, checkLimit, keyBytes, parseLeaseId, valueBytes } from './validate.js';

type NumberTarget = 'version' | 'createRevision' | 'modRevision';

export type CompiledCompare =
  | { key: Bytes; target: NumberTarget | 'lease'; op: CompareOp; value: number }
  | { key: Bytes; target: 'value'; op: CompareOp; value: Bytes };

export type CompiledOp =
  | { op: 'put'; key: Bytes; value: Bytes; lease: number }
  | { op: 'delete'; key: Bytes }
  | { op: 'deleteRange'; start: Bytes; end: Bytes }
  | { op: 'get'; key: Bytes }
  | { op: 'range'; query: RangeQuery };

const OPS: ReadonlySet<string> = new Set(['==', '!=', '<', '>']);

export function checkRangeBound(b: Bytes): Bytes {
  if (b.length > LIMITS.maxKeyBytes) throw new GatehouseError('ERR_STORE_KEY_TOO_LARGE', 'a range bound is longer than a key may be');
  return b;
}

export function compileCompare(c: Compare): CompiledCompare {
  const key = keyBytes(c.key);
  if (!OPS.has(c.op)) throw badArgument('unknown compare operator');
  switch (c.target) {
    case 'value':
      return { key, target: 'value', op: c.op, value: valueBytes(c.value) };
    case 'lease':
      if (c.op !== '==' && c.op !== '!=') throw badArgument('a lease compares with == or != only');
      return { key, target: 'lease', op: c.op, value: parseLeaseId(c.value) };
    case 'version':
    case 'createRevision':
    case 'modRevision':
      if (!Number.isSafeInteger(c.value)) throw badArgument(`${c.target} compares with an integer`);
      return { key, target: c.target, op: c.op, value: c.value };
    default:
      throw badArgument('unknown compare target');
  }
}

export function compileOps(ops: readonly TxnOp[]): CompiledOp[] {
  const out = ops.map((o): CompiledOp => {
    switch (o.op) {
      case 'put':
        return { op: 'put', key: keyBytes(o.key), value: valueBytes(o.value), lease: o.lease === undefined ? 0 : parseLeaseId(o.lease) };
      case 'delete': {
        if ('range' in o) {
          const { start, end } = resolveRange(o.range);
          return { op: 'deleteRange', start: checkRangeBound(start), end: checkRangeBound(end) };
        }
        return { op: 'delete', key: keyBytes(o.key) };
      }
      case 'get':
        return { op: 'get', key: keyBytes(o.key) };
      case 'range': {
        const { start, end } = resolveRange(o.range);
        const options = o.options ?? {};
        return {
          op: 'range',
          query: { start: checkRangeBound(start), end: checkRangeBound(end), limit: checkLimit(options.limit), reverse: options.reverse === true, keysOnly: options.keysOnly === true },
        };
      }
      default:
        throw badArgument('unknown transaction operation');
    }
  });
  checkOverlap(out);
  return out;
}

function checkOverlap(ops: readonly CompiledOp[]): void {
  const puts = new Set<string>();
  const deletes: Array<{ start: Bytes; end: Bytes }> = [];
  for (const o of ops) {
    if (o.op === 'delete') deletes.push({ start: o.key, end: Uint8Array.from([...o.key, 0]) });
    if (o.op === 'deleteRange') deletes.push(o);
  }
  for (const o of ops) {
    if (o.op !== 'put') continue;
    // latin1 maps each byte to one char: a unique id without copying the key.
    const id = Buffer.from(o.key.buffer, o.key.byteOffset, o.key.byteLength).toString('latin1');
    if (puts.has(id) || deletes.some((d) => inRange(o.key, d.start, d.end))) throw badArgument('a transaction may not write the same key twice');
    puts.add(id);
  }
}

function holds(op: CompareOp, cmp: number): boolean {
  switch (op) {
    case '==': return cmp === 0;
    case '!=': return cmp !== 0;
    case '<': return cmp < 0;
    case '>': return cmp > 0;
  }
}

function evaluate(ctx: OpContext, c: CompiledCompare): boolean {
  if (c.target === 'value') {
    const record = latestRecord(ctx, c.key);
    if (record === undefined) return false;
    return holds(c.op, compareBytes(recordValue(record), c.value));
  }
  const meta = latestMeta(ctx, c.key);
  const actual = c.target === 'lease' ? meta.lease : meta[c.target];
  return holds(c.op, Math.sign(actual - c.value));
}

export function applyTxn(ctx: OpContext, compares: readonly CompiledCompare[], onSuccess: readonly CompiledOp[], onFailure: readonly CompiledOp[]): TxnResult {
  const succeeded = compares.every((c) => evaluate(ctx, c));
  const branch = succeeded ? onSuccess : onFailure;
  // Check leases before the first write, so a missing one fails the txn cleanly.
  for (const o of branch) if (o.op === 'put') requireLease(ctx, o.lease);
  const results: TxnOpResult[] = [];
  for (const o of branch) {
    switch (o.op) {
      case 'put':
        results.push({ op: 'put', revision: writePut(ctx, o.key, o.value, o.lease) });
        break;
      case 'delete': {
        const old = latestMeta(ctx, o.key);
        if (old.exists) writeDelete(ctx, o.key, old.lease);
        results.push({ op: 'delete', deleted: old.exists ? 1 : 0 });
        break;
      }
      case 'deleteRange':
        results.push({ op: 'delete', deleted: deleteRange(ctx, o.start, o.end) });
        break;
      case 'get':
        results.push({ op: 'get', kv: readLatest(ctx.t, o.key) });
        break;
      case 'range': {
        const { kvs, more, count } = rangeLatest(ctx.t, o.query);
        results.push({ op: 'range', kvs, more, count });
        break;
      }
    }
  }
  return { succeeded, revision: ctx.current, results };
}
