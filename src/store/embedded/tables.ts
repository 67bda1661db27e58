// The LMDB environment and its named databases. Every key and value is raw bytes
// (layouts in encoding.ts); only `meta` holds small numbers under string names.
import { arch } from 'node:os';
import { open, type Database, type RootDatabase } from 'lmdb';
import { FILE_MODE } from './permissions.js';

export interface Tables {
  root: RootDatabase;
  /** key -> record of its live version: current-revision reads are one lookup. */
  latest: Database<Buffer, Uint8Array>;
  /** enc(key) ++ revision -> record or tombstone: every version since the last compaction. */
  versions: Database<Buffer, Uint8Array>;
  /** revision -> the keys it changed, so a watch replays history in revision order. */
  log: Database<Buffer, Uint8Array>;
  /** lease id -> ttl and deadline. */
  leases: Database<Buffer, Uint8Array>;
  /** lease id ++ key -> (empty): the keys to delete when the lease ends. */
  leaseKeys: Database<Buffer, Uint8Array>;
  meta: Database<number, string>;
}

export const META_REVISION = 'revision';
export const META_COMPACTED = 'compacted';
export const META_NEXT_LEASE = 'nextLease';

/**
 * 16 GiB of address space on 64-bit systems. lmdb-js otherwise maps 128 KiB and doubles the map
 * as the file grows, keeping every earlier mapping for readers that may still use it: the same
 * file pages are then resident several times over (640 MB of RSS for a 282 MB file). On 32-bit
 * systems lmdb-js's own default (chunked remapping) applies.
 */
const ARCH_64 = new Set(['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el']);
export const DEFAULT_MAP_SIZE: number | undefined = ARCH_64.has(arch()) ? 16 * 2 ** 30 : undefined;

/**
 * B-tree pages are not stored in key order, so the kernel's read-ahead around a page fault
 * brings in pages no read asked for, and they then count in the gateway's RSS: a cold start
 * that loads 100,000 sessions mapped all 270 MB of the file instead of the 75 MB it read.
 * (lmdb-js honours noReadAhead, MDB_NORDAHEAD, but its typings omit it.)
 */
const NO_READ_AHEAD: object = { noReadAhead: true };

/**
 * The mode LMDB creates data.mdb and lock.mdb with (mdb_env_open's mode; lmdb-js passes 0664
 * unless told, and its typings omit the option). Existing files are checked in permissions.ts.
 */
const PRIVATE_FILES: object = { permissionsMode: FILE_MODE };

export function openTables(path: string, mapSize = DEFAULT_MAP_SIZE): Tables {
  const root = open({
    path,
    maxDbs: 8,
    ...(mapSize !== undefined ? { mapSize } : {}),
    // overlappingSync: a commit is visible at once and fsynced in the background, so the next
    // batch need not wait for the disk. The writer acknowledges a batch only after its flush
    // (root.flushed), so an acknowledged write survives SIGKILL and, as far as the disk honours
    // fsync, power loss. After a crash LMDB reopens at the last commit (same boot) or the last
    // flushed one (after a reboot): always a consistent prefix of the history.
    overlappingSync: true,
    noSync: false,
    noMetaSync: false,
    useWritemap: false,
    ...NO_READ_AHEAD,
    ...PRIVATE_FILES,
    encoding: 'binary',
    keyEncoding: 'binary',
  });
  const table = (name: string): Database<Buffer, Uint8Array> => root.openDB<Buffer, Uint8Array>({ name, encoding: 'binary', keyEncoding: 'binary' });
  return {
    root,
    latest: table('latest'),
    versions: table('versions'),
    log: table('log'),
    leases: table('leases'),
    leaseKeys: table('lease-keys'),
    meta: root.openDB<number, string>({ name: 'meta', encoding: 'msgpack', keyEncoding: 'ordered-binary' }),
  };
}
