// One writer per store directory: the in-memory revision counter and lease timers assume it.
// The lock is a file holding the owner's PID, written whole to a temporary file and then
// hard-linked into place (link fails if the lock exists, and nobody sees a half-written PID);
// a lock whose PID is no longer running (the owner was SIGKILLed) is taken over.
import { writeFileSync, linkSync, readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { GatehouseError } from '../../errors.js';

export const LOCK_FILE = 'gatehouse.lock';

export interface DirLock {
  release(): void;
}

export function lockDirectory(dir: string): DirLock {
  const file = path.join(dir, LOCK_FILE);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (tryLink(temp, file)) return { release: () => releaseLock(file) };
      const owner = readOwner(file);
      if (owner !== undefined && isRunning(owner)) {
        throw new GatehouseError('ERR_STORE_LOCKED', `the store directory is held open by process ${owner}`, { details: { pid: owner } });
      }
      // Stale: remove it and try once more.
      try {
        unlinkSync(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  } finally {
    unlinkSync(temp);
  }
  throw new GatehouseError('ERR_STORE_LOCKED', 'another process is opening the store directory');
}

function tryLink(temp: string, file: string): boolean {
  try {
    linkSync(temp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function readOwner(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function releaseLock(file: string): void {
  // Only remove the lock if it is still ours.
  if (readOwner(file) !== process.pid) return;
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}
