#!/usr/bin/env node
// Runs every *.test.ts file under the given folders with node:test through tsx, each file in
// its own process group under a wall-clock limit, so a hang fails in minutes and names its file.
// When a file ends (passed, failed or timed out) its whole process group is stopped: a failing
// test cannot leave an etcd, a NATS server or a load loop behind.
//
//   node scripts/run-tests.mjs [folders or files...] [--node-test-flags...]
//   TEST_CONCURRENCY   files at once (default 2)
//   TEST_FILE_TIMEOUT  seconds a file may take (default 300)
//   TEST_TIMEOUT       seconds one test may take unless it sets its own (default 120)
import { readdirSync, statSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Buffer } from 'node:buffer';

const args = process.argv.slice(2);
const passthrough = [];
const roots = [];
for (const a of args) (a.startsWith('--') ? passthrough : roots).push(a);
if (roots.length === 0) roots.push('test');

function walk(p, out) {
  const st = statSync(p);
  if (st.isDirectory()) {
    for (const name of readdirSync(p).sort()) {
      // fixtures are files other tests run on purpose (one of them hangs)
      if (name === 'node_modules' || name === 'fixtures') continue;
      walk(path.join(p, name), out);
    }
  } else if (p.endsWith('.test.ts')) {
    out.push(p);
  }
  return out;
}

const files = roots.flatMap((r) => walk(r, []));
if (files.length === 0) {
  console.error(`no test files under ${roots.join(', ')}`);
  process.exit(1);
}
const concurrency = Math.max(1, Number(process.env.TEST_CONCURRENCY ?? '2'));
const fileTimeoutMs = Number(process.env.TEST_FILE_TIMEOUT ?? '300') * 1000;
const testTimeoutMs = Number(process.env.TEST_TIMEOUT ?? '120') * 1000;
const KILL_GRACE_MS = 5_000;
const tapDir = mkdtempSync(path.join(tmpdir(), 'gatehouse-test-run-'));
const running = new Set();

/** Stops a file's whole process group: SIGTERM (so helpers and browsers can clean up), then SIGKILL. */
async function stopGroup(pid) {
  const alive = () => {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + KILL_GRACE_MS;
  while (alive() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  if (alive()) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function tapCounts(file) {
  const counts = { tests: 0, pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return counts;
  }
  for (const m of text.matchAll(/^# (tests|pass|fail|skipped|todo|cancelled) (\d+)$/gm)) counts[m[1]] = Number(m[2]);
  return counts;
}

function runFile(file, index) {
  return new Promise((resolve) => {
    const tap = path.join(tapDir, `${index}.tap`);
    const started = Date.now();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        `--test-timeout=${testTimeoutMs}`,
        '--test-reporter=spec',
        '--test-reporter-destination=stdout',
        '--test-reporter=tap',
        `--test-reporter-destination=${tap}`,
        ...passthrough,
        file,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    running.add(child.pid);
    const out = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => out.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void stopGroup(child.pid);
    }, fileTimeoutMs);
    child.on('exit', async (code, signal) => {
      clearTimeout(timer);
      // whatever the file started and left running goes with it
      await stopGroup(child.pid);
      running.delete(child.pid);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const counts = tapCounts(tap);
      const ok = !timedOut && code === 0 && signal === null && counts.fail === 0;
      const head = `${ok ? '✔' : '✖'} ${file} (${seconds} s${timedOut ? `, TIMED OUT after ${fileTimeoutMs / 1000} s` : ''})`;
      process.stdout.write(`\n── ${head}\n${Buffer.concat(out).toString('utf8')}`);
      if (timedOut) process.stdout.write(`✖ ${file}: still running after ${fileTimeoutMs / 1000} s; its process group was stopped\n`);
      resolve({ file, ok, timedOut, seconds: Number(seconds), counts, code, signal });
    });
  });
}

async function stopAll() {
  await Promise.all([...running].map((pid) => stopGroup(pid)));
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    void stopAll().then(() => process.exit(1));
  });
}

const started = Date.now();
const results = [];
let next = 0;
async function worker() {
  while (next < files.length) {
    const i = next++;
    results.push(await runFile(files[i], i));
  }
}
await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
rmSync(tapDir, { recursive: true, force: true });

const total = { tests: 0, pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
for (const r of results) for (const k of Object.keys(total)) total[k] += r.counts[k];
const failed = results.filter((r) => !r.ok);
const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 5);
console.log(`\n${files.length} files, ${total.tests} tests: ${total.pass} pass, ${total.fail} fail, ${total.skipped} skipped, ${total.cancelled} cancelled; ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`slowest: ${slowest.map((r) => `${r.file} ${r.seconds} s`).join(', ')}`);
if (failed.length > 0) {
  console.log(`failed files:\n${failed.map((r) => `  ✖ ${r.file}${r.timedOut ? ' (timed out)' : r.signal ? ` (${r.signal})` : ''}`).join('\n')}`);
  process.exit(1);
}
