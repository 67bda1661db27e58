// The CLI's command table: each command declares its flags once, so --help and parsing agree.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { GatehouseError } from '../errors.js';

export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM). */
  stopSignal: Promise<string>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parsed flags, by name. */
export type ArgValues = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  /** Words that name the command, e.g. ['store', 'status']. */
  name: string[];
  summary: string;
  usage: string;
  options: Options;
  run(args: { values: ArgValues; positionals: string[] }, io: CliIO): Promise<number>;
}

export const configOption = { config: { type: 'string', short: 'c', default: './gatehouse.yaml' } } as const satisfies Options;

export function parseCommandArgs(cmd: Command, argv: string[]): { values: ArgValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values, positionals };
  } catch (cause) {
    throw usageError(cmd, (cause as Error).message, cause);
  }
}

/** ERR_USAGE (exit 2): what is wrong, then the command's usage line. */
export function usageError(cmd: Pick<Command, 'usage'>, message: string, cause?: unknown): GatehouseError {
  return new GatehouseError('ERR_USAGE', `${message}\nusage: ${cmd.usage}`, { cause });
}

/** A flag's value when it is a string. */
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
