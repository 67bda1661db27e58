#!/usr/bin/env node
// Lists *.test.ts files under the given folders and runs them with node:test through tsx.
// (Node 20 does not expand quoted globs, so the runner lists the files itself.)
import { readdirSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';

const args = process.argv.slice(2);
const passthrough = [];
const roots = [];
for (const a of args) (a.startsWith('--') ? passthrough : roots).push(a);
if (roots.length === 0) roots.push('test');

function walk(p, out) {
  const st = statSync(p);
  if (st.isDirectory()) {
    for (const name of readdirSync(p).sort()) {
      if (name === 'node_modules') continue;
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
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...passthrough, ...files],
  { stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
