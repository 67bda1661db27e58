// The test runner itself: a file that hangs fails after TEST_FILE_TIMEOUT, named, and the
// processes it started are stopped with it; the other files still run and report.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('a hanging test file fails in seconds, named, and its child process is stopped', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-runner-'));
  const pidFile = path.join(dir, 'pid');
  const started = Date.now();
  const run = spawn(process.execPath, ['scripts/run-tests.mjs', 'test/fixtures/runner'], {
    // without NODE_TEST_CONTEXT: the runner's files must not report to this test run
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')), TEST_FILE_TIMEOUT: '4', RUNNER_FIXTURE_PIDFILE: pidFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  run.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  run.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => run.on('exit', (c) => resolve(c)));
  const seconds = (Date.now() - started) / 1000;
  try {
    assert.notEqual(code, 0, out);
    assert.ok(seconds < 30, `took ${seconds} s`);
    assert.match(out, /✖ test\/fixtures\/runner\/hangs\.test\.ts \([\d.]+ s, TIMED OUT after 4 s\)/);
    assert.match(out, /✔ test\/fixtures\/runner\/passes\.test\.ts/);
    assert.match(out, /failed files:\n {2}✖ test\/fixtures\/runner\/hangs\.test\.ts \(timed out\)/);
    const child = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(child > 0);
    assert.equal(alive(child), false, `the fixture's child ${child} outlived its file`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
