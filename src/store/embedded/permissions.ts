// The store folder holds users, credentials, session hashes, sealed keys and the audit chain:
// only the gateway's own user may read it. New folders are made 0700 and LMDB is told to
// create its files 0600 (tables.ts; the umask can only narrow that). What an earlier version or
// an operator left too open is tightened when it is only readable by others; when others may
// write, the store is refused: someone else could already have replaced or altered it, and
// chmod would hide that, so an operator must look before it is used.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { GatehouseError } from '../../errors.js';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;
/** The files LMDB keeps in the folder across restarts (the lock file is rewritten at each open). */
export const STORE_FILES = ['data.mdb', 'lock.mdb'] as const;

const OTHERS_WRITE = 0o022;
const OTHERS_ANY = 0o077;

export type Warn = (message: string) => void;

function processWarning(message: string): void {
  // The store opens before the gateway's logger exists: a process warning reaches stderr.
  process.emitWarning(message, { code: 'GATEHOUSE_STORE_PERMISSIONS' });
}

/** A path quoted for a POSIX shell, so the command in the message can be pasted as it is. */
const sh = (p: string): string => `'${p.replaceAll("'", "'\\''")}'`;
const octal = (mode: number): string => `0${(mode & 0o777).toString(8).padStart(3, '0')}`;

function who(mode: number): string {
  const g = (mode & 0o020) !== 0;
  const o = (mode & 0o002) !== 0;
  return g && o ? 'its group and all users' : g ? 'its group' : 'all users';
}

function modeOf(file: string): number | undefined {
  try {
    return statSync(file).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function refuse(message: string, file: string, fix: string): GatehouseError {
  return new GatehouseError('ERR_STORE_PERMISSIONS', `${message}; check that it was not altered, then run: ${fix}`, { details: { path: file } });
}

function tighten(file: string, mode: number, to: number, fix: string, warn: Warn): void {
  try {
    chmodSync(file, to);
  } catch (cause) {
    throw new GatehouseError('ERR_STORE_PERMISSIONS', `${file} is readable by other users (mode ${octal(mode)}) and could not be changed: run ${fix}`, { cause, details: { path: file } });
  }
  warn(`${file} was readable by other users (mode ${octal(mode)}); changed to ${octal(to)}`);
}

/** Creates the store folder or checks an existing one and its files; throws ERR_STORE_PERMISSIONS. */
export function secureStoreFolder(dir: string, warn: Warn = processWarning): void {
  // Modes mean nothing to Windows ACLs.
  if (process.platform === 'win32') {
    mkdirSync(dir, { recursive: true });
    return;
  }
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  const dirMode = statSync(dir).mode;
  if ((dirMode & OTHERS_WRITE) !== 0) {
    throw refuse(`the store folder ${dir} is writable by ${who(dirMode)} (mode ${octal(dirMode)})`, dir, `chmod 700 ${sh(dir)}`);
  }
  const files = STORE_FILES.map((name) => ({ file: path.join(dir, name), mode: modeOf(path.join(dir, name)) }));
  // Every writable file is refused before anything is changed.
  for (const { file, mode } of files) {
    if (mode !== undefined && (mode & OTHERS_WRITE) !== 0) {
      throw refuse(`the store file ${file} is writable by ${who(mode)} (mode ${octal(mode)})`, file, `chmod 600 ${sh(file)}`);
    }
  }
  if ((dirMode & OTHERS_ANY) !== 0) tighten(dir, dirMode, DIR_MODE, `chmod 700 ${sh(dir)}`, warn);
  for (const { file, mode } of files) {
    if (mode !== undefined && (mode & OTHERS_ANY) !== 0) tighten(file, mode, FILE_MODE, `chmod 600 ${sh(file)}`, warn);
  }
}
