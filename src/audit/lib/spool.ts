// The local spool: while the store cannot be reached, audit events go to an append-only file
// (`<spoolDir>/<replica>.spool.jsonl`, mode 0600, in a 0700 folder) and are appended to the
// chain, in order, once it returns. Line 1 is a header naming the chain and its head when
// spooling began, so a restarted writer can tell which lines already reached the chain.
// Each line after it is one event in canonical JSON. Writes are fsync'd per batch.
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { GatehouseError } from '../../errors.js';

export interface SpoolHeader {
  gatehouseAuditSpool: 1;
  /** The chain the lines were meant for. */
  chain: string;
  /**
   * That chain's head when spooling began: line n lands at afterSeq + n unless the chain moved.
   * -1 while the head is unknown (the store was down at start); it is filled in, in place,
   * before any line is appended to the chain.
   */
  afterSeq: number;
  afterHash: string;
}

const READ_CHUNK = 1 << 20;

/** Fixed width (afterSeq padded with JSON whitespace) so the header can be rewritten in place. */
function headerLine(h: SpoolHeader): Buffer {
  return Buffer.from(`{"gatehouseAuditSpool":1,"chain":${JSON.stringify(h.chain)},"afterSeq":${String(h.afterSeq).padEnd(17, ' ')},"afterHash":"${h.afterHash}"}\n`, 'utf8');
}

export class Spool {
  readonly file: string;
  #header: SpoolHeader;
  /** Byte offset of the first event line. */
  readonly dataStart: number;
  #fh: FileHandle;
  #durable: number;

  private constructor(file: string, fh: FileHandle, header: SpoolHeader, dataStart: number, size: number) {
    this.file = file;
    this.#fh = fh;
    this.#header = header;
    this.dataStart = dataStart;
    this.#durable = size;
  }

  static fileFor(dir: string, replica: string): string {
    return path.join(dir, `${replica}.spool.jsonl`);
  }

  get header(): SpoolHeader {
    return this.#header;
  }

  /** Fills in the chain head once it is known (same chain name, so the same length). */
  async setHeader(h: SpoolHeader): Promise<void> {
    const line = headerLine(h);
    if (line.length !== this.dataStart) throw new GatehouseError('ERR_AUDIT_SPOOL_INVALID', `${this.file}: header changes length`);
    await this.#fh.write(line, 0, line.length, 0);
    await this.#fh.sync();
    this.#header = h;
  }

  /** Bytes fsync'd so far (header included). */
  get size(): number {
    return this.#durable;
  }

  static async create(dir: string, replica: string, header: SpoolHeader): Promise<Spool> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = Spool.fileFor(dir, replica);
    // 'wx': never truncate a spool that holds events not yet in the chain.
    const fh = await open(file, 'wx', 0o600).catch((cause: NodeJS.ErrnoException) => {
      throw new GatehouseError('ERR_AUDIT_SPOOL_INVALID', `cannot create ${file}: ${cause.code ?? 'error'}`, { cause });
    });
    await fh.close();
    const spool = await Spool.openExisting(dir, replica, header);
    if (spool === undefined) throw new GatehouseError('ERR_AUDIT_SPOOL_INVALID', `${file} vanished`);
    return spool;
  }

  /** Opens the replica's spool if one was left behind (or was just created empty: then header is written). */
  static async openExisting(dir: string, replica: string, fresh?: SpoolHeader): Promise<Spool | undefined> {
    const file = Spool.fileFor(dir, replica);
    let fh: FileHandle;
    try {
      // not 'a': positional writes (the header rewrite) must land where they are aimed
      fh = await open(file, 'r+');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new GatehouseError('ERR_AUDIT_SPOOL_INVALID', `cannot open ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
    }
    try {
      const st = await fh.stat();
      if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
        throw new GatehouseError('ERR_AUDIT_SPOOL_INVALID', `${file} has mode ${(st.mode & 0o777).toString(8)}: it must not be readable by group or others (chmod 600)`);
      }
      if (st.size === 0) {
        if (fresh === undefined) {
          // an empty leftover (crash right after create): nothing to replay
          await fh.close();
          await unlink(file).catch(() => undefined);
          return undefined;
        }
        const line = headerLine(fresh);
        await fh.write(line, 0, line.length, 0);
        await fh.sync();
        return new Spool(file, fh, fresh, line.length, line.length);
      }
      const head = Buffer.alloc(Math.min(st.size, 4096));
      await fh.read(head, 0, head.length, 0);
      const nl = head.indexOf(10);
      let header: Partial<SpoolHeader> | undefined;
      try {
        header = nl > 0 ? (JSON.parse(head.subarray(0, nl).toString('utf8')) as Partial<SpoolHeader>) : undefined;
      } catch {
        header = undefined;
      }
      if (header?.gatehouseAuditSpool !== 1 || typeof header.chain !== 'string' || typeof header.afterSeq !== 'number' || typeof header.afterHash !== 'string') {
        throw new GatehouseError('ERR_AUDIT_SPOOL_INVALID', `${file}: no spool header on line 1`);
      }
      // A torn last line (crash mid-write, before its fsync) was never acknowledged: ignore it.
      const size = await lastNewline(fh, st.size);
      if (size < st.size) await fh.truncate(size);
      return new Spool(file, fh, header as SpoolHeader, nl + 1, size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Appends lines (no newlines inside) and fsyncs them. */
  async append(lines: readonly string[]): Promise<void> {
    if (lines.length === 0) return;
    const buf = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.#fh.write(buf, done, buf.length - done, this.#durable + done);
      done += bytesWritten;
    }
    await this.#fh.sync();
    this.#durable += buf.length;
  }

  /** Up to maxLines complete lines from offset; each with its byte length (newline included). */
  async read(offset: number, maxLines: number): Promise<{ line: string; bytes: number }[]> {
    const out: { line: string; bytes: number }[] = [];
    let pos = offset;
    while (out.length < maxLines && pos < this.#durable) {
      const len = Math.min(READ_CHUNK, this.#durable - pos);
      const buf = Buffer.alloc(len);
      const { bytesRead } = await this.#fh.read(buf, 0, len, pos);
      let start = 0;
      for (;;) {
        if (out.length >= maxLines) break;
        const nl = buf.indexOf(10, start);
        if (nl < 0 || nl >= bytesRead) break;
        out.push({ line: buf.subarray(start, nl).toString('utf8'), bytes: nl - start + 1 });
        start = nl + 1;
      }
      if (start === 0) {
        throw new GatehouseError('ERR_AUDIT_SPOOL_INVALID', `${this.file}: a line longer than ${READ_CHUNK} bytes at offset ${pos}`);
      }
      pos += start;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#fh.close().catch(() => undefined);
  }

  /** Every line is in the chain: the file goes. */
  async remove(): Promise<void> {
    await this.close();
    await unlink(this.file).catch(() => undefined);
  }
}

async function lastNewline(fh: FileHandle, size: number): Promise<number> {
  const tail = Buffer.alloc(Math.min(size, READ_CHUNK));
  await fh.read(tail, 0, tail.length, size - tail.length);
  const nl = tail.lastIndexOf(10);
  return nl < 0 ? size - tail.length : size - tail.length + nl + 1;
}
