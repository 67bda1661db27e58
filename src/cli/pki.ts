// `gatehouse ca init`, `gatehouse cert issue`, `gatehouse cert revoke`.
import path from 'node:path';
import { loadConfig, type GatehouseConfig } from '../config/index.js';
import { GatehouseError } from '../errors.js';
import { systemClock } from '../lib/clock.js';
import { parseDuration } from '../lib/duration.js';
import {
  CA_FILES, REVOCATION_REASONS, canonicalSerial, initCa, isDnsLabel, isTrustDomain, issueCertificate, loadCa,
  writeCertificateFiles, type RevocationReason,
} from '../pki/index.js';
import { runOp } from './store-access.js';
import { configOption, str, usageError, type ArgValues, type Command } from './command.js';

/** --ttl and the config share one grammar (src/lib/duration.ts). */
export { parseDuration } from '../lib/duration.js';

/** The config when --config was given (ca init and cert issue work without one). */
async function givenConfig(values: ArgValues, env: Readonly<Record<string, string | undefined>>): Promise<GatehouseConfig | undefined> {
  const file = str(values.config);
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
    if (positionals.length > 0) throw usageError(this, `unexpected argument ${positionals[0]}`);
    const config = await givenConfig(values, io.env);
    const dir = str(values.dir) ?? config?.pki.dir ?? './certs';
    const trustDomain = str(values['trust-domain']) ?? config?.trustDomain;
    if (trustDomain === undefined) throw usageError(this, '--trust-domain is required (or --config naming trustDomain)');
    if (!isTrustDomain(trustDomain)) throw usageError(this, `--trust-domain must be a lowercase DNS name like example.org, got ${JSON.stringify(trustDomain)}`);
    const daysText = str(values['validity-days']);
    const validityDays = daysText === undefined ? 3650 : /^[1-9][0-9]{0,4}$/.test(daysText) ? Number(daysText) : NaN;
    if (Number.isNaN(validityDays) || validityDays > 36_500) throw usageError(this, `--validity-days must be a whole number from 1 to 36500, got ${JSON.stringify(daysText)}`);
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
    if (positionals.length > 0) throw usageError(this, `unexpected argument ${positionals[0]}`);
    const namespace = str(values.namespace);
    const service = str(values.service);
    const out = str(values.out);
    if (namespace === undefined || service === undefined || out === undefined) throw usageError(this, '--namespace, --service and --out are required');
    if (!isDnsLabel(namespace)) throw usageError(this, `--namespace must be a lowercase DNS label, got ${JSON.stringify(namespace)}`);
    if (!isDnsLabel(service)) throw usageError(this, `--service must be a lowercase DNS label, got ${JSON.stringify(service)}`);
    const ttlText = str(values.ttl) ?? '24h';
    const ttlMs = parseDuration(ttlText);
    if (ttlMs === undefined) throw usageError(this, `--ttl must be a duration like 90s, 15m, 24h or 7d, got ${JSON.stringify(ttlText)}`);

    const config = await givenConfig(values, io.env);
    const ca = await loadCa(str(values.dir) ?? config?.pki.dir ?? './certs');
    if (config !== undefined && config.trustDomain !== ca.trustDomain) {
      throw new GatehouseError('ERR_CONFIG_INVALID', `${config.source}: trustDomain ${config.trustDomain} differs from the CA's trust domain ${ca.trustDomain}`);
    }
    const now = systemClock.now();
    if (now + ttlMs > ca.notAfter.getTime()) {
      throw usageError(this, `--ttl ${ttlText} outlives the CA, which expires at ${ca.notAfter.toISOString()}`);
    }
    const issued = await issueCertificate(ca, { namespace, service, ttlMs, clock: systemClock });
    // With a store, the certificate is indexed (and the issue audited) before anyone can hold it,
    // so `cert revoke <serial>` can find it; only the certificate travels, never its key.
    if (config !== undefined) await runOp(config, 'cert.issue', { certPem: issued.certPem }, undefined, { env: io.env });

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
    if (positionals.length !== 1 || serialText === undefined) throw usageError(this, 'expected one serial');
    const serial = canonicalSerial(serialText);
    if (serial === undefined) throw usageError(this, `not a certificate serial (hex, at most 20 bytes): ${JSON.stringify(serialText.slice(0, 80))}`);
    const reasonText = str(values.reason) ?? 'unspecified';
    if (!Object.hasOwn(REVOCATION_REASONS, reasonText)) throw usageError(this, `--reason must be one of ${Object.keys(REVOCATION_REASONS).join(', ')}`);
    const reason = reasonText as RevocationReason;
    const notAfterText = str(values['not-after']);
    const given = notAfterText === undefined ? undefined : new Date(notAfterText);
    if (notAfterText !== undefined && (!/^\d{4}-\d{2}-\d{2}T/.test(notAfterText) || Number.isNaN(given?.getTime()))) {
      throw usageError(this, `--not-after must be an ISO 8601 time like 2026-01-02T00:00:00Z, got ${JSON.stringify(notAfterText)}`);
    }

    const config = await loadConfig(String(values.config), io.env);
    const { result, via } = await runOp(config, 'cert.revoke', { serial, reason, ...(given !== undefined ? { notAfter: given.toISOString() } : {}) }, undefined, { env: io.env });
    io.out(JSON.stringify({ ...(result as object), via }));
    return 0;
  },
};
