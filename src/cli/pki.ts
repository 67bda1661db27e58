// `gatehouse ca init`, `gatehouse cert issue`, `gatehouse cert revoke`.
import path from 'node:path';
import { loadConfig, type GatehouseConfig } from '../config/index.js';
import { GatehouseError } from '../errors.js';
import { systemClock } from '../lib/clock.js';
import {
  CA_FILES, REVOCATION_REASONS, canonicalSerial, initCa, isDnsLabel, isTrustDomain, issueCertificate, loadCa, recordIssued,
  writeCertificateFiles, type RevocationReason,
} from '../pki/index.js';
import { runOp, withStore } from './store-access.js';
import { configOption, type Command } from './command.js';

type Values = Record<string, string | boolean | string[] | undefined>;

function usage(message: string, cmd: Command): GatehouseError {
  return new GatehouseError('ERR_USAGE', `${message}\nusage: ${cmd.usage}`);
}

function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses 90s, 15m, 24h, 7d; undefined for anything else (no zero, no fractions, no mixed units). */
export function parseDuration(input: string): number | undefined {
  const m = /^([1-9][0-9]{0,8})([smhd])$/.exec(input);
  return m === null ? undefined : Number(m[1]) * UNITS[m[2]!]!;
}

/** The config when --config was given (ca init and cert issue work without one). */
async function givenConfig(values: Values, env: Readonly<Record<string, string | undefined>>): Promise<GatehouseConfig | undefined> {
  const file = str(values, 'config');
  return file === undefined ? undefined : loadConfig(file, env);
}


export const caInitCommand: Command = {
  name: ['ca', 'init'],
  summary: 'Create the CA (ca.pem, ca.key 0600, kek 0600) in the PKI folder; never overwrites one',
  usage: 'gatehouse ca init [--dir certs] [--trust-domain example.org] [--validity-days 3650] [--config gatehouse.yaml]',
  options: {
    dir: { type: 'string' },
    'trust-domain': { type: 'string' },
    'validity-days': { type: 'string' },
    config: { type: 'string', short: 'c' },
  },
  async run({ values, positionals }, io) {
    if (positionals.length > 0) throw usage(`unexpected argument ${positionals[0]}`, this);
    const config = await givenConfig(values, io.env);
    const dir = str(values, 'dir') ?? config?.pki.dir ?? './certs';
    const trustDomain = str(values, 'trust-domain') ?? config?.trustDomain;
    if (trustDomain === undefined) throw usage('--trust-domain is required (or --config naming trustDomain)', this);
    if (!isTrustDomain(trustDomain)) throw usage(`--trust-domain must be a lowercase DNS name like example.org, got ${JSON.stringify(trustDomain)}`, this);
    const daysText = str(values, 'validity-days');
    const validityDays = daysText === undefined ? 3650 : /^[1-9][0-9]{0,4}$/.test(daysText) ? Number(daysText) : NaN;
    if (Number.isNaN(validityDays) || validityDays > 36_500) throw usage(`--validity-days must be a whole number from 1 to 36500, got ${JSON.stringify(daysText)}`, this);
    const ca = await initCa({ dir, trustDomain, validityDays });
    io.out(JSON.stringify({ ca: path.join(ca.dir ?? dir, CA_FILES.cert), trustDomain: ca.trustDomain, notAfter: ca.notAfter.toISOString() }));
    return 0;
  },
};

export const certIssueCommand: Command = {
  name: ['cert', 'issue'],
  summary: 'Issue a service certificate (key.pem, cert.pem, ca.pem) for spiffe://<td>/ns/<namespace>/sa/<service>',
  usage: 'gatehouse cert issue --namespace payments --service api --out DIR [--ttl 24h] [--dir certs] [--config gatehouse.yaml]',
  options: {
    dir: { type: 'string' },
    namespace: { type: 'string' },
    service: { type: 'string' },
    out: { type: 'string' },
    ttl: { type: 'string' },
    config: { type: 'string', short: 'c' },
  },
  async run({ values, positionals }, io) {
    if (positionals.length > 0) throw usage(`unexpected argument ${positionals[0]}`, this);
    const namespace = str(values, 'namespace');
    const service = str(values, 'service');
    const out = str(values, 'out');
    if (namespace === undefined || service === undefined || out === undefined) throw usage('--namespace, --service and --out are required', this);
    if (!isDnsLabel(namespace)) throw usage(`--namespace must be a lowercase DNS label, got ${JSON.stringify(namespace)}`, this);
    if (!isDnsLabel(service)) throw usage(`--service must be a lowercase DNS label, got ${JSON.stringify(service)}`, this);
    const ttlText = str(values, 'ttl') ?? '24h';
    const ttlMs = parseDuration(ttlText);
    if (ttlMs === undefined) throw usage(`--ttl must be a duration like 90s, 15m, 24h or 7d, got ${JSON.stringify(ttlText)}`, this);

    const config = await givenConfig(values, io.env);
    const ca = await loadCa(str(values, 'dir') ?? config?.pki.dir ?? './certs');
    if (config !== undefined && config.trustDomain !== ca.trustDomain) {
      throw new GatehouseError('ERR_CONFIG_INVALID', `${config.source}: trustDomain ${config.trustDomain} differs from the CA's trust domain ${ca.trustDomain}`);
    }
    const now = systemClock.now();
    if (now + ttlMs > ca.notAfter.getTime()) {
      throw usage(`--ttl ${ttlText} outlives the CA, which expires at ${ca.notAfter.toISOString()}`, this);
    }
    const issue = () => issueCertificate(ca, { namespace, service, ttlMs, clock: systemClock });
    // With a store, the certificate is indexed before anyone can hold it, so `cert revoke <serial>` can find it.
    const issued = config === undefined
      ? await issue()
      : await withStore(config, async (store) => {
          const cert = await issue();
          await recordIssued(store, cert, { clock: systemClock });
          return cert;
        });

    const written = await writeCertificateFiles(out, issued);
    io.out(JSON.stringify({ serial: issued.serial, spiffeId: issued.spiffeId, notAfter: issued.notAfter.toISOString(), out: written.dir, indexed: config !== undefined }));
    return 0;
  },
};

export const certRevokeCommand: Command = {
  name: ['cert', 'revoke'],
  summary: 'Revoke a certificate by serial: every replica refuses it at once (needs the store)',
  usage: `gatehouse cert revoke <serial> [--reason ${Object.keys(REVOCATION_REASONS).join('|')}] [--not-after 2026-01-02T00:00:00Z] [--config gatehouse.yaml]`,
  options: {
    ...configOption,
    reason: { type: 'string' },
    'not-after': { type: 'string' },
  },
  async run({ values, positionals }, io) {
    const serialText = positionals[0];
    if (positionals.length !== 1 || serialText === undefined) throw usage('expected one serial', this);
    const serial = canonicalSerial(serialText);
    if (serial === undefined) throw usage(`not a certificate serial (hex, at most 20 bytes): ${JSON.stringify(serialText.slice(0, 80))}`, this);
    const reasonText = str(values, 'reason') ?? 'unspecified';
    if (!Object.hasOwn(REVOCATION_REASONS, reasonText)) throw usage(`--reason must be one of ${Object.keys(REVOCATION_REASONS).join(', ')}`, this);
    const reason = reasonText as RevocationReason;
    const notAfterText = str(values, 'not-after');
    const given = notAfterText === undefined ? undefined : new Date(notAfterText);
    if (notAfterText !== undefined && (!/^\d{4}-\d{2}-\d{2}T/.test(notAfterText) || Number.isNaN(given?.getTime()))) {
      throw usage(`--not-after must be an ISO 8601 time like 2026-01-02T00:00:00Z, got ${JSON.stringify(notAfterText)}`, this);
    }

    const config = await loadConfig(String(values.config), io.env);
    const { result, via } = await runOp(config, 'cert.revoke', { serial, reason, ...(given !== undefined ? { notAfter: given.toISOString() } : {}) });
    io.out(JSON.stringify({ ...(result as object), via }));
    return 0;
  },
};
