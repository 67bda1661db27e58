// Argument checks run before anything is queued, so a bad call never reaches a write batch.
import { GatehouseError } from '../../errors.js';
import { checkKey, checkValue } from '../bytes.js';
import { LIMITS, type Bytes, type KeyInput, type LeaseId, type ValueInput } from '../types.js';

function bad(message: string): GatehouseError {
  return new GatehouseError('ERR_STORE_BAD_ARGUMENT', message);
}

// checkKey/checkValue with strings encoded by Buffer.from: the same UTF-8 bytes (lone surrogates
// become U+FFFD either way) as TextEncoder, several times faster for short strings.
export function keyBytes(input: KeyInput): Bytes {
  return checkKey(typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
}

export function valueBytes(input: ValueInput): Bytes {
  return checkValue(typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
}

/** A revision given by a caller: a non-negative integer (0 = current). */
export function checkRevision(rev: number | undefined, what = 'revision'): number {
  if (rev === undefined) return 0;
  if (!Number.isSafeInteger(rev) || rev < 0) throw bad(`${what} must be a non-negative integer`);
  return rev;
}

/** A range limit: a non-negative integer (0 = no limit, as in etcd). */
export function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return 0;
  if (!Number.isSafeInteger(limit) || limit < 0) throw bad('limit must be a non-negative integer');
  return limit;
}

export function checkTtl(ttlSeconds: number): number {
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > LIMITS.maxLeaseTtlSeconds) {
    throw bad(`ttl must be an integer from 1 to ${LIMITS.maxLeaseTtlSeconds} seconds`);
  }
  return ttlSeconds;
}

/** Lease ids are decimal strings; '0' means "no lease". */
export function parseLeaseId(id: LeaseId): number {
  if (typeof id !== 'string' || !/^[0-9]{1,16}$/.test(id)) throw bad('lease id must be a decimal string');
  const n = Number(id);
  if (!Number.isSafeInteger(n)) throw bad('lease id is out of range');
  return n;
}

export function checkTxnSize(compares: number, onSuccess: number, onFailure: number): void {
  if (compares > LIMITS.maxTxnOps || onSuccess > LIMITS.maxTxnOps || onFailure > LIMITS.maxTxnOps) {
    throw new GatehouseError('ERR_STORE_TXN_TOO_LARGE', `a transaction may hold at most ${LIMITS.maxTxnOps} compares and ${LIMITS.maxTxnOps} operations per branch`);
  }
}

export { bad as badArgument };
