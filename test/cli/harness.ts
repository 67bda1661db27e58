// What the CLI tests share: running `gatehouse` in-process, reading an audit chain, the actor the
// CLI names on this machine, and a gateway holding an embedded store that the CLI reaches
// through its local API (a config naming that gateway's admin port).
import { writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { runCli } from '../../src/cli/index.js';
import { text, type Store } from '../../src/store/index.js';
import type { AuditEvent } from '../../src/contracts/audit.js';
import { configText, makeEnv, startGateway, type Env, type Gateway } from '../authenticate/harness.js';

/** `<OS user>@<host>` as the CLI names it. */
export const actor = `${userInfo().username}@${hostname()}`.replace(/[^A-Za-z0-9._@-]/g, '-');

export async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, stopSignal: new Promise(() => undefined) });
  return { code, out, err };
}

/** The events of one audit chain, in order. */
export async function chainEvents(store: Store, chain: string): Promise<AuditEvent[]> {
  const r = await store.range({ prefix: `/gatehouse/audit/${chain}/` });
  return r.kvs.map((kv) => (JSON.parse(text(kv.value)) as { event: AuditEvent }).event);
}

export interface HeldStore {
  env: Env;
  gw: Gateway;
  /** A config for the CLI: the gateway's store, and its admin listener's port. */
  file: string;
  close(): Promise<void>;
}

/** A gateway holding an embedded store, listening, and a CLI config that reaches it. */
export async function startHeldStore(): Promise<HeldStore> {
  const env = await makeEnv();
  const gw = await startGateway(env);
  const at = await gw.app.listen();
  const file = path.join(env.dir, 'cli.yaml');
  await writeFile(file, configText(env).replace('admin: { address: 127.0.0.1, port: 0 }', `admin: { address: 127.0.0.1, port: ${at.admin.port} }`));
  return {
    env,
    gw,
    file,
    async close() {
      await gw.close();
      await env.close();
    },
  };
}
