// Finds external programs (etcd, nats-server, chromium) for suites that need real servers.
// Outside CI a missing program skips the suite with one line saying what to install;
// under CI=true it is a failure.
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

const SEARCH = (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/bin', '/usr/sbin', '/usr/local/bin']);

export function findProgram(name: string): string | undefined {
  for (const dir of SEARCH) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export const isCI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * Returns the program's path, or a skip message (outside CI). Under CI a missing program throws,
 * so the suite fails instead of passing vacuously.
 */
export function requireProgram(name: string, debianPackage: string): { path: string; skip: false } | { skip: string } {
  const found = findProgram(name);
  if (found !== undefined) return { path: found, skip: false };
  const message = `${name} not found: install Debian's ${debianPackage} (apt-get install -y ${debianPackage}) to run this suite`;
  if (isCI) throw new Error(`CI=true and ${message}`);
  console.log(`# SKIP ${message}`);
  return { skip: message };
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'));
      const { port } = addr;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${lastErr instanceof Error ? `: ${lastErr.message}` : ''}`);
}
