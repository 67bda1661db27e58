// How the CLI reaches the store for a write: directly, or, when a running gateway holds the
// embedded store (ERR_STORE_LOCKED), through that gateway's local operator API.
import type { GatehouseConfig } from '../config/index.js';
import { GatehouseError, isGatehouseError, ERROR_CODES, type ErrorCode } from '../errors.js';
import { systemClock } from '../lib/clock.js';
import { openStore, type Store } from '../store/index.js';
import { runStoreOp, type OpContext, type StoreOpName } from '../admin/ops.js';
import { OPS_PATH, readAdminToken } from '../admin/local-api.js';

/** Opens the store for one command and always closes it. */
export async function withStore<T>(config: GatehouseConfig, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await openStore(config.store);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function viaGateway(config: GatehouseConfig, name: StoreOpName, args: unknown): Promise<unknown> {
  if (config.store.kind !== 'embedded') throw new GatehouseError('ERR_INTERNAL', 'only the embedded store is reached through the gateway');
  const token = await readAdminToken(config.store.path);
  const { address, port } = config.listeners.admin;
  const host = address.includes(':') ? `[${address}]` : address === '0.0.0.0' ? '127.0.0.1' : address;
  let res: Response;
  try {
    res = await fetch(`http://${host}:${port}${OPS_PATH}${name}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
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

/** Runs a store operation; `direct` is told whether it went through a running gateway. */
export async function runOp(
  config: GatehouseConfig,
  name: StoreOpName,
  args: unknown,
  /** On the direct path only: what else the operation may use (e.g. the bus), closed afterwards. */
  openContext?: () => Promise<{ ctx: OpContext; close(): Promise<void> }>,
): Promise<{ result: unknown; via: 'store' | 'gateway' }> {
  let store: Store;
  try {
    store = await openStore(config.store);
  } catch (err) {
    if (isGatehouseError(err, 'ERR_STORE_LOCKED') && config.store.kind === 'embedded') {
      return { result: await viaGateway(config, name, args), via: 'gateway' };
    }
    throw err;
  }
  const extra = await openContext?.().catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  try {
    return { result: await runStoreOp(name, store, args, systemClock, extra?.ctx), via: 'store' };
  } finally {
    await extra?.close().catch(() => undefined);
    await store.close();
  }
}
