#!/usr/bin/env node
// tsc compiles TypeScript only: copy the pages' static assets next to the compiled code.
import { cpSync } from 'node:fs';

cpSync('src/authenticate/assets', 'dist/authenticate/assets', { recursive: true });
cpSync('src/admin/console/assets', 'dist/admin/console/assets', { recursive: true });
