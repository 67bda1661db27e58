// `gatehouse user add | enroll | list | keys | key remove | enable | disable | roles | delete`:
// people, their one-time enrollment links and their security keys. Writes reach a running
// gateway's locked embedded store through its admin API (runOp); every command but `list` is
// audited with the OS user and host that ran it and the person it acted on.
import { loadConfig, type GatehouseConfig } from '../config/index.js';
import type { UserAuthenticators, UserRecord } from '../authenticate/index.js';
import { runOp } from './store-access.js';
import { configOption, usageError, type CliIO, type Command } from './command.js';

function enrollmentLink(config: GatehouseConfig, token: string): string {
  const origin = config.login.origin ?? config.webauthn?.origins[0] ?? 'https://localhost';
  // the token rides in the fragment: browsers never send it to a server or in a Referer
  return `${origin}/.gatehouse/enroll#${token}`;
}

function printLink(io: CliIO, config: GatehouseConfig, r: { token: string; expiresAt: string }, user: string): void {
  io.out(`enrollment link for ${user} (one use, expires ${r.expiresAt}; any older link of ${user} no longer works):`);
  io.out(`  ${enrollmentLink(config, r.token)}`);
  io.out('give it to the user over a trusted channel; it is not stored and cannot be shown again');
}

/** The one positional user id of a command. */
function oneUser(cmd: Command, positionals: string[]): string {
  const [id] = positionals;
  if (id === undefined || positionals.length !== 1) throw usageError(cmd, 'name exactly one user');
  return id;
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
    const { result } = await runOp(config, 'user.add', { id, roles, enrollmentTtlMs: config.login.enrollmentTtl }, undefined, { env: io.env });
    const r = result as { user: UserRecord; token: string; expiresAt: string };
    io.out(`added ${r.user.id} (${formatRoles(r.user)}), pending enrollment`);
    printLink(io, config, r, r.user.id);
    return 0;
  },
};

export const userEnrollCommand: Command = {
  name: ['user', 'enroll'],
  summary: 'Print a new one-time enrollment link for a user (voids any older link); e.g. after a locked credential',
  usage: 'gatehouse user enroll <id> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const id = oneUser(this, positionals);
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'user.enroll', { id, enrollmentTtlMs: config.login.enrollmentTtl }, undefined, { env: io.env });
    printLink(io, config, result as { token: string; expiresAt: string }, id);
    return 0;
  },
};

function formatRoles(u: Pick<UserRecord, 'roles'>): string {
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
    const { result } = await runOp(config, 'user.list', {}, undefined, { env: io.env });
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

const iso = (ms: number | undefined): string => (ms === undefined ? '-' : new Date(ms).toISOString());

export const userKeysCommand: Command = {
  name: ['user', 'keys'],
  summary: "List a person's security keys (AAGUID, attestation, created, last used) and OTP token",
  usage: 'gatehouse user keys <id> [--json] [--config gatehouse.yaml]',
  options: { ...configOption, json: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    const id = oneUser(this, positionals);
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'user.keys', { id }, undefined, { env: io.env });
    const r = result as UserAuthenticators;
    if (values.json === true) {
      io.out(JSON.stringify(r, null, 2));
      return 0;
    }
    io.out(`${r.user} (${r.status}): ${r.credentials.length} security key(s)`);
    for (const c of r.credentials) {
      // attested: its make is proven (hwk); claimed: the AAGUID is the key's own word
      const proof = c.attestationVerified ? 'attested' : 'claimed';
      io.out(`  ${c.id}  aaguid ${c.aaguid} (${proof}, ${c.fmt})  created ${iso(c.createdAt)}  last used ${iso(c.lastUsedAt)}${c.lockedAt !== undefined ? `  LOCKED ${iso(c.lockedAt)}` : ''}`);
    }
    for (const m of r.missing) io.out(`  ${m}  (listed, but its record is gone: remove it with gatehouse user key remove ${r.user} ${m})`);
    io.out(r.otp === undefined ? '  no OTP token' : `  OTP token ${r.otp.serial} (${r.otp.kind}) since ${iso(r.otp.assignedAt)}`);
    return 0;
  },
};

export const userKeyRemoveCommand: Command = {
  name: ['user', 'key', 'remove'],
  summary: 'Remove one security key of a person; the sessions signed in with it end on every replica',
  usage: 'gatehouse user key remove <id> <credential-id (or its first 8+ characters)> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const [id, credential] = positionals;
    if (id === undefined || credential === undefined || positionals.length !== 2) throw usageError(this, 'name a user and one of their credential ids');
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'user.key.remove', { id, credential }, undefined, { env: io.env });
    const r = result as { credentialId: string; remaining: number; sessionsEnded: number };
    io.out(`removed ${r.credentialId} from ${id}; ${r.sessionsEnded} session(s) ended; ${r.remaining} key(s) left`);
    if (r.remaining === 0) io.out(`${id} has no security key now: gatehouse user enroll ${id} for a new one`);
    return 0;
  },
};

export const userEnableCommand: Command = {
  name: ['user', 'enable'],
  summary: 'Enable a disabled person again (active if they hold a key, else pending enrollment)',
  usage: 'gatehouse user enable <id> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const id = oneUser(this, positionals);
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'user.enable', { id }, undefined, { env: io.env });
    const r = result as { user: UserRecord; changed: boolean };
    io.out(r.changed ? `enabled ${id}: ${r.user.status}` : `${id} was not disabled (${r.user.status})`);
    if (r.user.status === 'pending') io.out(`enroll them: gatehouse user enroll ${id}`);
    return 0;
  },
};

export const userDisableCommand: Command = {
  name: ['user', 'disable'],
  summary: 'Disable a person: refused everywhere, every session ends on every replica',
  usage: 'gatehouse user disable <id> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const id = oneUser(this, positionals);
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'user.disable', { id }, undefined, { env: io.env });
    const r = result as { sessionsEnded: number };
    io.out(`disabled ${id}; ${r.sessionsEnded} session(s) ended`);
    return 0;
  },
};

function rolesCommand(change: 'add' | 'remove' | 'set'): Command {
  const what = { add: 'Give a person more roles', remove: 'Take roles from a person', set: "Replace a person's roles (none: no roles)" }[change];
  return {
    name: ['user', 'roles', change],
    summary: `${what}; their sessions end on every replica, the next sign-in carries the new roles`,
    usage: `gatehouse user roles ${change} <id> ${change === 'set' ? '[namespace:role ...]' : '<namespace:role> [...]'} [--config gatehouse.yaml]`,
    options: { ...configOption },
    async run({ values, positionals }, io) {
      const [id, ...roles] = positionals;
      if (id === undefined || (change !== 'set' && roles.length === 0)) throw usageError(this, change === 'set' ? 'name a user' : 'name a user and at least one namespace:role');
      const config = await loadConfig(String(values.config), io.env);
      const { result } = await runOp(config, 'user.roles', { id, change, roles }, undefined, { env: io.env });
      const r = result as { user: UserRecord; changed: boolean; sessionsEnded: number };
      io.out(r.changed ? `${id}: ${formatRoles(r.user)}; ${r.sessionsEnded} session(s) ended` : `${id}: unchanged (${formatRoles(r.user)})`);
      return 0;
    },
  };
}

export const userDeleteCommand: Command = {
  name: ['user', 'delete'],
  summary: 'Delete a person with their keys and OTP token (an imported token goes back to the pool); their sessions end',
  usage: 'gatehouse user delete <id> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const id = oneUser(this, positionals);
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'user.delete', { id }, undefined, { env: io.env });
    const r = result as { credentialsDeleted: number; sessionsEnded: number };
    io.out(`deleted ${id}: ${r.credentialsDeleted} key(s); ${r.sessionsEnded} session(s) ended`);
    return 0;
  },
};

export const USER_COMMANDS: Command[] = [
  userAddCommand, userEnrollCommand, userListCommand, userKeysCommand, userKeyRemoveCommand, userEnableCommand, userDisableCommand,
  rolesCommand('add'), rolesCommand('remove'), rolesCommand('set'), userDeleteCommand,
];
