// Starts a real etcd cluster (1 or 3 members) on 127.0.0.1 for tests and benchmarks.
// Each member gets random ports and a temp data dir; its output goes to a log file there.
// Processes are killed by PID on stop() and, as a safety net, when the test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, requireProgram, waitFor } from './programs.js';

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** PID of the running process; undefined while stopped. */
  readonly pid: number | undefined;
  readonly running: boolean;
}

export interface EtcdCluster {
  readonly endpoints: string[];
  readonly members: readonly EtcdMember[];
  /** Election settings the members run with (ms). */
  readonly heartbeatMs: number;
  readonly electionMs: number;
  /** The member the running members agree is leader. */
  leader(timeoutMs?: number): Promise<EtcdMember>;
  /** Sends signal to the member and waits until its process has exited. */
  kill(member: EtcdMember, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped member again on its data dir and waits until it answers /health. */
  restart(member: EtcdMember): Promise<void>;
  /** Kills every member and removes the temp dirs. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartEtcdOptions {
  members: 1 | 3;
  heartbeatMs?: number;
  electionMs?: number;
}

const HEARTBEAT_MS = 50;
const ELECTION_MS = 500;
/**
 * etcd's default, stated explicitly: a 1.25 MiB value plus a 1 KiB key and framing fits, and
 * tests refuse what a default production cluster would refuse.
 */
const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

// Safety net: every PID we started, killed synchronously if the process exits without stop().
const livePids = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of livePids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

class Member implements EtcdMember {
  child: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  constructor(
    readonly name: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    readonly dataDir: string,
    readonly logFile: string,
    readonly args: string[],
  ) {}
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }
}

async function healthy(member: EtcdMember): Promise<true | undefined> {
  const res = await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
  const body = (await res.json()) as { health?: string };
  return body.health === 'true' ? true : undefined;
}

interface StatusJson {
  header?: { member_id?: string };
  leader?: string;
}

async function memberStatus(member: EtcdMember): Promise<StatusJson> {
  // etcd 3.4 serves the gRPC gateway under /v3/.
  const res = await fetch(`${member.clientUrl}/v3/maintenance/status`, {
    method: 'POST',
    body: '{}',
    headers: { 'content-type': 'application/json' },
    signal: AbortSignal.timeout(1000),
  });
  return (await res.json()) as StatusJson;
}

function spawnMember(bin: string, member: Member): void {
  const fd = openSync(member.logFile, 'a');
  try {
    // etcd reads ETCD_* variables as flags; a developer's own settings must not leak in.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
    const child = spawn(bin, member.args, { stdio: ['ignore', fd, fd], env });
    member.child = child;
    if (child.pid !== undefined) livePids.add(child.pid);
    member.exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (child.pid !== undefined) livePids.delete(child.pid);
        resolve();
      });
      child.once('error', () => resolve());
    });
  } finally {
    closeSync(fd);
  }
}

async function startOnce(bin: string, options: StartEtcdOptions): Promise<EtcdCluster> {
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  const electionMs = options.electionMs ?? ELECTION_MS;
  const token = `gatehouse-test-${process.pid}-${Date.now()}`;
  const specs: { name: string; clientUrl: string; peerUrl: string; dir: string }[] = [];
  for (let i = 0; i < options.members; i++) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-etcd-'));
    specs.push({ name: `m${i}`, clientUrl: `http://127.0.0.1:${await freePort()}`, peerUrl: `http://127.0.0.1:${await freePort()}`, dir });
  }
  const initialCluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(',');
  const members = specs.map((s) => {
    const args = [
      '--name', s.name,
      '--data-dir', path.join(s.dir, 'data'),
      '--listen-client-urls', s.clientUrl,
      '--advertise-client-urls', s.clientUrl,
      '--listen-peer-urls', s.peerUrl,
      '--initial-advertise-peer-urls', s.peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--heartbeat-interval', String(heartbeatMs),
      '--election-timeout', String(electionMs),
      '--max-request-bytes', String(MAX_REQUEST_BYTES),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
    ];
    return new Member(s.name, s.clientUrl, s.peerUrl, path.join(s.dir, 'data'), path.join(s.dir, 'etcd.log'), args);
  });
  const dirs = specs.map((s) => s.dir);

  let stopped = false;
  const cluster: EtcdCluster = {
    endpoints: members.map((m) => m.clientUrl),
    members,
    heartbeatMs,
    electionMs,
    async leader(timeoutMs = 10_000) {
      return waitFor('an etcd leader', async () => {
        const running = members.filter((m) => m.running);
        const statuses = await Promise.all(running.map((m) => memberStatus(m).catch(() => undefined)));
        const votes = new Map<string, number>();
        for (const s of statuses) if (s?.leader !== undefined && s.leader !== '0') votes.set(s.leader, (votes.get(s.leader) ?? 0) + 1);
        for (const [id, n] of votes) {
          if (n * 2 <= members.length) continue;
          const idx = statuses.findIndex((s) => s?.header?.member_id === id);
          if (idx >= 0) return running[idx];
        }
        return undefined;
      }, timeoutMs);
    },
    async kill(member, signal = 'SIGKILL') {
      const m = member as Member;
      if (!m.running || m.child?.pid === undefined) return;
      process.kill(m.child.pid, signal);
      await m.exited;
    },
    async restart(member) {
      const m = member as Member;
      if (m.running) throw new Error(`${m.name} is still running`);
      spawnMember(bin, m);
      await waitFor(`${m.name} to answer /health`, () => healthy(m), 20_000);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(
        members.map(async (m) => {
          if (m.running && m.child?.pid !== undefined) {
            try {
              process.kill(m.child.pid, 'SIGKILL');
            } catch {
              // already gone
            }
            await m.exited;
          }
        }),
      );
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    for (const m of members) spawnMember(bin, m);
    for (const m of members) {
      await waitFor(`${m.name} to answer /health`, async () => {
        if (!m.running) throw new Error(`${m.name} exited early (see ${m.logFile})`);
        return healthy(m);
      }, 20_000);
    }
    await cluster.leader();
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/**
 * Starts an etcd cluster, or says why it cannot (etcd not installed, outside CI).
 * Retries once or twice: freePort() releases the port before etcd binds it, so another
 * process can take it in between.
 */
export async function startEtcdCluster(options: StartEtcdOptions): Promise<EtcdCluster | { skip: string }> {
  const program = requireProgram('etcd', 'etcd-server');
  if (program.skip !== false) return { skip: program.skip };
  installExitHook();
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(program.path, options);
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}

export function isSkip<T extends object>(v: T | { skip: string }): v is { skip: string } {
  return 'skip' in v && typeof (v as { skip: unknown }).skip === 'string';
}
