// `gatehouse totp import | assign | unassign`: hardware OTP tokens from the vendor's seed file.
// Seeds are sealed under the KEK here, in the CLI, so they never travel or rest in the clear;
// the file itself should be deleted after import. Each command is audited with who ran it.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../config/index.js';
import { GatehouseError } from '../errors.js';
import { loadKek } from '../tokens/index.js';
import { parseSeedFile, sealSeed, type SealedImport } from '../authenticate/index.js';
import { runOp } from './store-access.js';
import { configOption, usageError, type Command } from './command.js';

export const totpImportCommand: Command = {
  name: ['totp', 'import'],
  summary: 'Import OTP token seeds from a PSKC (RFC 6030) XML or serial,secret CSV file',
  usage: 'gatehouse totp import <file.pskc.xml|file.csv> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const [file] = positionals;
    if (file === undefined || positionals.length !== 1) throw usageError(this, 'name exactly one file');
    const config = await loadConfig(String(values.config), io.env);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      throw new GatehouseError('ERR_TOTP_IMPORT_INVALID', `cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, { cause });
    }
    const seeds = parseSeedFile(text);
    const kek = await loadKek({ file: config.tokens.kekFile ?? path.join(config.pki.dir, 'kek'), env: io.env });
    const tokens: SealedImport[] = seeds.map((s) => {
      try {
        return { serial: s.serial, sealedSeed: sealSeed(kek, s.serial, s.seed), digits: s.digits, period: s.period, algorithm: s.algorithm };
      } finally {
        s.seed.fill(0);
      }
    });
    const { result } = await runOp(config, 'totp.import', { tokens }, undefined, { env: io.env });
    io.out(`imported ${(result as { imported: number }).imported} token(s): ${seeds.map((s) => s.serial).join(' ')}`);
    io.out(`assign each with: gatehouse totp assign <serial> <user>; then delete ${file}`);
    return 0;
  },
};

export const totpAssignCommand: Command = {
  name: ['totp', 'assign'],
  summary: 'Assign an imported OTP token to a user by serial',
  usage: 'gatehouse totp assign <serial> <user> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const [serial, user] = positionals;
    if (serial === undefined || user === undefined || positionals.length !== 2) throw usageError(this, 'name a serial and a user');
    const config = await loadConfig(String(values.config), io.env);
    await runOp(config, 'totp.assign', { serial, user }, undefined, { env: io.env });
    io.out(`token ${serial} assigned to ${user}`);
    return 0;
  },
};

export const totpUnassignCommand: Command = {
  name: ['totp', 'unassign'],
  summary: "Take an OTP token (imported, or an enrolled phone-app seed) from its user; their sessions end",
  usage: 'gatehouse totp unassign <serial> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const [serial] = positionals;
    if (serial === undefined || positionals.length !== 1) throw usageError(this, 'name exactly one serial');
    const config = await loadConfig(String(values.config), io.env);
    const { result } = await runOp(config, 'totp.unassign', { serial }, undefined, { env: io.env });
    const r = result as { user: string; kind: string; sessionsEnded: number };
    io.out(`token ${serial} (${r.kind}) taken from ${r.user}; ${r.sessionsEnded} session(s) ended; ${r.user} needs another token to sign in (gatehouse totp assign <serial> ${r.user})`);
    return 0;
  },
};

export const TOTP_COMMANDS: Command[] = [totpImportCommand, totpAssignCommand, totpUnassignCommand];
