// Vendor seed files for hardware OTP tokens: RFC 6030 PSKC XML (plain seeds; encrypted ones
// are refused with a clear code; the hash from the Algorithm URI or AlgorithmParameters/Suite,
// which must agree) and the plain CSV `serial,secret` vendors ship, where the
// secret is base32 (RFC 4648, as in otpauth URIs) or hex (prefixed 0x, or exactly 40/64/128
// hex digits). Lines starting with # and a `serial,secret` header are skipped; an optional
// third and fourth column give digits and period.
import { XMLParser } from 'fast-xml-parser';
import { GatehouseError } from '../../errors.js';
import { fromBase32 } from './codes.js';
import type { TotpAlgorithm, TotpParams } from '../types.js';

export interface ImportedSeed extends TotpParams {
  serial: string;
  seed: Buffer;
}

const SERIAL = /^[A-Za-z0-9._:-]{1,64}$/;
const MAX_FILE_BYTES = 4 * 1024 * 1024;

function invalid(message: string): GatehouseError {
  return new GatehouseError('ERR_TOTP_IMPORT_INVALID', message);
}

function checkSeed(seed: Buffer, where: string): Buffer {
  // RFC 4226 §4: at least 128 bits; 160 recommended
  if (seed.length < 16 || seed.length > 128) throw invalid(`${where}: the secret is ${seed.length} bytes; expected 16 to 128`);
  return seed;
}

function decodeSecret(text: string, where: string): Buffer {
  const s = text.trim();
  if (/^0x[0-9a-fA-F]+$/.test(s) || /^([0-9a-fA-F]{40}|[0-9a-fA-F]{64}|[0-9a-fA-F]{128})$/.test(s)) {
    const hex = s.startsWith('0x') ? s.slice(2) : s;
    if (hex.length % 2 !== 0) throw invalid(`${where}: odd number of hex digits`);
    return checkSeed(Buffer.from(hex, 'hex'), where);
  }
  if (!/^[A-Za-z2-7]+=*$/.test(s)) throw invalid(`${where}: the secret is neither base32 nor hex`);
  try {
    return checkSeed(Buffer.from(fromBase32(s)), where);
  } catch (cause) {
    if (cause instanceof GatehouseError) throw cause;
    throw invalid(`${where}: the secret is not valid base32`);
  }
}

function parseCsv(text: string): ImportedSeed[] {
  const out: ImportedSeed[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const where = `line ${i + 1}`;
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const cols = trimmed.split(',').map((c) => c.trim());
    if (i === 0 && cols[0]?.toLowerCase() === 'serial') return;
    if (cols.length < 2 || cols.length > 4) throw invalid(`${where}: expected serial,secret[,digits[,period]]`);
    const [serial, secret, digits, period] = cols as [string, string, string?, string?];
    if (!SERIAL.test(serial)) throw invalid(`${where}: the serial must be 1-64 of A-Z a-z 0-9 . _ : -`);
    const d = digits === undefined || digits === '' ? 6 : Number(digits);
    const p = period === undefined || period === '' ? 30 : Number(period);
    if (d !== 6 && d !== 8) throw invalid(`${where}: digits must be 6 or 8`);
    if (p !== 30 && p !== 60) throw invalid(`${where}: period must be 30 or 60`);
    out.push({ serial, seed: decodeSecret(secret, where), digits: d, period: p, algorithm: 'sha1' });
  });
  return out;
}

type Node = Record<string, unknown>;
const asList = (v: unknown): Node[] => (Array.isArray(v) ? (v as Node[]) : v === undefined ? [] : [v as Node]);
const child = (n: Node | undefined, name: string): Node | undefined => {
  const v = n?.[name];
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Node) : undefined;
};
const textOf = (v: unknown): string | undefined => (typeof v === 'string' || typeof v === 'number' ? String(v) : typeof (v as Node | undefined)?.['#text'] === 'string' ? String((v as Node)['#text']) : undefined);

/** The hash a TOTP Algorithm URI names (some vendors write e.g. `...pskc#totp-sha256`), if any. */
function uriHash(uri: string): TotpAlgorithm | undefined {
  if (uri.includes('sha512')) return 'sha512';
  if (uri.includes('sha256')) return 'sha256';
  if (uri.includes('sha1')) return 'sha1';
  return undefined;
}

// RFC 6030 §4.3.1 AlgorithmParameters/Suite, e.g. HMAC-SHA256; vendors also write HMAC-SHA-256 or SHA256.
const SUITE = /^(?:HMAC[-_ ]?)?SHA[-_ ]?(1|256|512)$/i;
const SUITE_HASH: Readonly<Record<string, TotpAlgorithm>> = { '1': 'sha1', '256': 'sha256', '512': 'sha512' };

/**
 * The hash from the Algorithm URI and the Suite, either of which may carry it. They must agree:
 * codes computed with the wrong hash never verify, and guessing would lock the holder out.
 */
function algorithmOf(uri: string | undefined, suite: string | undefined, where: string): TotpAlgorithm {
  const a = (uri ?? '').toLowerCase();
  if (!a.includes('totp') && !a.includes('hotp')) throw invalid(`${where}: Algorithm ${uri ?? '(none)'} is not TOTP`);
  if (!a.includes('totp')) throw invalid(`${where}: Algorithm ${uri ?? ''} is HOTP; only time-based tokens are supported`);
  const fromUri = uriHash(a);
  let fromSuite: TotpAlgorithm | undefined;
  if (suite !== undefined && suite.trim() !== '') {
    fromSuite = SUITE_HASH[SUITE.exec(suite.trim())?.[1] ?? ''];
    if (fromSuite === undefined) throw invalid(`${where}: AlgorithmParameters/Suite ${suite.trim().slice(0, 40)} is not HMAC-SHA1, HMAC-SHA256 or HMAC-SHA512`);
  }
  if (fromUri !== undefined && fromSuite !== undefined && fromUri !== fromSuite) {
    throw invalid(`${where}: the Algorithm URI names ${fromUri} but AlgorithmParameters/Suite names ${fromSuite}`);
  }
  // RFC 6238's default when neither says.
  return fromSuite ?? fromUri ?? 'sha1';
}

function parsePskc(text: string): ImportedSeed[] {
  // Namespace prefixes vary by vendor (pskc:, none): strip them; no entities, no DTDs.
  const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', removeNSPrefix: true, processEntities: false, parseTagValue: false, trimValues: true });
  let doc: Node;
  try {
    doc = parser.parse(text, true) as Node;
  } catch (cause) {
    throw new GatehouseError('ERR_TOTP_IMPORT_INVALID', `not well-formed XML: ${(cause as Error).message.slice(0, 200)}`, { cause });
  }
  const container = child(doc, 'KeyContainer');
  if (container === undefined) throw invalid('no PSKC KeyContainer element');
  if (child(container, 'EncryptionKey') !== undefined || /EncryptedValue/.test(text)) {
    throw new GatehouseError('ERR_TOTP_IMPORT_ENCRYPTED', 'the PSKC file has encrypted seeds (EncryptionKey/EncryptedValue); export them unencrypted');
  }
  const out: ImportedSeed[] = [];
  asList(container.KeyPackage).forEach((pkg, i) => {
    const where = `KeyPackage ${i + 1}`;
    const device = child(pkg, 'DeviceInfo');
    const key = child(pkg, 'Key');
    if (key === undefined) throw invalid(`${where}: no Key`);
    const serial = textOf(device?.SerialNo) ?? textOf(key['@Id']);
    if (serial === undefined || !SERIAL.test(serial)) throw invalid(`${where}: no usable DeviceInfo/SerialNo`);
    const at = `${where} (serial ${serial})`;
    const params = child(key, 'AlgorithmParameters');
    if (Array.isArray(params?.Suite)) throw invalid(`${at}: more than one AlgorithmParameters/Suite`);
    const algorithm = algorithmOf(textOf(key['@Algorithm']), textOf(params?.Suite), at);
    const format = child(params, 'ResponseFormat');
    const digits = Number(textOf(format?.['@Length']) ?? '6');
    if (digits !== 6 && digits !== 8) throw invalid(`${at}: ResponseFormat Length must be 6 or 8`);
    if (format?.['@Encoding'] !== undefined && textOf(format['@Encoding']) !== 'DECIMAL') throw invalid(`${at}: ResponseFormat Encoding must be DECIMAL`);
    const data = child(key, 'Data');
    const secret = child(data, 'Secret');
    const value = textOf(secret?.PlainValue);
    if (value === undefined) throw invalid(`${at}: no Data/Secret/PlainValue`);
    const periodText = textOf(child(data, 'TimeInterval')?.PlainValue);
    const period = periodText === undefined ? 30 : Number(periodText);
    if (period !== 30 && period !== 60) throw invalid(`${at}: TimeInterval must be 30 or 60`);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value.replace(/\s/g, ''))) throw invalid(`${at}: PlainValue is not base64`);
    out.push({ serial, seed: checkSeed(Buffer.from(value.replace(/\s/g, ''), 'base64'), at), digits, period, algorithm });
  });
  return out;
}

/** Parses a seed file; the format is told apart by its first non-blank character. */
export function parseSeedFile(text: string): ImportedSeed[] {
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) throw invalid('the file is larger than 4 MiB');
  const seeds = text.trimStart().startsWith('<') ? parsePskc(text) : parseCsv(text);
  if (seeds.length === 0) throw invalid('no tokens in the file');
  const serials = new Set<string>();
  for (const s of seeds) {
    if (serials.has(s.serial)) throw invalid(`serial ${s.serial} appears twice`);
    serials.add(s.serial);
  }
  return seeds;
}
