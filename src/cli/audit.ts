// `gatehouse audit verify | query | export | at`: the security team's tools over the audit chains.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { loadConfig, type GatehouseConfig } from '../config/index.js';
import { GatehouseError, isGatehouseError } from '../errors.js';
import type { Store } from '../store/index.js';
import { withStore } from './store-access.js';
import { configOption, str, usageError, type ArgValues, type Command } from './command.js';
import {
  AUDIT_FILTER_FIELDS,
  verifyAudit,
  describeChain,
  queryAll,
  parseTime,
  jsonLine,
  formatCef,
  formatSyslog,
  connectSyslog,
  revisionAt,
  stateAt,
  parseReceipt,
  formatReceipt,
  type AuditFilters,
  type AuditPublicJwk,
  type AuditReceipt,
} from '../audit/index.js';

/** The embedded store is locked while a gateway runs; audit reads need it (or etcd). */
async function reading<T>(config: GatehouseConfig, fn: (s: Store) => Promise<T>): Promise<T> {
  try {
    return await withStore(config, fn);
  } catch (err) {
    if (isGatehouseError(err, 'ERR_STORE_LOCKED')) {
      throw new GatehouseError('ERR_STORE_LOCKED', `${err.message}: audit commands read the store directly; run them against a stopped gateway's embedded store, or against etcd`, { cause: err });
    }
    throw err;
  }
}

const filterOptions = {
  since: { type: 'string' },
  until: { type: 'string' },
  user: { type: 'string' },
  subject: { type: 'string' },
  namespace: { type: 'string' },
  service: { type: 'string' },
  outcome: { type: 'string' },
  action: { type: 'string' },
  replica: { type: 'string' },
  limit: { type: 'string' },
} as const;

function filtersFrom(values: ArgValues, nowMs: number): { filters: AuditFilters; limit: number } {
  const f: AuditFilters = {};
  const time = (name: 'since' | 'until'): void => {
    const v = str(values[name]);
    if (v === undefined) return;
    try {
      f[name] = parseTime(v, nowMs);
    } catch (cause) {
      throw new GatehouseError('ERR_USAGE', `--${name}: ${(cause as Error).message}`, { cause });
    }
  };
  time('since');
  time('until');
  for (const k of AUDIT_FILTER_FIELDS) {
    const v = str(values[k]);
    if (v !== undefined) f[k] = v;
  }
  if (f.outcome !== undefined && !['success', 'failure', 'unknown'].includes(f.outcome)) throw new GatehouseError('ERR_USAGE', '--outcome: success | failure | unknown');
  const limitText = str(values.limit);
  const limit = limitText === undefined ? Infinity : Number(limitText);
  if (!(limit === Infinity || (Number.isSafeInteger(limit) && limit > 0))) throw new GatehouseError('ERR_USAGE', '--limit: a positive integer');
  return { filters: f, limit };
}

async function loadKeys(where: string): Promise<{ keys: Partial<AuditPublicJwk>[] }> {
  let body: string;
  try {
    if (/^https?:\/\//.test(where)) {
      const res = await fetch(where, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = await res.text();
    } else body = await readFile(where, 'utf8');
  } catch (cause) {
    throw new GatehouseError('ERR_AUDIT_KEYS_INVALID', `cannot read audit keys from ${where}: ${(cause as Error).message}`, { cause });
  }
  let jwks: { keys?: unknown };
  try {
    jwks = JSON.parse(body) as { keys?: unknown };
  } catch (cause) {
    throw new GatehouseError('ERR_AUDIT_KEYS_INVALID', `${where} is not JSON`, { cause });
  }
  const keys = Array.isArray(jwks.keys) ? (jwks.keys as Partial<AuditPublicJwk>[]).filter((k) => k.kty === 'OKP' && k.crv === 'Ed25519') : [];
  if (keys.length === 0) throw new GatehouseError('ERR_AUDIT_KEYS_INVALID', `${where} holds no Ed25519 key`);
  return { keys };
}

async function loadReceipt(file: string): Promise<AuditReceipt> {
  let body: string;
  try {
    body = await readFile(file, 'utf8');
  } catch (cause) {
    throw new GatehouseError('ERR_AUDIT_RECEIPT_INVALID', `cannot read the receipt ${file}: ${(cause as Error).message}`, { cause });
  }
  return parseReceipt(body, file);
}

/** Replaced whole or not at all (it may be the file the earlier receipt was read from). */
async function saveReceipt(file: string, receipt: AuditReceipt): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, formatReceipt(receipt), { flag: 'wx' });
    await rename(tmp, file);
  } catch (cause) {
    throw new GatehouseError('ERR_AUDIT_RECEIPT_INVALID', `cannot write the receipt ${file}: ${(cause as Error).message}`, { cause });
  }
}

/** A progress bar on stderr when it is a terminal; nothing otherwise. */
function progressBar(): ((done: number, total: number) => void) | undefined {
  const stderr = process.stderr;
  if (stderr.isTTY !== true) return undefined;
  let lastDraw = 0;
  const started = Date.now();
  return (done, total) => {
    const t = Date.now();
    if (t - lastDraw < 100 && done < total) return;
    lastDraw = t;
    const width = 30;
    const frac = total === 0 ? 1 : done / total;
    const filled = Math.round(frac * width);
    const rate = done / Math.max(0.001, (t - started) / 1000);
    stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(1)}% ${done}/${total} events ${Math.round(rate)}/s `);
    if (done >= total) stderr.write('\n');
  };
}

export const auditVerifyCommand: Command = {
  name: ['audit', 'verify'],
  summary: 'Verify every audit chain and signed checkpoint; names the first break (exit 1)',
  usage: 'gatehouse audit verify [--config gatehouse.yaml] [--replica r] [--keys jwks.json|https://.../gatehouse-audit-keys.json] [--receipt earlier.json] [--write-receipt new.json] [--json]',
  options: { ...configOption, replica: { type: 'string' }, keys: { type: 'string' }, receipt: { type: 'string' }, 'write-receipt': { type: 'string' }, json: { type: 'boolean' } },
  async run({ values }, io) {
    const config = await loadConfig(String(values.config), io.env);
    const keysAt = str(values.keys);
    const keys = keysAt === undefined ? undefined : await loadKeys(keysAt);
    const receiptAt = str(values.receipt);
    const receipt = receiptAt === undefined ? undefined : await loadReceipt(receiptAt);
    const writeTo = str(values['write-receipt']);
    const replica = str(values.replica);
    const started = Date.now();
    const onProgress = progressBar();
    const report = await reading(config, (s) =>
      verifyAudit(s, { ...(replica !== undefined ? { replica } : {}), ...(keys !== undefined ? { keys } : {}), ...(receipt !== undefined ? { receipt } : {}), ...(onProgress !== undefined ? { onProgress } : {}), now: Date.now }),
    );
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const { receipt: next, ...shown } = report;
    if (values.json === true) io.out(JSON.stringify(shown));
    else for (const c of report.chains) io.out(describeChain(c));
    if (report.keysFrom === 'store') io.err('note: checkpoints were checked against the audit keys stored in this same store; pin the published keys with --keys (or pass an earlier --receipt) to rule out a store rewritten with a new key');
    if (report.keysFrom === 'receipt') io.err(`note: checkpoints were checked against the audit keys recorded in ${receiptAt}`);
    if (report.untrustedKeys.length > 0) io.err(`note: the store holds audit key(s) ${report.untrustedKeys.join(', ')} that are not among the ${report.keysFrom === 'given' ? 'pinned keys' : 'receipt\'s keys'}: checkpoints signed with them do not count (rotation is not implemented: someone with write access to the store may have planted them)`);
    if (receipt === undefined) io.err('note: no earlier receipt was given: a chain deleted or restarted with every trace of it (checkpoints, head records, witnesses) cannot be noticed; keep receipts off the box and pass the last one with --receipt');
    if (writeTo !== undefined) {
      await saveReceipt(writeTo, next);
      io.err(`audit verify: receipt for ${next.chains.length} chain(s) written to ${writeTo}${report.ok ? '' : ' (verification failed: broken chains keep their earlier or last signed anchor)'}`);
    }
    const broken = report.chains.filter((c) => c.break !== undefined);
    io.err(`audit verify: ${report.chains.length} chain(s), ${report.events} event(s) verified in ${seconds} s: ${broken.length === 0 ? 'ok' : `${broken.length} chain(s) BROKEN`}`);
    const first = broken[0]?.break;
    if (first !== undefined) throw new GatehouseError('ERR_AUDIT_CHAIN_BROKEN', `${first.replica} seq ${first.seq}: ${first.kind}: ${first.detail}`, { details: { ...first } });
    return 0;
  },
};

export const auditQueryCommand: Command = {
  name: ['audit', 'query'],
  summary: 'Print audit events as JSON lines, merged across replicas by time',
  usage: 'gatehouse audit query [--since 15m|ISO] [--until ...] [--user u] [--subject s] [--namespace n] [--service s] [--outcome success|failure] [--action a|prefix*] [--replica r] [--limit n] [--config gatehouse.yaml]',
  options: { ...configOption, ...filterOptions },
  async run({ values }, io) {
    const config = await loadConfig(String(values.config), io.env);
    const { filters, limit } = filtersFrom(values, Date.now());
    await reading(config, async (s) => {
      for await (const hit of queryAll(s, filters, limit)) io.out(jsonLine(hit));
    });
    return 0;
  },
};

export const auditExportCommand: Command = {
  name: ['audit', 'export'],
  summary: 'Export audit events as JSON lines, CEF or RFC 5424 syslog (to stdout, or over TCP/TLS to a collector)',
  usage: 'gatehouse audit export --format jsonl|cef|syslog [--to tcp://host:port|tls://host:port] [--ca ca.pem] [query filters...] [--config gatehouse.yaml]',
  options: { ...configOption, ...filterOptions, format: { type: 'string', default: 'jsonl' }, to: { type: 'string' }, ca: { type: 'string' } },
  async run({ values }, io) {
    const format = String(values.format);
    const formatters = { jsonl: jsonLine, cef: formatCef, syslog: formatSyslog } as const;
    if (!Object.hasOwn(formatters, format)) throw usageError(this, '--format: jsonl | cef | syslog');
    const fmt = formatters[format as keyof typeof formatters];
    const config = await loadConfig(String(values.config), io.env);
    const { filters, limit } = filtersFrom(values, Date.now());
    const to = str(values.to);
    const caFile = str(values.ca);
    const ca = caFile === undefined ? undefined : await readFile(caFile, 'utf8').catch((cause: unknown) => {
      throw new GatehouseError('ERR_USAGE', `--ca ${caFile}: cannot read`, { cause });
    });
    const conn = to === undefined ? undefined : await connectSyslog({ url: to, ...(ca !== undefined ? { ca } : {}) });
    let n = 0;
    try {
      await reading(config, async (s) => {
        for await (const hit of queryAll(s, filters, limit)) {
          const line = fmt(hit);
          if (conn !== undefined) await conn.send(line);
          else io.out(line);
          n++;
        }
      });
    } finally {
      await conn?.close();
    }
    if (to !== undefined) io.err(`audit export: ${n} event(s) sent to ${to}`);
    return 0;
  },
};

export const auditAtCommand: Command = {
  name: ['audit', 'at'],
  summary: 'Who could reach what at a moment: sessions alive, policies in force, revocations (store as it was)',
  usage: 'gatehouse audit at <ISO time | relative like 2h | store revision> [--config gatehouse.yaml]',
  options: { ...configOption },
  async run({ values, positionals }, io) {
    const what = positionals[0];
    if (positionals.length !== 1 || what === undefined) throw usageError(this, 'expected one time or revision');
    const config = await loadConfig(String(values.config), io.env);
    const out = await reading(config, async (s) => {
      if (/^\d+$/.test(what)) return { asked: what, ...(await stateAt(s, Number(what))) };
      let t: number;
      try {
        t = parseTime(what, Date.now());
      } catch (cause) {
        throw usageError(this, (cause as Error).message, cause);
      }
      const mapping = await revisionAt(s, t);
      return { asked: new Date(t).toISOString(), mapping, ...(await stateAt(s, mapping.revision)) };
    });
    io.out(JSON.stringify(out, null, 2));
    return 0;
  },
};

export const AUDIT_COMMANDS: Command[] = [auditVerifyCommand, auditQueryCommand, auditExportCommand, auditAtCommand];
