// Debian's nginx as a front proxy in tests: its own prefix, config and temp dirs, loopback
// only, stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { requireProgram, waitFor } from './programs.js';
import { connect } from 'node:net';

export interface Nginx {
  pid: number;
  port: number;
  dir: string;
  errorLog(): string;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** Starts nginx with `http` block contents `httpBlock` (it must listen on `port`). */
export async function startNginx(port: number, httpBlock: string): Promise<Nginx | { skip: string }> {
  const prog = requireProgram('nginx', 'nginx-light');
  if (prog.skip !== false) return { skip: prog.skip };
  const dir = mkdtempSync(path.join(tmpdir(), 'gh-nginx-'));
  for (const d of ['logs', 'tmp']) mkdirSync(path.join(dir, d));
  const conf = `
worker_processes 1;
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log info;
events { worker_connections 64; }
http {
  access_log ${dir}/logs/access.log;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  ${httpBlock}
}
`;
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawn(prog.path, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(
    `nginx on ${port}`,
    () =>
      new Promise<true | undefined>((resolve) => {
        if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
        const s = connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(undefined));
      }),
    10_000,
  );
  return {
    pid: child.pid!,
    port,
    dir,
    errorLog: () => readFileSync(path.join(dir, 'logs', 'error.log'), 'utf8'),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      running.delete(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
