// Modes of the embedded store's folder and files (issue 11 §8): the store is private to the
// gateway's user whatever the umask; what is only readable by others is tightened, what others
// may write is refused (ERR_STORE_PERMISSIONS, naming the path and the chmod to run).
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isGatehouseError } from '../../src/errors.js';
import { openStore } from '../../src/store/index.js';

const modeOf = (p: string): number => statSync(p).mode & 0o777;
const octal = (m: number): string => m.toString(8).padStart(3, '0');

async function openAndWrite(dir: string): Promise<void> {
  const store = await openStore({ kind: 'embedded', path: dir });
  try {
    await store.put('/gatehouse/users/alice', '{}');
  } finally {
    await store.close();
  }
}

async function refusedFor(dir: string, named: string, chmod: string): Promise<void> {
  await assert.rejects(openStore({ kind: 'embedded', path: dir }), (err: unknown) => {
    assert.ok(isGatehouseError(err, 'ERR_STORE_PERMISSIONS'), `expected ERR_STORE_PERMISSIONS, got ${String(err)}`);
    assert.ok(err.message.includes(named), `the message names ${named}: ${err.message}`);
    assert.ok(err.message.includes(`${chmod} '${named}'`), `the message gives the chmod to run: ${err.message}`);
    return true;
  });
}

describe('embedded store permissions', { skip: process.platform === 'win32' }, () => {
  let root: string;
  let dir: string;
  let umask: number;

  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'gh-store-perm-'));
    dir = path.join(root, 'data');
    // The common default: files 0644 and folders 0755 unless the program asks for less.
    umask = process.umask(0o022);
  });
  afterEach(() => {
    process.umask(umask);
    rmSync(root, { recursive: true, force: true });
  });

  it('store files are not readable by other users', async () => {
    await openAndWrite(dir);
    assert.equal(octal(modeOf(dir)), '700');
    for (const f of ['data.mdb', 'lock.mdb']) assert.equal(octal(modeOf(path.join(dir, f))), '600', f);
  });

  it('store files are not writable by other users even under umask 000', async () => {
    process.umask(0);
    await openAndWrite(dir);
    assert.equal(octal(modeOf(dir)), '700');
    for (const f of ['data.mdb', 'lock.mdb']) assert.equal(octal(modeOf(path.join(dir, f))), '600', f);
  });

  it('an existing store folder readable by other users is tightened to 0700, with a warning', async () => {
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const warned = once(process, 'warning') as Promise<[Error & { code?: string }]>;
    await openAndWrite(dir);
    assert.equal(octal(modeOf(dir)), '700');
    const [warning] = await warned;
    assert.equal(warning.code, 'GATEHOUSE_STORE_PERMISSIONS');
    assert.match(warning.message, /readable by other users \(mode 0755\); changed to 0700/);
  });

  it('existing store files readable by other users (made by an earlier version) are tightened to 0600', async () => {
    await openAndWrite(dir);
    for (const f of ['data.mdb', 'lock.mdb']) chmodSync(path.join(dir, f), 0o644);
    await openAndWrite(dir);
    for (const f of ['data.mdb', 'lock.mdb']) assert.equal(octal(modeOf(path.join(dir, f))), '600', f);
  });

  it('a group- or world-writable store folder refuses to start', async () => {
    mkdirSync(dir);
    for (const mode of [0o775, 0o757, 0o1777]) {
      chmodSync(dir, mode);
      await refusedFor(dir, dir, 'chmod 700');
      assert.equal(modeOf(dir), mode & 0o777, 'the mode is left for the operator to fix');
      assert.equal(existsSync(path.join(dir, 'data.mdb')), false, 'nothing is created in it');
    }
    chmodSync(dir, 0o700);
    await openAndWrite(dir);
  });

  it('a group- or world-writable store file refuses to start', async () => {
    await openAndWrite(dir);
    for (const f of ['data.mdb', 'lock.mdb']) {
      const file = path.join(dir, f);
      for (const mode of [0o660, 0o606]) {
        chmodSync(file, mode);
        await refusedFor(dir, file, 'chmod 600');
        assert.equal(modeOf(file), mode, 'the mode is left for the operator to fix');
      }
      chmodSync(file, 0o600);
    }
    await openAndWrite(dir);
  });
});
