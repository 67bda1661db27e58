// The real `gatehouse` binary, as a user runs it: help, a bad config, and serve on the embedded store.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from '../helpers/programs.js';

const run = promisify(execFile);
const BIN = path.join(import.meta.dirname, '../../bin/gatehouse.js');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('gatehouse CLI', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gh-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--help lists the commands', async () => {
    const r = await cli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /serve/);
    assert.match(r.stdout, /store status/);
  });

  it('an unknown command or flag exits 2 with ERR_USAGE', async () => {
    const a = await cli(['frobnicate']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /ERR_USAGE: unknown command/);
    const b = await cli(['serve', '--no-such-flag']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /ERR_USAGE/);
  });

  it('serve refuses an invalid config, naming the key', async () => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, 'store: { kind: embedded, path: ./d }\nlisteners: { admin: { port: 9090, tls: yes } }\n');
    const r = await cli(['serve', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERR_CONFIG_INVALID: .*bad\.yaml:2: listeners\.admin\.tls unknown key/);
  });

  it('serve opens the embedded store, answers /healthz and /readyz, and stops on SIGTERM', async () => {
    const port = await freePort();
    const file = path.join(dir, 'gatehouse.yaml');
    await writeFile(file, `store: { kind: embedded, path: ./data }\nbus: { kind: memory }\nlisteners: { admin: { address: 127.0.0.1, port: ${port} } }\n`);
    const child = spawn(process.execPath, [BIN, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const health = await waitFor('healthz', async () => {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        return res.ok ? res : undefined;
      });
      assert.deepEqual(await health.json(), { status: 'ok' });
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(ready.status, 200);
      const status = await cli(['store', 'status', '--config', file]);
      // the running server holds the embedded store's write lock
      assert.equal(status.code, 1);
      assert.match(status.stderr, /ERR_STORE_LOCKED/);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    assert.equal(code, 0, out);
    assert.match(out, /admin on http:\/\/127\.0\.0\.1:/);
    const status = await cli(['store', 'status', '--config', file]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { kind: string }).kind, 'embedded');
  });
});
