// `gatehouse user add | enroll | list | disable`: people and their one-time enrollment links.
// Writes reach a running gateway's locked embedded store through its admin API (runOp).
import { loadConfig, type GatehouseConfig } from '../config/index.js';
import type { UserRecord } from '../authenticate/index.js';
import { runOp } from './store-access.js';
import { configOption, usageError, type CliIO, type Command } from './command.js';

function enrollmentLink(config: GatehouseConfig, token: string): string {
  const origin = config.login.origin ?? config.webauthn?.origins[0] ?? 'https://localhost';
  // the token rides in the fragment: browsers never send it to a server or in a Referer
  return `${origin}/.gatehouse/enroll#${token}`;
}

function printLink(io: CliIO, config: GatehouseConfig, r: { token: string; expiresAt: string }, user: string): void {
  io.out(`enrollment link for ${user} (one use, expires ${r.expiresAt}):`);
  io.out(`  ${enrollmentLink(config, r.token)}`);
  io.out('give it to the user over a trusted channel; it is not stored and cannot be shown again');
}

export const userAddCommand: Command = {
  name: ['user', 'add'],
  summary: 'Add a person with roles per namespace; prints a one-time enrollment link',
  usage: 'gatehouse user add <id> --role <namespace:role> [--role ...] [--config gatehouse.yaml]',
  options: { ...configOption, role: { type: 'string', short: 'r', multiple: true } },
  async run({ values, positionals }, io) {
    const [id, ...extra] = positionals;
    if (id === undefined || extra.length > 0) throw usageError(this, 'name exactly one user');
    const roles = (values.role as string[] | undefined) ?? [];
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'user.add', { id, roles, enrollmentTtlMs: config.login.enrollmentTtl });
    const r = result as { user: UserRecord; token: string; expiresAt: string };
    io.out(`added ${r.user.id} (${formatRoles(r.user)}), pending enrollment`);
    printLink(io, config, r, r.user.id);
    return 0;
  },
};

export const userEnrollCommand: Command = {
  name: ['user', 'enroll'],
  summary: 'Print a new one-time enrollment link for a user (e.g. after a locked credential)',
  usage: 'gatehouse user enroll <id> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const [id] = positionals;
    if (id === undefined || positionals.length !== 1) throw usageError(this, 'name exactly one user');
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'user.enroll', { id, enrollmentTtlMs: config.login.enrollmentTtl });
    printLink(io, config, result as { token: string; expiresAt: string }, id);
    return 0;
  },
};

function formatRoles(u: UserRecord): string {
  const parts = Object.entries(u.roles).flatMap(([ns, rs]) => rs.map((r) => `${ns}:${r}`));
  return parts.length === 0 ? 'no roles' : parts.join(' ');
}

export const userListCommand: Command = {
  name: ['user', 'list'],
  summary: 'List people, their status and roles',
  usage: 'gatehouse user list [--json] [--config gatehouse.yaml]',
  options: { ...configOption, json: { type: 'boolean' } },
  async run({ values }, io) {
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'user.list', {});
    const { users } = result as { users: UserRecord[] };
    if (values.json === true) {
      io.out(JSON.stringify(users, null, 2));
      return 0;
    }
    if (users.length === 0) io.out('no users');
    for (const u of users) io.out(`${u.id.padEnd(24)} ${u.status.padEnd(9)} ${String(u.credentialIds?.length ?? 0)} key(s)  ${formatRoles(u)}`);
    return 0;
  },
};

export const userDisableCommand: Command = {
  name: ['user', 'disable'],
  summary: "Disable a person: refused everywhere, every session ends on every replica",
  usage: 'gatehouse user disable <id> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const [id] = positionals;
    if (id === undefined || positionals.length !== 1) throw usageError(this, 'name exactly one user');
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'user.disable', { id });
    const r = result as { sessionsEnded: number };
    io.out(`disabled ${id}; ${r.sessionsEnded} session(s) ended`);
    return 0;
  },
};

export const USER_COMMANDS: Command[] = [userAddCommand, userEnrollCommand, userListCommand, userDisableCommand];
