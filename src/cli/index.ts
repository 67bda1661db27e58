// The `gatehouse` command: dispatches to the command table; later issues add commands here.
import { GatehouseError, isGatehouseError } from '../errors.js';
import { parseCommandArgs, type CliIO, type Command } from './command.js';
import { serveCommand } from './serve.js';
import { caInitCommand, certIssueCommand, certRevokeCommand } from './pki.js';
import { storeCompactCommand, storeStatusCommand } from './store.js';
import { POLICY_COMMANDS } from './policy.js';
import { USER_COMMANDS } from './user.js';
import { TOTP_COMMANDS } from './totp.js';
import { AUDIT_COMMANDS } from './audit.js';
import { REVOKE_COMMANDS } from './revoke.js';

export const COMMANDS: Command[] = [serveCommand, storeStatusCommand, storeCompactCommand, caInitCommand, certIssueCommand, certRevokeCommand, ...POLICY_COMMANDS, ...USER_COMMANDS, ...TOTP_COMMANDS, ...AUDIT_COMMANDS, ...REVOKE_COMMANDS];

export function helpText(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.join(' ').length));
  return [
    'gatehouse — zero-trust access gateway',
    '',
    'usage: gatehouse <command> [options]   (gatehouse <command> --help for its options)',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.join(' ').padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

function findCommand(argv: string[]): { cmd: Command; rest: string[] } | undefined {
  // Longest match first, so "store status" wins over a hypothetical "store".
  const sorted = [...COMMANDS].sort((a, b) => b.name.length - a.name.length);
  for (const cmd of sorted) {
    if (cmd.name.every((w, i) => argv[i] === w)) return { cmd, rest: argv.slice(cmd.name.length) };
  }
  return undefined;
}

/** Runs one CLI invocation; returns the exit code. Errors print their code, never a stack. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(helpText());
    return argv.length === 0 ? 2 : 0;
  }
  const found = findCommand(argv);
  try {
    if (found === undefined) throw new GatehouseError('ERR_USAGE', `unknown command: ${argv.join(' ')}\n\n${helpText()}`);
    const args = parseCommandArgs(found.cmd, found.rest);
    if (args.values.help === true) {
      io.out(`${found.cmd.summary}\nusage: ${found.cmd.usage}`);
      return 0;
    }
    return await found.cmd.run(args, io);
  } catch (err) {
    if (isGatehouseError(err)) {
      io.err(`gatehouse: ${err.code}: ${err.message}`);
      return err.code === 'ERR_USAGE' ? 2 : 1;
    }
    io.err(`gatehouse: ERR_INTERNAL: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
