// File writes for key material: the mode is set when the file is created, so a key is never
// readable by others even for an instant, and fsync makes a reported success durable.
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Creates file with mode; fails with EEXIST if anything (even a dangling symlink) is there. */
export async function writeNewFile(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const fh = await open(file, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces file atomically (write a new temporary file with mode, then rename over). */
export async function replaceFile(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeNewFile(tmp, data, mode);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
