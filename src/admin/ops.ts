// Store operations the CLI can run either directly on the store or, when a running gateway
// holds the embedded store, through that gateway's admin API. One implementation, two paths.
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';
import { applyPolicySources, type ApplyResult, type PolicySource } from '../authorize/index.js';
import { canonicalSerial, lookupIssued, revokeCertificate, REVOCATION_REASONS, type RevocationReason } from '../pki/index.js';
import type { Bus } from '../bus/index.js';
import { parseRevokeRequest, revoke, type RevokeRequest } from '../revocation/index.js';
import { addUser, assertUserId, assignToken, disableUser, importTokens, issueEnrollment, listUsers, parseRoles, getUser, type SealedImport } from '../authenticate/index.js';

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

/** One operation: parse checks what arrived (from the CLI or over HTTP), run applies it. */
interface StoreOp<A> {
  parse(args: unknown, by: string): A;
  run(store: Store, args: A, clock: Clock, ctx: OpContext): Promise<unknown>;
}

/** Infers A from parse, so run's arguments are typed. */
function op<A>(o: StoreOp<A>): StoreOp<A> {
  return o;
}

const SERIAL = /^[A-Za-z0-9._:-]{1,64}$/;

const STORE_OPS = {
  'policy.apply': op({
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
  }),
  'cert.revoke': op({
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
  }),
  'user.add': op({
    parse(args: unknown): { id: string; roles: string[]; enrollmentTtlMs: number } {
      if (!isRecord(args) || !Array.isArray(args.roles) || args.roles.length > 100 || !args.roles.every((r) => typeof r === 'string')) throw bad('id and roles are required');
      return { id: assertUserId(args.id), roles: args.roles, enrollmentTtlMs: ttl(args.enrollmentTtlMs) };
    },
    async run(store: Store, args: { id: string; roles: string[]; enrollmentTtlMs: number }, clock: Clock) {
      const { user, enrollment } = await addUser(store, { id: args.id, roles: parseRoles(args.roles), enrollmentTtlMs: args.enrollmentTtlMs }, clock);
      return { user, token: enrollment.token, expiresAt: new Date(enrollment.expiresAt).toISOString() };
    },
  }),
  'user.enroll': op({
    parse(args: unknown): { id: string; enrollmentTtlMs: number } {
      if (!isRecord(args)) throw bad('id is required');
      return { id: assertUserId(args.id), enrollmentTtlMs: ttl(args.enrollmentTtlMs) };
    },
    async run(store: Store, args: { id: string; enrollmentTtlMs: number }, clock: Clock) {
      const user = await getUser(store, args.id);
      if (user === undefined) throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${args.id}`);
      if (user.status === 'disabled') throw new GatehouseError('ERR_USER_DISABLED', `${args.id} is disabled`);
      const enrollment = await issueEnrollment(store, args.id, { clock, ttlMs: args.enrollmentTtlMs });
      return { user, token: enrollment.token, expiresAt: new Date(enrollment.expiresAt).toISOString() };
    },
  }),
  'user.list': op({
    parse(): Record<string, never> {
      return {};
    },
    async run(store: Store) {
      return { users: await listUsers(store) };
    },
  }),
  'user.disable': op({
    parse(args: unknown): { id: string } {
      if (!isRecord(args)) throw bad('id is required');
      return { id: assertUserId(args.id) };
    },
    run(store: Store, args: { id: string }, clock: Clock) {
      return disableUser(store, args.id, clock);
    },
  }),
  'totp.import': op({
    parse(args: unknown): { tokens: SealedImport[] } {
      if (!isRecord(args) || !Array.isArray(args.tokens) || args.tokens.length > 100_000) throw bad('tokens must be a list');
      const tokens = args.tokens.map((t): SealedImport => {
        if (!isRecord(t) || typeof t.serial !== 'string' || !SERIAL.test(t.serial) || typeof t.sealedSeed !== 'string' || !t.sealedSeed.startsWith('v1.')) throw bad('each token needs serial and sealedSeed');
        if ((t.digits !== 6 && t.digits !== 8) || (t.period !== 30 && t.period !== 60) || !['sha1', 'sha256', 'sha512'].includes(String(t.algorithm))) throw bad('digits 6|8, period 30|60, algorithm sha1|sha256|sha512');
        return { serial: t.serial, sealedSeed: t.sealedSeed, digits: t.digits, period: t.period, algorithm: t.algorithm as SealedImport['algorithm'] };
      });
      return { tokens };
    },
    run(store: Store, args: { tokens: SealedImport[] }, clock: Clock) {
      return importTokens(store, args.tokens, clock);
    },
  }),
  'totp.assign': op({
    parse(args: unknown): { serial: string; user: string } {
      if (!isRecord(args) || typeof args.serial !== 'string' || !SERIAL.test(args.serial)) throw bad('serial is required');
      return { serial: args.serial, user: assertUserId(args.user) };
    },
    async run(store: Store, args: { serial: string; user: string }, clock: Clock) {
      const r = await assignToken(store, args.serial, args.user, clock);
      return { serial: r.serial, user: r.userId };
    },
  }),
  'revoke': op({
    parse(args: unknown, by: string): RevokeRequest {
      return parseRevokeRequest(args, by);
    },
    async run(store: Store, args: RevokeRequest, clock: Clock, ctx: OpContext) {
      const r = await revoke(store, ctx.bus, args, clock);
      return { ...r.record, created: r.created, key: r.key, published: r.published, sessionsEnded: r.sessionsEnded };
    },
  }),
};

/** What an operation may use besides the store: the bus (revocation broadcasts) and who asked. */
export interface OpContext {
  bus?: Bus | undefined;
  by?: string;
}

function ttl(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 60_000 || v > 30 * 86_400_000) throw bad('enrollmentTtlMs must be 1 minute to 30 days in ms');
  return v;
}

export type StoreOpName = keyof typeof STORE_OPS;

export function isStoreOpName(name: string): name is StoreOpName {
  return Object.hasOwn(STORE_OPS, name);
}

/** Validates the arguments and runs the operation on the store. */
export async function runStoreOp(name: StoreOpName, store: Store, args: unknown, clock: Clock, ctx: OpContext = {}): Promise<unknown> {
  const o: StoreOp<unknown> = STORE_OPS[name];
  return o.run(store, o.parse(args, ctx.by ?? 'cli'), clock, ctx);
}
