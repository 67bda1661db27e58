// Store operations the CLI can run either directly on the store or, when a running gateway
// holds the embedded store, through that gateway's admin API. One implementation, two paths.
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';
import { applyPolicySources, type ApplyResult, type PolicySource } from '../authorize/index.js';
import { canonicalSerial, lookupIssued, revokeCertificate, REVOCATION_REASONS, type RevocationReason } from '../pki/index.js';

export interface PolicyApplyArgs {
  sources: PolicySource[];
}

export interface CertRevokeArgs {
  serial: string;
  reason: RevocationReason;
  /** ISO time; only ever lengthens what the issued index says. */
  notAfter?: string;
}

function bad(message: string): GatehouseError {
  return new GatehouseError('ERR_BAD_REQUEST', message);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export const STORE_OPS = {
  'policy.apply': {
    parse(args: unknown): PolicyApplyArgs {
      if (!isRecord(args) || !Array.isArray(args.sources) || args.sources.length > 1000) throw bad('sources must be a list');
      const sources = args.sources.map((s): PolicySource => {
        if (!isRecord(s) || typeof s.file !== 'string' || typeof s.text !== 'string' || s.text.length > 1_000_000) throw bad('each source needs file and text');
        return { file: s.file, text: s.text };
      });
      return { sources };
    },
    run(store: Store, args: PolicyApplyArgs): Promise<ApplyResult> {
      return applyPolicySources(store, args.sources);
    },
  },
  'cert.revoke': {
    parse(args: unknown): CertRevokeArgs {
      if (!isRecord(args) || typeof args.serial !== 'string') throw bad('serial is required');
      const serial = canonicalSerial(args.serial);
      if (serial === undefined) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', 'not a certificate serial');
      const reason = args.reason ?? 'unspecified';
      if (typeof reason !== 'string' || !Object.hasOwn(REVOCATION_REASONS, reason)) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', 'unknown reason');
      const out: CertRevokeArgs = { serial, reason: reason as RevocationReason };
      if (args.notAfter !== undefined) {
        if (typeof args.notAfter !== 'string' || Number.isNaN(Date.parse(args.notAfter))) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', 'notAfter must be an ISO time');
        out.notAfter = args.notAfter;
      }
      return out;
    },
    async run(store: Store, args: CertRevokeArgs, clock: Clock) {
      const issued = await lookupIssued(store, args.serial);
      // The index is authoritative when it knows the serial; notAfter only ever lengthens the record's life.
      const candidates = [issued?.notAfter, args.notAfter].filter((d): d is string => d !== undefined).map((d) => Date.parse(d));
      if (candidates.length === 0) {
        throw new GatehouseError('ERR_CERT_UNKNOWN_SERIAL', `${args.serial} is not in the issued index; pass --not-after with the certificate's expiry to revoke it anyway`);
      }
      const result = await revokeCertificate(store, { serial: args.serial, notAfter: new Date(Math.max(...candidates)), reason: args.reason, clock });
      return { ...result.record, created: result.created, recordExpiresAt: result.expiresAt.toISOString() };
    },
  },
} as const;

export type StoreOpName = keyof typeof STORE_OPS;

export function isStoreOpName(name: string): name is StoreOpName {
  return Object.hasOwn(STORE_OPS, name);
}

/** Validates the arguments and runs the operation on the store. */
export async function runStoreOp(name: StoreOpName, store: Store, args: unknown, clock: Clock): Promise<unknown> {
  switch (name) {
    case 'policy.apply':
      return STORE_OPS[name].run(store, STORE_OPS[name].parse(args));
    case 'cert.revoke':
      return STORE_OPS[name].run(store, STORE_OPS[name].parse(args), clock);
  }
}
