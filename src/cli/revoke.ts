// `gatehouse revoke session|user|token|cert|service <id>`: the store first (directly, or through
// the running gateway that holds the embedded store), then the bus; every replica refuses it.
import { loadConfig } from '../config/index.js';
import { GatehouseError } from '../errors.js';
import { openBus } from '../bus/index.js';
import { REVOCATION_KINDS, canonicalId, isRevocationKind } from '../revocation/index.js';
import { configOption, type Command } from './command.js';
import { runOp } from './store-access.js';

const USAGE = 'gatehouse revoke session <sid> | user <id> | token <jti> | cert <serial> | service <spiffe-id> [--reason text] [--not-after ISO (cert)] [--config gatehouse.yaml]';

function usage(message: string): GatehouseError {
  return new GatehouseError('ERR_USAGE', `${message}\nusage: ${USAGE}`);
}

export const revokeCommand: Command = {
  name: ['revoke'],
  summary: 'Revoke a session (by sid), user, token (jti), certificate (serial) or service (SPIFFE ID) on every replica',
  usage: USAGE,
  options: { ...configOption, reason: { type: 'string' }, 'not-after': { type: 'string' } },
  async run({ values, positionals }, io) {
    const [kind, id] = positionals;
    if (positionals.length !== 2 || kind === undefined || id === undefined) throw usage('expected a kind and an id');
    if (!isRevocationKind(kind)) throw usage(`the kind must be one of ${REVOCATION_KINDS.join(', ')}`);
    try {
      canonicalId(kind, id);
    } catch (err) {
      throw usage((err as Error).message);
    }
    const reason = typeof values.reason === 'string' ? values.reason : undefined;
    const notAfter = typeof values['not-after'] === 'string' ? values['not-after'] : undefined;
    if (notAfter !== undefined && (kind !== 'cert' || Number.isNaN(Date.parse(notAfter)))) throw usage('--not-after is an ISO time, for cert only');
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
