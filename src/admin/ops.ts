// Store operations the CLI can run either directly on the store or, when a running gateway
// holds the embedded store, through that gateway's admin API. One implementation, two paths.
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { Type, bodyReader } from '../lib/schema.js';
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

// The arguments of each operation (from the CLI, or as the local API's JSON body): their shape
// is a schema (a 400 naming the field); what they mean is checked by the part that owns it.
const ENROLLMENT_TTL_MS = Type.Integer({ minimum: 60_000, maximum: 30 * 86_400_000 });
const TOTP_SERIAL = Type.String({ pattern: '^[A-Za-z0-9._:-]{1,64}$', hint: 'an OTP token serial' });
const ARGS = {
  policyApply: bodyReader(Type.Object({ sources: Type.Array(Type.Object({ file: Type.String(), text: Type.String({ maxLength: 1_000_000 }) }), { maxItems: 1000 }) })),
  certRevoke: bodyReader(Type.Object({ serial: Type.String(), reason: Type.Optional(Type.String()), notAfter: Type.Optional(Type.String()) })),
  userAdd: bodyReader(Type.Object({ id: Type.String(), roles: Type.Array(Type.String(), { maxItems: 100 }), enrollmentTtlMs: ENROLLMENT_TTL_MS })),
  userEnroll: bodyReader(Type.Object({ id: Type.String(), enrollmentTtlMs: ENROLLMENT_TTL_MS })),
  user: bodyReader(Type.Object({ id: Type.String() })),
  totpImport: bodyReader(Type.Object({
    tokens: Type.Array(Type.Object({
      serial: TOTP_SERIAL,
      sealedSeed: Type.String({ pattern: '^v1\\.', hint: 'a sealed seed (v1.…)' }),
      digits: Type.Union([Type.Literal(6), Type.Literal(8)]),
      period: Type.Union([Type.Literal(30), Type.Literal(60)]),
      algorithm: Type.Union([Type.Literal('sha1'), Type.Literal('sha256'), Type.Literal('sha512')]),
    }), { maxItems: 100_000 }),
  })),
  totpAssign: bodyReader(Type.Object({ serial: TOTP_SERIAL, user: Type.String() })),
};

/** One operation: parse checks what arrived (from the CLI or over HTTP), run applies it. */
interface StoreOp<A> {
  parse(args: unknown, by: string): A;
  run(store: Store, args: A, clock: Clock, ctx: OpContext): Promise<unknown>;
}

/** Infers A from parse, so run's arguments are typed. */
function op<A>(o: StoreOp<A>): StoreOp<A> {
  return o;
}

const STORE_OPS = {
  'policy.apply': op({
    parse(args: unknown): PolicyApplyArgs {
      return { sources: ARGS.policyApply.read(args).sources.map((s): PolicySource => ({ file: s.file, text: s.text })) };
    },
    run(store: Store, args: PolicyApplyArgs): Promise<ApplyResult> {
      return applyPolicySources(store, args.sources);
    },
  }),
  'cert.revoke': op({
    parse(input: unknown): CertRevokeArgs {
      const args = ARGS.certRevoke.read(input);
      const serial = canonicalSerial(args.serial);
      if (serial === undefined) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', 'not a certificate serial');
      const reason = args.reason ?? 'unspecified';
      if (!Object.hasOwn(REVOCATION_REASONS, reason)) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', 'unknown reason');
      const out: CertRevokeArgs = { serial, reason: reason as RevocationReason };
      if (args.notAfter !== undefined) {
        if (Number.isNaN(Date.parse(args.notAfter))) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', 'notAfter must be an ISO time');
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
    parse(input: unknown): { id: string; roles: string[]; enrollmentTtlMs: number } {
      const args = ARGS.userAdd.read(input);
      return { id: assertUserId(args.id), roles: args.roles, enrollmentTtlMs: args.enrollmentTtlMs };
    },
    async run(store: Store, args: { id: string; roles: string[]; enrollmentTtlMs: number }, clock: Clock) {
      const { user, enrollment } = await addUser(store, { id: args.id, roles: parseRoles(args.roles), enrollmentTtlMs: args.enrollmentTtlMs }, clock);
      return { user, token: enrollment.token, expiresAt: new Date(enrollment.expiresAt).toISOString() };
    },
  }),
  'user.enroll': op({
    parse(input: unknown): { id: string; enrollmentTtlMs: number } {
      const args = ARGS.userEnroll.read(input);
      return { id: assertUserId(args.id), enrollmentTtlMs: args.enrollmentTtlMs };
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
      return { id: assertUserId(ARGS.user.read(args).id) };
    },
    run(store: Store, args: { id: string }, clock: Clock) {
      return disableUser(store, args.id, clock);
    },
  }),
  'totp.import': op({
    parse(args: unknown): { tokens: SealedImport[] } {
      return { tokens: ARGS.totpImport.read(args).tokens.map((t): SealedImport => ({ serial: t.serial, sealedSeed: t.sealedSeed, digits: t.digits, period: t.period, algorithm: t.algorithm })) };
    },
    run(store: Store, args: { tokens: SealedImport[] }, clock: Clock) {
      return importTokens(store, args.tokens, clock);
    },
  }),
  'totp.assign': op({
    parse(input: unknown): { serial: string; user: string } {
      const args = ARGS.totpAssign.read(input);
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

export type StoreOpName = keyof typeof STORE_OPS;

export function isStoreOpName(name: string): name is StoreOpName {
  return Object.hasOwn(STORE_OPS, name);
}

/** Validates the arguments and runs the operation on the store. */
export async function runStoreOp(name: StoreOpName, store: Store, args: unknown, clock: Clock, ctx: OpContext = {}): Promise<unknown> {
  const o: StoreOp<unknown> = STORE_OPS[name];
  return o.run(store, o.parse(args, ctx.by ?? 'cli'), clock, ctx);
}
