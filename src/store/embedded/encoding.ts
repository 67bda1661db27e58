// Byte layouts of everything the embedded store keeps in LMDB.
//
// Version keys are enc(key) ++ revision (8 bytes, big-endian), so a read at revision R is one
// reverse seek from enc(key) ++ R. enc is the "memcomparable" group encoding (MyRocks): 8-byte
// groups, each followed by a marker (9 = another group follows, 0..8 = bytes used in this last,
// zero-padded group). It preserves byte order, no encoding is a proper prefix of another (so the
// revision suffix never reorders keys), keys may hold any byte including 0x00, and it grows a
// key by 1/8 only: a 1 KiB key of NULs stays under LMDB's 1978-byte key limit, which
// NUL-escaping (0x00 -> 0x00 0xFF) would not.
import { GatehouseError } from '../../errors.js';
import type { Bytes, KeyValue } from '../types.js';

const GROUP = 8;
const MORE = 9;
const TWO32 = 0x1_0000_0000;
export const REV_BYTES = 8;

export function encodedKeyLength(keyLength: number): number {
  return Math.max(1, Math.ceil(keyLength / GROUP)) * (GROUP + 1);
}

// Scratch buffers for bytes that LMDB copies at once (putSync inside the write transaction):
// they save an allocation per write. Valid only until the next call that fills the same one.
let keyScratch = Buffer.allocUnsafeSlow(4096);
let valueScratch = Buffer.allocUnsafeSlow(64 * 1024);

// The last view handed out is kept: most writes repeat the previous length.
let keyView = keyScratch.subarray(0, 0);
let valueView = valueScratch.subarray(0, 0);

function scratchKey(length: number): Buffer {
  if (keyView.length === length) return keyView;
  if (keyScratch.length < length) keyScratch = Buffer.allocUnsafeSlow(length);
  keyView = keyScratch.subarray(0, length);
  return keyView;
}

function scratchValue(length: number): Buffer {
  if (valueView.length === length) return valueView;
  if (valueScratch.length < length) valueScratch = Buffer.allocUnsafeSlow(Math.max(length, valueScratch.length * 2));
  valueView = valueScratch.subarray(0, length);
  return valueView;
}

/** enc(key) ++ rev, in the key scratch buffer: only for a write that copies it at once. */
export function versionKeyScratch(key: Uint8Array, rev: number): Buffer {
  const length = encodedKeyLength(key.length);
  const out = scratchKey(length + REV_BYTES);
  writeEncodedKey(key, out);
  writeU64(out, rev, length);
  return out;
}

/** revKey into the key scratch buffer: only for a write that copies it at once. */
export function revKeyScratch(rev: number): Buffer {
  const out = scratchKey(REV_BYTES);
  writeU64(out, rev, 0);
  return out;
}

function writeEncodedKey(key: Uint8Array, out: Uint8Array): void {
  // Byte loops: subarray() per group allocates, and keys are short.
  const n = key.length;
  let o = 0;
  let i = 0;
  while (n - i > GROUP) {
    for (let j = 0; j < GROUP; j++) out[o + j] = key[i + j]!;
    out[o + GROUP] = MORE;
    o += GROUP + 1;
    i += GROUP;
  }
  const left = n - i;
  for (let j = 0; j < left; j++) out[o + j] = key[i + j]!;
  for (let j = left; j < GROUP; j++) out[o + j] = 0;
  out[o + GROUP] = left;
}

export function encodeKey(key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(encodedKeyLength(key.length));
  writeEncodedKey(key, out);
  return out;
}

export function decodeKey(encoded: Uint8Array, length = encoded.length): Bytes {
  const groups = length / (GROUP + 1);
  if (!Number.isInteger(groups) || groups < 1) throw corrupt('version key');
  const last = encoded[length - 1]!;
  if (last > GROUP) throw corrupt('version key');
  const out = new Uint8Array((groups - 1) * GROUP + last);
  for (let g = 0; g < groups; g++) {
    const from = g * (GROUP + 1);
    out.set(encoded.subarray(from, from + (g === groups - 1 ? last : GROUP)), g * GROUP);
  }
  return out;
}

export function writeU64(out: Uint8Array, n: number, offset: number): void {
  const hi = Math.floor(n / TWO32);
  const lo = n >>> 0;
  out[offset] = hi >>> 24;
  out[offset + 1] = hi >>> 16;
  out[offset + 2] = hi >>> 8;
  out[offset + 3] = hi;
  out[offset + 4] = lo >>> 24;
  out[offset + 5] = lo >>> 16;
  out[offset + 6] = lo >>> 8;
  out[offset + 7] = lo;
}

function readU32(b: Uint8Array, o: number): number {
  return b[o]! * 0x100_0000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}

export function readU64(buf: Uint8Array, offset: number): number {
  return readU32(buf, offset) * TWO32 + readU32(buf, offset + 4);
}

/** A plain copy: LMDB's buffers may be reused by the next read. */
export function copyBytes(src: Uint8Array): Bytes {
  const out = new Uint8Array(src.length);
  out.set(src);
  return out;
}

export function revKey(rev: number): Buffer {
  const out = Buffer.allocUnsafe(REV_BYTES);
  writeU64(out, rev, 0);
  return out;
}

/** enc(key) ++ rev. */
export function versionKey(encodedKey: Buffer, rev: number): Buffer {
  const out = Buffer.allocUnsafe(encodedKey.length + REV_BYTES);
  encodedKey.copy(out, 0);
  writeU64(out, rev, encodedKey.length);
  return out;
}

export function splitVersionKey(vkey: Uint8Array): { encodedLength: number; rev: number } {
  const encodedLength = vkey.length - REV_BYTES;
  return { encodedLength, rev: readU64(vkey, encodedLength) };
}

// A record (in `latest` and `versions`):
//   [0] flags (1 = tombstone) [1..9) createRevision [9..17) modRevision [17..25) version
//   [25..33) lease id (0 = none) [33..) value
const HEADER = 33;
const TOMBSTONE = 1;

export interface RecordMeta {
  createRevision: number;
  modRevision: number;
  version: number;
  /** 0 = no lease. */
  lease: number;
}

function writeRecord(out: Buffer, createRevision: number, modRevision: number, version: number, lease: number, value: Uint8Array): void {
  out[0] = 0;
  writeU64(out, createRevision, 1);
  writeU64(out, modRevision, 9);
  writeU64(out, version, 17);
  writeU64(out, lease, 25);
  out.set(value, HEADER);
}

/**
 * The record a put at rev writes over prev (the live record, or undefined), in the value
 * scratch buffer: only for writes that copy it at once. prev may be LMDB's shared read buffer;
 * it is read before anything else is.
 */
export function nextRecordScratch(prev: Uint8Array | undefined, rev: number, lease: number, value: Uint8Array): Buffer {
  let createRevision = rev;
  let version = 1;
  if (prev !== undefined) {
    if (prev.length < HEADER) throw corrupt('record');
    createRevision = readU64(prev, 1);
    version = readU64(prev, 17) + 1;
  }
  const out = scratchValue(HEADER + value.length);
  writeRecord(out, createRevision, rev, version, lease, value);
  return out;
}

/** The lease a record is bound to (0 = none). */
export function recordLease(record: Uint8Array): number {
  if (record.length < HEADER) throw corrupt('record');
  return readU64(record, 25);
}

/** A tombstone record, in the value scratch buffer: only for a write that copies it at once. */
export function tombstoneScratch(modRevision: number): Buffer {
  const out = scratchValue(HEADER);
  out.fill(0);
  out[0] = TOMBSTONE;
  writeU64(out, modRevision, 9);
  return out;
}

export function isTombstone(record: Uint8Array): boolean {
  return (record[0]! & TOMBSTONE) !== 0;
}

export function readMeta(record: Uint8Array): RecordMeta {
  if (record.length < HEADER) throw corrupt('record');
  return {
    createRevision: readU64(record, 1),
    modRevision: readU64(record, 9),
    version: readU64(record, 17),
    lease: readU64(record, 25),
  };
}

/** Builds a KeyValue, copying out of LMDB's buffers (they may be reused by the next read). */
export function toKeyValue(key: Uint8Array, record: Uint8Array, keysOnly = false): KeyValue {
  const meta = readMeta(record);
  const kv: KeyValue = {
    key: copyBytes(key),
    value: keysOnly ? new Uint8Array(0) : copyBytes(record.subarray(HEADER)),
    createRevision: meta.createRevision,
    modRevision: meta.modRevision,
    version: meta.version,
  };
  if (meta.lease !== 0) kv.lease = String(meta.lease);
  return kv;
}

export function recordValue(record: Uint8Array): Uint8Array {
  return record.subarray(HEADER);
}

// A lease: [0..8) ttl seconds (float64) [8..16) deadline, ms since the epoch by the store's clock (float64).
export function encodeLease(ttlSeconds: number, deadline: number): Buffer {
  const out = Buffer.allocUnsafe(16);
  out.writeDoubleBE(ttlSeconds, 0);
  out.writeDoubleBE(deadline, 8);
  return out;
}

export function decodeLease(buf: Uint8Array): { ttlSeconds: number; deadline: number } {
  if (buf.length !== 16) throw corrupt('lease');
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return { ttlSeconds: b.readDoubleBE(0), deadline: b.readDoubleBE(8) };
}

/** lease id ++ key: the keys bound to a lease, for expiry. */
export function leaseKey(lease: number, key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(REV_BYTES + key.length);
  writeU64(out, lease, 0);
  out.set(key, REV_BYTES);
  return out;
}

// A log entry, one per revision: repeated [type: 0 put, 1 delete][key length u16][key].
export interface LogChange {
  type: 'put' | 'delete';
  key: Uint8Array;
}

/** A log entry, in the value scratch buffer: only for a write that copies it at once. */
export function encodeLogScratch(changes: readonly LogChange[]): Buffer {
  let size = 0;
  for (const c of changes) size += 3 + c.key.length;
  const out = scratchValue(size);
  writeLog(out, changes);
  return out;
}

function writeLog(out: Buffer, changes: readonly LogChange[]): void {
  let o = 0;
  for (const c of changes) {
    const n = c.key.length;
    out[o] = c.type === 'put' ? 0 : 1;
    out[o + 1] = n >>> 8;
    out[o + 2] = n;
    out.set(c.key, o + 3);
    o += 3 + n;
  }
}

export function decodeLog(buf: Uint8Array): LogChange[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: LogChange[] = [];
  let o = 0;
  while (o < b.length) {
    if (o + 3 > b.length) throw corrupt('log entry');
    const len = b.readUInt16BE(o + 1);
    if (o + 3 + len > b.length) throw corrupt('log entry');
    out.push({ type: b[o] === 0 ? 'put' : 'delete', key: copyBytes(b.subarray(o + 3, o + 3 + len)) });
    o += 3 + len;
  }
  return out;
}

function corrupt(what: string): GatehouseError {
  return new GatehouseError('ERR_STORE_CORRUPT', `the embedded store holds a ${what} it cannot decode`);
}
