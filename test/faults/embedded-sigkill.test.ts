// Durability: a writer is SIGKILLed mid-stream; every write it saw acknowledged must be in
// the store when it is reopened (which also takes over the dead writer's lock).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openEmbeddedStore } from '../../src/store/embedded/index.js';
import { text } from '../../src/store/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixture = path.join(root, 'test/faults/fixtures/embedded-writer.ts');

interface Ack {
  revision: number;
  key: string;
  value: string;
}

it('every acknowledged write survives SIGKILL of the writer', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-sigkill-'));
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, dir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid;
    assert.ok(pid !== undefined);
    let out = '';
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    // Whatever happens below, the child does not outlive the test.
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
    });

    // Kill once a few thousand writes are acknowledged (or after 5 s of writing).
    await new Promise<void>((resolve, reject) => {
      let started = 0;
      const timer = setTimeout(() => resolve(), 15_000);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (started === 0 && out.startsWith('ready\n')) started = Date.now();
        if ((out.match(/\n/g)?.length ?? 0) > 3_000 || (started > 0 && Date.now() - started > 5_000)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`writer exited early (${code}): ${err}`));
      });
    });
    process.kill(pid, 'SIGKILL');
    assert.equal(await exited, 'SIGKILL');

    // Only whole lines are acknowledgements; a torn last line is not.
    const lines = out.split('\n').slice(0, -1);
    assert.equal(lines.shift(), 'ready');
    const acks: Ack[] = lines.map((line) => {
      const [rev, key, value] = line.split(' ');
      return { revision: Number(rev), key: key!, value: value! };
    });
    assert.ok(acks.length > 100, `only ${acks.length} writes were acknowledged before the kill`);

    const store = await openEmbeddedStore({ kind: 'embedded', path: dir });
    try {
      const maxRev = Math.max(...acks.map((a) => a.revision));
      assert.ok((await store.revision()) >= maxRev);
      let missing = 0;
      for (const ack of acks) {
        const kv = await store.get(ack.key, { revision: ack.revision });
        if (kv === undefined || text(kv.value) !== ack.value || kv.modRevision !== ack.revision) missing++;
      }
      assert.equal(missing, 0, `${missing} of ${acks.length} acknowledged writes are missing`);
      t.diagnostic(`${acks.length} acknowledged writes, all present after SIGKILL (store revision ${await store.revision()})`);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
