// `gatehouse revoke session|user|token|cert|service <id>`: the store first (directly, or through
// the running gateway that holds the embedded store), then the bus; every replica refuses it.
import { loadConfig } from '../config/index.js';
import { openBus } from '../bus/index.js';
import { REVOCATION_KINDS, canonicalId, isRevocationKind } from '../revocation/index.js';
import { configOption, str, usageError, type Command } from './command.js';
import { runOp } from './store-access.js';

const USAGE = 'gatehouse revoke session <sid> | user <id> | token <jti> | cert <serial> | service <spiffe-id> [--reason text] [--not-after ISO (cert)] [--config gatehouse.yaml]';

export const revokeCommand: Command = {
  name: ['revoke'],
  summary: 'Revoke a session (by sid), user, token (jti), certificate (serial) or service (SPIFFE ID) on every replica',
  usage: USAGE,
  options: { ...configOption, reason: { type: 'string' }, 'not-after': { type: 'string' } },
  async run({ values, positionals }, io) {
    const [kind, id] = positionals;
    if (positionals.length !== 2 || kind === undefined || id === undefined) throw usageError(this, 'expected a kind and an id');
    if (!isRevocationKind(kind)) throw usageError(this, `the kind must be one of ${REVOCATION_KINDS.join(', ')}`);
    try {
      canonicalId(kind, id);
    } catch (err) {
      throw usageError(this, (err as Error).message);
    }
    const reason = str(values.reason);
    const notAfter = str(values['not-after']);
    if (notAfter !== undefined && (kind !== 'cert' || Number.isNaN(Date.parse(notAfter)))) throw usageError(this, '--not-after is an ISO time, for cert only');
    const config = await loadConfig(String(values.config), io.env);
    const args = { kind, id, ...(reason !== undefined ? { reason } : {}), ...(notAfter !== undefined ? { notAfter: new Date(notAfter).toISOString() } : {}) };
    const { result, via } = await runOp(config, 'revoke', args, async () => {
      // A memory bus lives inside each gateway: nothing to publish on from here (replicas learn through the store).
      if (config.bus.kind !== 'nats') return { ctx: { by: 'cli' }, close: async () => undefined };
      try {
        const bus = await openBus({ ...config.bus, timeoutMs: 2_000 });
        return { ctx: { bus, by: 'cli' }, close: () => bus.close() };
      } catch (err) {
        io.err(`gatehouse: warning: the bus is unreachable (${(err as Error).message}); replicas learn through their store watch`);
        return { ctx: { by: 'cli' }, close: async () => undefined };
      }
    });
    io.out(JSON.stringify({ ...(result as object), via }));
    return 0;
  },
};
