// `gatehouse revoke session|user|token|cert|service <id>`, `revoke list`, `revoke lift`: the
// store first (directly, or through the running gateway that holds the embedded store), then
// the bus; every replica refuses it, or, lifted, serves it again. Each is audited with the OS
// user and host that ran it (src/admin/ops.ts).
import { loadConfig, type GatehouseConfig } from '../config/index.js';
import { openBus } from '../bus/index.js';
import { REVOCATION_KINDS, canonicalId, isRevocationKind, type ListedRevocation, type RevocationKind } from '../revocation/index.js';
import type { OpContext } from '../admin/ops.js';
import { configOption, str, usageError, type CliIO, type Command } from './command.js';
import { runOp } from './store-access.js';

const USAGE = 'gatehouse revoke session <sid> | user <id> | token <jti> | cert <serial> | service <spiffe-id> [--reason text] [--not-after ISO (cert)] [--force] [--config gatehouse.yaml]';

/** The kind and canonical id of a command's two positionals, or a usage error. */
function kindAndId(cmd: Command, positionals: string[]): { kind: RevocationKind; id: string } {
  const [kind, id] = positionals;
  if (positionals.length !== 2 || kind === undefined || id === undefined) throw usageError(cmd, 'expected a kind and an id');
  if (!isRevocationKind(kind)) throw usageError(cmd, `the kind must be one of ${REVOCATION_KINDS.join(', ')}`);
  try {
    canonicalId(kind, id);
  } catch (err) {
    throw usageError(cmd, (err as Error).message);
  }
  return { kind, id };
}

/** The bus the direct path publishes on (a memory bus lives inside each gateway: replicas then learn through the store). */
function busContext(config: GatehouseConfig, io: CliIO): () => Promise<{ ctx: OpContext; close(): Promise<void> }> {
  return async () => {
    if (config.bus.kind !== 'nats') return { ctx: { by: 'cli' }, close: async () => undefined };
    try {
      const bus = await openBus({ ...config.bus, timeoutMs: 2_000 });
      return { ctx: { bus, by: 'cli' }, close: () => bus.close() };
    } catch (err) {
      io.err(`gatehouse: warning: the bus is unreachable (${(err as Error).message}); replicas learn through their store watch`);
      return { ctx: { by: 'cli' }, close: async () => undefined };
    }
  };
}

export const revokeCommand: Command = {
  name: ['revoke'],
  summary: 'Revoke a session (by sid), user, token (jti), certificate (serial) or service (SPIFFE ID) on every replica',
  usage: USAGE,
  options: { ...configOption, reason: { type: 'string' }, 'not-after': { type: 'string' }, force: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    const { kind, id } = kindAndId(this, positionals);
    const reason = str(values.reason);
    const notAfter = str(values['not-after']);
    if (notAfter !== undefined && (kind !== 'cert' || Number.isNaN(Date.parse(notAfter)))) throw usageError(this, '--not-after is an ISO time, for cert only');
    const force = values.force === true;
    const config = await loadConfig(String(values.config), io.env);
    const args = {
      kind, id, ...(reason !== undefined ? { reason } : {}), ...(notAfter !== undefined ? { notAfter: new Date(notAfter).toISOString() } : {}), ...(force ? { force } : {}),
      // the gateway checks service IDs against this when it knows no trust domain of its own
      trustDomain: config.trustDomain,
    };
    const { result, via } = await runOp(config, 'revoke', args, busContext(config, io), { env: io.env });
    const forced = (result as { forced?: string }).forced;
    if (forced !== undefined) io.err(`gatehouse: warning: forced past ${forced}`);
    io.out(JSON.stringify({ ...(result as object), via }));
    return 0;
  },
};

export const revokeListCommand: Command = {
  name: ['revoke', 'list'],
  summary: 'List what is revoked (from the store): kind, id, reason, when, by whom, until when',
  usage: `gatehouse revoke list [--kind ${REVOCATION_KINDS.join('|')}] [--json] [--config gatehouse.yaml]`,
  options: { ...configOption, kind: { type: 'string' }, json: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    if (positionals.length > 0) throw usageError(this, `unexpected argument ${positionals[0]}`);
    const kind = str(values.kind);
    if (kind !== undefined && !isRevocationKind(kind)) throw usageError(this, `--kind must be one of ${REVOCATION_KINDS.join(', ')}`);
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'revoke.list', kind === undefined ? {} : { kind }, undefined, { env: io.env });
    const { revocations, truncated } = result as { revocations: ListedRevocation[]; truncated: boolean };
    if (values.json === true) {
      io.out(JSON.stringify({ revocations, truncated }, null, 2));
      return 0;
    }
    if (revocations.length === 0) io.out('nothing is revoked');
    for (const r of revocations) {
      io.out(r.unreadable === true
        ? `${r.kind.padEnd(8)} ${r.id}  UNREADABLE record (counts as revoked; lift it with gatehouse revoke lift ${r.kind} <id>)`
        : `${r.kind.padEnd(8)} ${r.id}  ${r.revokedAt} by ${r.by}  until ${r.expiresAt ?? 'lifted'}  reason: ${r.reason}`);
    }
    if (truncated) io.out(`… more than ${revocations.length}: narrow with --kind, or use --json`);
    return 0;
  },
};

export const revokeLiftCommand: Command = {
  name: ['revoke', 'lift'],
  summary: 'Lift a revocation of a user, service, session or token on every replica (a certificate revocation is final)',
  usage: 'gatehouse revoke lift user <id> | service <spiffe-id> | session <sid> | token <jti> [--reason text] [--config gatehouse.yaml]',
  options: { ...configOption, reason: { type: 'string' } },
  async run({ values, positionals }, io) {
    const { kind, id } = kindAndId(this, positionals);
    if (kind === 'cert') throw usageError(this, 'a certificate revocation is final (it is on the CRL until the certificate expires): issue a new certificate');
    const reason = str(values.reason);
    const config = await loadConfig(String(values.config), io.env);
    const { result, via } = await runOp(config, 'revoke.lift', { kind, id, ...(reason !== undefined ? { reason } : {}) }, busContext(config, io), { env: io.env });
    io.out(JSON.stringify({ ...(result as object), via }));
    return 0;
  },
};

export const REVOKE_COMMANDS: Command[] = [revokeCommand, revokeListCommand, revokeLiftCommand];
