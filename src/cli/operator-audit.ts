// Who runs a CLI command, and the audit chain its events land in when the CLI writes to the
// store itself (etcd, or an embedded store no gateway holds). A CLI process has no running
// gateway's writer, so it opens one for the command on chain `cli-<host>` and closes it after,
// which flushes and signs a checkpoint (when it can read the KEK). Through a running gateway
// the events land in that gateway's chain instead (src/admin/local-api.ts); both paths build
// the event with runAuditedOp (src/admin/ops.ts).
import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { GatehouseConfig } from '../config/index.js';
import { GatehouseError, isGatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';
import type { AuditSink } from '../contracts/audit.js';
import { AuditWriter } from '../audit/index.js';
import { loadKek } from '../tokens/index.js';
import type { Actor } from '../admin/ops.js';

const clean = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '-');

/** `<OS user>@<host>`: who ran the command, as this machine says. */
export function cliActor(env: Readonly<Record<string, string | undefined>> = {}): Actor {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (a container's arbitrary uid)
    user = env.USER ?? `uid-${process.getuid?.() ?? 'unknown'}`;
  }
  return { kind: 'cli', id: `${clean(user)}@${clean(hostname())}`.slice(0, 128) };
}

/** The chain CLI processes of this host append to. */
export function cliReplica(): string {
  return clean(`cli-${hostname()}`).slice(0, 128);
}

export interface OperatorAudit {
  audit: AuditSink;
  /** Flushes and closes; throws when an event did not reach the store (the change itself was made). */
  close(): Promise<void>;
}

/**
 * Opens the writer before the command changes anything: a store the CLI cannot audit to refuses
 * the command instead of letting it act unrecorded.
 */
export async function openOperatorAudit(o: { config: GatehouseConfig; store: Store; clock: Clock; env: Readonly<Record<string, string | undefined>> }): Promise<OperatorAudit> {
  const kek = await optionalKek(o.config, o.env);
  let lastError: unknown;
  const writer = await AuditWriter.open({ store: o.store, replica: cliReplica(), clock: o.clock, ...(kek !== undefined ? { kek } : {}), onError: (e) => (lastError = e) });
  return {
    audit: writer,
    async close() {
      await writer.close();
      if (writer.stats.queued === 0 && writer.stats.dropped === 0) return;
      const cause = lastError;
      const code = isGatehouseError(cause) ? cause.code : 'ERR_STORE_UNAVAILABLE';
      throw new GatehouseError(code, `the change was made, but its audit event did not reach chain ${writer.chain}: ${cause instanceof Error ? cause.message : 'the store did not answer'}`, { cause });
    },
  };
}

/** Checkpoints need the KEK; an operator who cannot read it still gets the chain (which detects edits on its own). */
async function optionalKek(config: GatehouseConfig, env: Readonly<Record<string, string | undefined>>): Promise<KeyObject | undefined> {
  try {
    return await loadKek({ file: config.tokens.kekFile ?? path.join(config.pki.dir, 'kek'), env });
  } catch {
    return undefined;
  }
}
