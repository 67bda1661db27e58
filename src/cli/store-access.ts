// How the CLI reaches the store for a write: directly, or, when a running gateway holds the
// embedded store (ERR_STORE_LOCKED), through that gateway's local operator API. Audited
// operations are recorded with the OS user and host on either path: in a `cli-<host>` chain
// the CLI appends to itself (operator-audit.ts), or in the gateway's chain.
import type { GatehouseConfig } from '../config/index.js';
import { GatehouseError, isGatehouseError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { openStore, type Store } from '../store/index.js';
import { isAuditedOp, runAuditedOp, runStoreOp, type OpContext, type StoreOpName } from '../admin/ops.js';
import { ACTOR_HEADER, OPS_PATH, readAdminToken } from '../admin/local-api.js';
import { cliActor, openOperatorAudit } from './operator-audit.js';

/** Opens the store for one command and always closes it. */
export async function withStore<T>(config: GatehouseConfig, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await openStore(config.store);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function viaGateway(config: GatehouseConfig, name: StoreOpName, args: unknown, actor: string): Promise<unknown> {
  if (config.store.kind !== 'embedded') throw new GatehouseError('ERR_INTERNAL', 'only the embedded store is reached through the gateway');
  const token = await readAdminToken(config.store.path);
  const { address, port } = config.listeners.admin;
  const host = address.includes(':') ? `[${address}]` : address === '0.0.0.0' ? '127.0.0.1' : address;
  let res: Response;
  try {
    res = await fetch(`http://${host}:${port}${OPS_PATH}${name}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', [ACTOR_HEADER]: actor },
      body: JSON.stringify(args),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (cause) {
    throw new GatehouseError('ERR_STORE_LOCKED', `the store is held by another process and the gateway's admin listener at ${host}:${port} did not answer`, { cause });
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  if (!res.ok) {
    const code = body.error?.code;
    const known = typeof code === 'string' && Object.hasOwn(ERROR_CODES, code) ? (code as ErrorCode) : 'ERR_INTERNAL';
    throw new GatehouseError(known, body.error?.message ?? `gateway answered ${res.status}`);
  }
  return body;
}

export interface RunOpOptions {
  /** Where GATEHOUSE_KEK may come from (the audit writer signs its checkpoint with it). */
  env?: Readonly<Record<string, string | undefined>>;
  clock?: Clock;
}

/** Runs a store operation; `direct` is told whether it went through a running gateway. */
export async function runOp(
  config: GatehouseConfig,
  name: StoreOpName,
  args: unknown,
  /** On the direct path only: what else the operation may use (e.g. the bus), closed afterwards. */
  openContext?: () => Promise<{ ctx: OpContext; close(): Promise<void> }>,
  options: RunOpOptions = {},
): Promise<{ result: unknown; via: 'store' | 'gateway' }> {
  const env = options.env ?? {};
  const clock = options.clock ?? systemClock;
  const actor = cliActor(env);
  let store: Store;
  try {
    store = await openStore(config.store);
  } catch (err) {
    if (isGatehouseError(err, 'ERR_STORE_LOCKED') && config.store.kind === 'embedded') {
      return { result: await viaGateway(config, name, args, actor.id), via: 'gateway' };
    }
    throw err;
  }
  try {
    // opened before anything changes: a store the command cannot audit to refuses the command
    const operatorAudit = isAuditedOp(name) ? await openOperatorAudit({ config, store, clock, env }) : undefined;
    const extra = await openContext?.().catch(async (err: unknown) => {
      await operatorAudit?.close().catch(() => undefined);
      throw err;
    });
    // the CLI's config names the trust domain a service revocation must be of
    const ctx = { ...extra?.ctx, trustDomain: config.trustDomain };
    let result: unknown;
    try {
      result = operatorAudit === undefined
        ? await runStoreOp(name, store, args, clock, ctx)
        : await runAuditedOp(name, store, args, clock, { ...ctx, actor, audit: operatorAudit.audit, channel: 'store' });
    } finally {
      await extra?.close().catch(() => undefined);
      // the event of a failed operation is flushed too; its own error wins over the flush's
      await operatorAudit?.close().catch((err: unknown) => {
        if (result !== undefined) throw err;
      });
    }
    return { result, via: 'store' };
  } finally {
    await store.close();
  }
}
