import { GatehouseError } from '../errors.js';
import { LIMITS, type KeyInput, type ValueInput, type Bytes, type KeyValue, type RangeSelector } from './types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

export function toBytes(input: KeyInput | ValueInput): Bytes {
  return typeof input === 'string' ? encoder.encode(input) : input;
}

export function text(bytes: Bytes): string {
  return decoder.decode(bytes);
}

/** Decodes a value written as JSON; undefined when the kv is absent. */
export function json<T>(kv: KeyValue | undefined): T | undefined {
  return kv === undefined ? undefined : (JSON.parse(text(kv.value)) as T);
}

export function checkKey(input: KeyInput): Bytes {
  const key = toBytes(input);
  if (key.length === 0) throw new GatehouseError('ERR_STORE_KEY_EMPTY');
  if (key.length > LIMITS.maxKeyBytes) {
    throw new GatehouseError('ERR_STORE_KEY_TOO_LARGE', `key is ${key.length} bytes; the limit is ${LIMITS.maxKeyBytes}`);
  }
  return key;
}

export function checkValue(input: ValueInput): Bytes {
  const value = toBytes(input);
  if (value.length > LIMITS.maxValueBytes) {
    throw new GatehouseError('ERR_STORE_VALUE_TOO_LARGE', `value is ${value.length} bytes; the limit is ${LIMITS.maxValueBytes}`);
  }
  return value;
}

export function compareBytes(a: Bytes, b: Bytes): number {
  return Buffer.compare(a, b);
}

/** Whether key lies in [start, end); an empty end means no upper bound. */
export function inRange(key: Bytes, start: Bytes, end: Bytes): boolean {
  return compareBytes(key, start) >= 0 && (end.length === 0 || compareBytes(key, end) < 0);
}

/** The smallest key greater than every key starting with prefix (etcd's prefix end); empty = no upper bound. */
export function prefixEnd(prefix: Bytes): Bytes {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return new Uint8Array(0);
}

/** Resolves a range selector to [start, end); an empty end means "to the last key". */
export function resolveRange(selector: RangeSelector): { start: Bytes; end: Bytes } {
  if ('prefix' in selector) {
    const start = toBytes(selector.prefix);
    if (start.length === 0) return { start: new Uint8Array([0]), end: new Uint8Array(0) };
    return { start, end: prefixEnd(start) };
  }
  const start = toBytes(selector.start);
  if (start.length === 0) throw new GatehouseError('ERR_STORE_KEY_EMPTY', 'range start is empty');
  const end = selector.end === undefined ? new Uint8Array(0) : toBytes(selector.end);
  return { start, end };
}
