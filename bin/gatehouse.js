#!/usr/bin/env node
// Runs the TypeScript sources through tsx when they are present (a clone), else the build.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const src = fileURLToPath(new URL('../src/main.ts', import.meta.url));
if (existsSync(src)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(src).href);
} else {
  await import(new URL('../dist/main.js', import.meta.url).href);
}
