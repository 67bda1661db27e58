// Translation between Store arguments/results and etcd's protobuf messages (as etcd3 decodes
// them: int64 as decimal strings, bytes as Buffers). Validation happens here, before sending.
import { CompareResult, CompareTarget, SortOrder, SortTarget, type ICompare, type IKeyValue, type IRangeRequest, type IRequestOp } from 'etcd3';
import { GatehouseError } from '../../errors.js';
import { checkKey, checkValue, resolveRange } from '../bytes.js';
import { LIMITS, type Compare, type KeyInput, type KeySelector, type KeyValue, type LeaseId, type RangeOptions, type RangeSelector, type TxnOp } from '../types.js';

/** etcd's "to the end of the keyspace" range end. */
const ALL_FOLLOWING = Buffer.from([0]);
const INT64_MAX = 9223372036854775807n;

export function bad(message: string): GatehouseError {
  return new GatehouseError('ERR_STORE_BAD_ARGUMENT', message);
}

function buf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A plain Uint8Array view (not a Buffer), as the embedded store returns. */
function plain(b: Buffer | undefined): Uint8Array {
  return b === undefined ? new Uint8Array(0) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function keyBuf(key: KeyInput): Buffer {
  return buf(checkKey(key));
}

export function valueBuf(value: KeyInput): Buffer {
  return buf(checkValue(value));
}

/** [key, range_end) for a range selector; an empty Store end becomes etcd's "\0" (no upper bound). */
export function rangeBufs(selector: RangeSelector): { key: Buffer; range_end: Buffer } {
  if ('start' in selector) checkKey(selector.start);
  const { start, end } = resolveRange(selector);
  if (start.length > LIMITS.maxKeyBytes || end.length > LIMITS.maxKeyBytes) throw new GatehouseError('ERR_STORE_KEY_TOO_LARGE');
  return { key: buf(start), range_end: end.length === 0 ? ALL_FOLLOWING : buf(end) };
}

export function selectorBufs(selector: KeySelector): { key: Buffer; range_end?: Buffer } {
  return 'key' in selector ? { key: keyBuf(selector.key) } : rangeBufs(selector);
}

export function isRangeSelector(target: KeyInput | RangeSelector): target is RangeSelector {
  return typeof target !== 'string' && !(target instanceof Uint8Array);
}

/** A revision argument: a non-negative integer, 0 meaning "current" (as in etcd). */
export function checkRevision(rev: number | undefined, what = 'revision'): number {
  if (rev === undefined) return 0;
  if (!Number.isSafeInteger(rev) || rev < 0) throw bad(`${what} must be a non-negative integer`);
  return rev;
}

/** Lease ids are int64 decimal strings; etcd's ids often exceed 2^53, so they stay strings. */
export function checkLeaseId(id: LeaseId): string {
  if (typeof id !== 'string' || !/^[0-9]{1,19}$/.test(id) || BigInt(id) > INT64_MAX) throw bad('lease id must be a decimal int64 string');
  return id.replace(/^0+(?=\d)/, '');
}

export function checkTtl(ttlSeconds: number): number {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > LIMITS.maxLeaseTtlSeconds) {
    throw bad(`ttl must be an integer from 1 to ${LIMITS.maxLeaseTtlSeconds} seconds`);
  }
  return ttlSeconds;
}

export function num(v: string | number | undefined): number {
  return v === undefined ? 0 : Number(v);
}

export function toKeyValue(kv: IKeyValue): KeyValue {
  const out: KeyValue = {
    key: plain(kv.key),
    value: plain(kv.value),
    createRevision: num(kv.create_revision),
    modRevision: num(kv.mod_revision),
    version: num(kv.version),
  };
  if (kv.lease !== undefined && kv.lease !== '0' && kv.lease !== '') out.lease = String(kv.lease);
  return out;
}

export function rangeRequest(selector: RangeSelector, options: RangeOptions = {}): IRangeRequest {
  const limit = options.limit ?? 0;
  if (!Number.isSafeInteger(limit) || limit < 0) throw bad('limit must be a non-negative integer');
  const req: IRangeRequest = { ...rangeBufs(selector), limit, revision: checkRevision(options.revision) };
  // etcd sorts (and then truncates to limit) only when asked; ascending key order is its natural order.
  if (options.reverse === true) {
    req.sort_order = SortOrder.Descend;
    req.sort_target = SortTarget.Key;
  }
  if (options.keysOnly === true) req.keys_only = true;
  return req;
}

const COMPARE_RESULT = { '==': CompareResult.Equal, '!=': CompareResult.NotEqual, '<': CompareResult.Less, '>': CompareResult.Greater } as const;

export function compareMessage(c: Compare): ICompare {
  const result = COMPARE_RESULT[c.op];
  if (result === undefined) throw bad(`unknown compare op ${String(c.op)}`);
  const key = keyBuf(c.key);
  switch (c.target) {
    case 'version':
    case 'createRevision':
    case 'modRevision': {
      if (!Number.isSafeInteger(c.value) || c.value < 0) throw bad(`${c.target} compare value must be a non-negative integer`);
      if (c.target === 'version') return { key, result, target: CompareTarget.Version, version: c.value };
      if (c.target === 'createRevision') return { key, result, target: CompareTarget.Create, create_revision: c.value };
      return { key, result, target: CompareTarget.Mod, mod_revision: c.value };
    }
    case 'value':
      return { key, result, target: CompareTarget.Value, value: valueBuf(c.value) };
    case 'lease':
      if (c.op !== '==' && c.op !== '!=') throw bad('lease compares support only == and !=');
      return { key, result, target: CompareTarget.Lease, lease: checkLeaseId(c.value) };
    default:
      throw bad(`unknown compare target ${String((c as { target: unknown }).target)}`);
  }
}

export function putRequest(key: KeyInput, value: KeyInput, lease: LeaseId | undefined): { key: Buffer; value: Buffer; lease?: string } {
  const req: { key: Buffer; value: Buffer; lease?: string } = { key: keyBuf(key), value: valueBuf(value) };
  if (lease !== undefined) req.lease = checkLeaseId(lease);
  return req;
}

export function txnOpMessage(op: TxnOp): IRequestOp {
  switch (op.op) {
    case 'put':
      return { request_put: putRequest(op.key, op.value, op.lease) };
    case 'delete':
      return { request_delete_range: 'range' in op ? rangeBufs(op.range) : { key: keyBuf(op.key) } };
    case 'get':
      return { request_range: { key: keyBuf(op.key) } };
    case 'range':
      return { request_range: rangeRequest(op.range, op.options ?? {}) };
    default:
      throw bad(`unknown txn op ${String((op as { op: unknown }).op)}`);
  }
}

