// Starts a real nats-server with JetStream for a test file (as nats.js's own tests do), on
// loopback, a free port and a temp store dir. restart() keeps port and store, so streams survive.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, requireProgram, waitFor } from './programs.js';

export interface NatsServer {
  readonly url: string;
  /** PID of the running server (changes on restart); undefined while stopped. */
  readonly pid: number | undefined;
  readonly storeDir: string;
  readonly logFile: string;
  /** Stops the server for good and removes its temp dir. */
  stop(): Promise<void>;
  /** Stops (SIGTERM) and starts again on the same port and store dir; resolves once JetStream is healthy. */
  restart(): Promise<void>;
  /** Sends a signal and waits for the process to exit (SIGKILL simulates a crash); restart() brings it back. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

// Safety net: whatever happens to a test, no server outlives the process.
const live = new Map<number, string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [pid, dir] of live) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export async function startNats(): Promise<NatsServer | { skip: string }> {
  const program = requireProgram('nats-server', 'nats-server');
  if (program.skip !== false) return { skip: program.skip };
  installExitHook();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-nats-'));
  const storeDir = path.join(dir, 'store');
  const logFile = path.join(dir, 'nats-server.log');
  const port = await freePort();
  const monitorPort = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir, '-m', String(monitorPort), '-l', logFile];
    const proc = spawn(program.path, args, { stdio: 'ignore' });
    child = proc;
    if (proc.pid !== undefined) live.set(proc.pid, dir);
    proc.once('exit', () => {
      if (proc.pid !== undefined) live.delete(proc.pid);
    });
    try {
      // /healthz answers ok only once JetStream has recovered its streams.
      await waitFor(`nats-server on ${url} (log: ${logFile})`, async () => {
        if (proc.exitCode !== null) throw new Error(`nats-server exited with ${proc.exitCode}; see ${logFile}`);
        const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz`);
        return res.ok ? true : undefined;
      }, 15_000, 50);
    } catch (err) {
      await halt('SIGKILL');
      throw err;
    }
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (proc === undefined) return;
    child = undefined;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    if (!(await waitExit(proc, 10_000))) {
      proc.kill('SIGKILL');
      await waitExit(proc, 5_000);
    }
  };

  try {
    await launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    url,
    get pid() {
      return child?.pid;
    },
    storeDir,
    logFile,
    async stop() {
      await halt('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await halt('SIGTERM');
      await launch();
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      await halt(signal);
    },
  };
}
