// Store operations the CLI can run either directly on the store or, when a running gateway
// holds the embedded store, through that gateway's admin API. One implementation, two paths,
// and one audit helper (runAuditedOp) both paths call: an operation that names its target is
// audited with who asked (actor), what it acted on and with which parameters, whichever path it
// took, under its own action from the closed list (src/contracts/audit.ts).
import { createHash, X509Certificate } from 'node:crypto';
import path from 'node:path';
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { Type, bodyReader } from '../lib/schema.js';
import type { Store } from '../store/index.js';
import { operatorEvent, type Actor, type AuditEvent, type AuditSink, type OperatorAction, type OperatorChannel, type OperatorTarget } from '../contracts/audit.js';
import { applyPolicySources, type ApplyResult, type PolicySource } from '../authorize/index.js';
import { canonicalSerial, isTrustDomain, lookupIssued, recordIssued, revokeCertificate, spiffeIdOfSubjectAltName, REVOCATION_REASONS, type RevocationReason } from '../pki/index.js';
import type { Bus } from '../bus/index.js';
import {
  checkRevocationTarget, isRevocationKind, liftRevocation, liftTarget, listRevocations, parseLiftRequest, parseRevokeRequest, revoke, revokeTarget, type LiftRequest, type RevocationKind, type RevokeRequest,
} from '../revocation/index.js';
import {
  addRoles, addUser, assertUserId, assignToken, changeRoles, deleteUser, disableUser, enableUser, importTokens, issueEnrollment, listAuthenticators, listUsers, parseRoles,
  removeCredential, removeRoles, unassignToken, type SealedImport,
} from '../authenticate/index.js';

export type { Actor } from '../contracts/audit.js';

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
  totpUnassign: bodyReader(Type.Object({ serial: TOTP_SERIAL })),
  keyRemove: bodyReader(Type.Object({ id: Type.String(), credential: Type.String({ pattern: '^[A-Za-z0-9_-]{1,1364}$', hint: 'a credential id (base64url) or its start' }) })),
  userRoles: bodyReader(Type.Object({ id: Type.String(), change: Type.Union([Type.Literal('add'), Type.Literal('remove'), Type.Literal('set')]), roles: Type.Array(Type.String(), { maxItems: 100 }) })),
  certIssue: bodyReader(Type.Object({ certPem: Type.String({ maxLength: 16_384, pattern: '^-----BEGIN CERTIFICATE-----', hint: 'a PEM certificate' }) })),
  revokeList: bodyReader(Type.Object({ kind: Type.Optional(Type.String()) })),
  storeCompact: bodyReader(Type.Object({ revision: Type.Integer({ minimum: 1 }) })),
};

/** What an audited operation acted on: the person (the event's user.id), a readable name, its parameters. */
export type OpTarget = OperatorTarget;

/** What parse may use besides the arguments: who asked, and this gateway's trust domain. */
export interface ParseContext {
  by: string;
  trustDomain?: string | undefined;
}

/**
 * One operation: parse checks what arrived (from the CLI or over HTTP), run applies it, target
 * (for audited operations) names what it acted on, from the arguments and, after a success,
 * its result. action is its event's, from the closed list.
 */
interface StoreOp<A> {
  action: OperatorAction;
  parse(args: unknown, pc: ParseContext): A;
  run(store: Store, args: A, clock: Clock, ctx: OpContext): Promise<unknown>;
  target?(args: A, result?: unknown): OpTarget;
}

/** `sessionsEnded` of a result, for the event. */
const ended = (result: unknown): Partial<AuditEvent> =>
  typeof (result as { sessionsEnded?: unknown } | undefined)?.sessionsEnded === 'number' ? { 'gatehouse.sessions_ended': (result as { sessionsEnded: number }).sessionsEnded } : {};
const person = (id: string): OpTarget => ({ user: id, target: `user:${id}` });

/** Infers A from parse, so run's arguments are typed. */
function op<A>(o: StoreOp<A>): StoreOp<A> {
  return o;
}

const STORE_OPS = {
  'policy.apply': op({
    action: 'admin.policy.apply',
    parse(args: unknown): PolicyApplyArgs {
      return { sources: ARGS.policyApply.read(args).sources.map((s): PolicySource => ({ file: s.file, text: s.text })) };
    },
    run(store: Store, args: PolicyApplyArgs): Promise<ApplyResult> {
      return applyPolicySources(store, args.sources);
    },
    target: (args: PolicyApplyArgs, result?: unknown) => {
      const r = result as ApplyResult | undefined;
      return {
        target: `policy:${args.sources.length} file(s)`,
        fields: {
          // which texts, by name and hash: the policies themselves are in the store, at the version below
          'gatehouse.policy_files': args.sources.slice(0, 100).map((s) => `${path.basename(s.file)}@${sha256(s.text).slice(0, 12)}`),
          ...(r !== undefined ? { 'gatehouse.policy_version': r.revision, 'gatehouse.policy_written': r.written, 'gatehouse.policy_deleted': r.deleted, 'gatehouse.policy_unchanged': r.unchanged } : {}),
        },
      };
    },
  }),
  'cert.issue': op({
    action: 'admin.cert.issue',
    parse(input: unknown): IssuedCertArgs {
      // the CLI signs with the CA and keeps the key; the index (and the event) learn only what the certificate says
      const { certPem } = ARGS.certIssue.read(input);
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(certPem);
      } catch (cause) {
        throw new GatehouseError('ERR_BAD_REQUEST', 'certPem is not a certificate', { cause });
      }
      const serial = canonicalSerial(cert.serialNumber);
      const spiffeId = spiffeIdOfSubjectAltName(cert.subjectAltName);
      if (serial === undefined || spiffeId === undefined) throw new GatehouseError('ERR_BAD_REQUEST', 'certPem is not a Gatehouse service certificate (serial and SPIFFE ID)');
      return { certPem, serial, spiffeId, notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
    },
    async run(store: Store, args: IssuedCertArgs, clock: Clock) {
      // recordIssued reads the serial, SPIFFE ID and validity only; the private key never leaves the CLI
      const r = await recordIssued(store, { ...args, keyPem: '', caPem: '' }, { clock });
      return { ...r, indexed: true };
    },
    target: (args: IssuedCertArgs) => ({
      target: `cert:${args.serial}`,
      fields: { 'gatehouse.cert_serial': args.serial, 'gatehouse.spiffe_id': args.spiffeId, 'gatehouse.not_after': args.notAfter.toISOString() },
    }),
  }),
  'cert.revoke': op({
    action: 'admin.cert.revoke',
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
    target: (args: CertRevokeArgs, result?: unknown) => {
      const created = (result as { created?: unknown } | undefined)?.created;
      return {
        target: `cert:${args.serial}`,
        fields: {
          'gatehouse.cert_serial': args.serial,
          'gatehouse.revocation_reason': args.reason,
          ...(args.notAfter !== undefined ? { 'gatehouse.not_after': args.notAfter } : {}),
          ...(typeof created === 'boolean' ? { 'gatehouse.revocation_created': created } : {}),
        },
      };
    },
  }),
  'user.add': op({
    action: 'admin.user.add',
    parse(input: unknown): { id: string; roles: string[]; enrollmentTtlMs: number } {
      const args = ARGS.userAdd.read(input);
      return { id: assertUserId(args.id), roles: args.roles, enrollmentTtlMs: args.enrollmentTtlMs };
    },
    async run(store: Store, args: { id: string; roles: string[]; enrollmentTtlMs: number }, clock: Clock) {
      const { user, enrollment } = await addUser(store, { id: args.id, roles: parseRoles(args.roles), enrollmentTtlMs: args.enrollmentTtlMs }, clock);
      return { user, token: enrollment.token, expiresAt: new Date(enrollment.expiresAt).toISOString() };
    },
    target: (args: { id: string; roles: string[] }) => ({ ...person(args.id), fields: { 'gatehouse.roles': args.roles } }),
  }),
  'user.enroll': op({
    action: 'admin.user.enroll',
    parse(input: unknown): { id: string; enrollmentTtlMs: number } {
      const args = ARGS.userEnroll.read(input);
      return { id: assertUserId(args.id), enrollmentTtlMs: args.enrollmentTtlMs };
    },
    async run(store: Store, args: { id: string; enrollmentTtlMs: number }, clock: Clock) {
      // the new link voids every older one of this user
      const enrollment = await issueEnrollment(store, args.id, { clock, ttlMs: args.enrollmentTtlMs });
      return { user: args.id, token: enrollment.token, expiresAt: new Date(enrollment.expiresAt).toISOString() };
    },
    target: (args: { id: string }) => person(args.id),
  }),
  'user.list': op({
    action: 'admin.user.list',
    parse(): Record<string, never> {
      return {};
    },
    async run(store: Store) {
      return { users: await listUsers(store) };
    },
  }),
  'user.disable': op({
    action: 'admin.user.disable',
    parse(args: unknown): { id: string } {
      return { id: assertUserId(ARGS.user.read(args).id) };
    },
    run(store: Store, args: { id: string }, clock: Clock) {
      return disableUser(store, args.id, clock);
    },
    target: (args: { id: string }, result?: unknown) => ({ ...person(args.id), fields: ended(result) }),
  }),
  'user.enable': op({
    action: 'admin.user.enable',
    parse(args: unknown): { id: string } {
      return { id: assertUserId(ARGS.user.read(args).id) };
    },
    run(store: Store, args: { id: string }, clock: Clock) {
      return enableUser(store, args.id, clock);
    },
    target: (args: { id: string }) => person(args.id),
  }),
  'user.delete': op({
    action: 'admin.user.delete',
    parse(args: unknown): { id: string } {
      return { id: assertUserId(ARGS.user.read(args).id) };
    },
    run(store: Store, args: { id: string }) {
      return deleteUser(store, args.id);
    },
    target: (args: { id: string }, result?: unknown) => ({ ...person(args.id), fields: ended(result) }),
  }),
  'user.roles': op({
    action: 'admin.user.roles',
    parse(input: unknown): { id: string; change: 'add' | 'remove' | 'set'; roles: string[] } {
      const args = ARGS.userRoles.read(input);
      parseRoles(args.roles);
      return { id: assertUserId(args.id), change: args.change, roles: args.roles };
    },
    run(store: Store, args: { id: string; change: 'add' | 'remove' | 'set'; roles: string[] }) {
      const given = parseRoles(args.roles);
      return changeRoles(store, args.id, (roles) => (args.change === 'add' ? addRoles(roles, given) : args.change === 'remove' ? removeRoles(roles, given) : given));
    },
    target: (args: { id: string; change: string; roles: string[] }, result?: unknown) => ({ ...person(args.id), fields: { 'gatehouse.roles_change': args.change, 'gatehouse.roles': args.roles, ...ended(result) } }),
  }),
  'user.keys': op({
    action: 'admin.user.keys',
    parse(args: unknown): { id: string } {
      return { id: assertUserId(ARGS.user.read(args).id) };
    },
    run(store: Store, args: { id: string }) {
      return listAuthenticators(store, args.id);
    },
    target: (args: { id: string }) => person(args.id),
  }),
  'user.key.remove': op({
    action: 'admin.user.key.remove',
    parse(input: unknown): { id: string; credential: string } {
      const args = ARGS.keyRemove.read(input);
      return { id: assertUserId(args.id), credential: args.credential };
    },
    run(store: Store, args: { id: string; credential: string }) {
      return removeCredential(store, args.id, args.credential);
    },
    target: (args: { id: string; credential: string }, result?: unknown) => {
      const id = (result as { credentialId?: string } | undefined)?.credentialId ?? args.credential;
      return { user: args.id, target: `user:${args.id} credential:${id}`, fields: { 'gatehouse.credential_id': id, ...ended(result) } };
    },
  }),
  'totp.import': op({
    action: 'admin.totp.import',
    parse(args: unknown): { tokens: SealedImport[] } {
      return { tokens: ARGS.totpImport.read(args).tokens.map((t): SealedImport => ({ serial: t.serial, sealedSeed: t.sealedSeed, digits: t.digits, period: t.period, algorithm: t.algorithm })) };
    },
    run(store: Store, args: { tokens: SealedImport[] }, clock: Clock) {
      return importTokens(store, args.tokens, clock);
    },
    target: (args: { tokens: SealedImport[] }) => ({ target: `totp:${args.tokens.length} token(s)`, fields: { 'gatehouse.totp_serials': args.tokens.slice(0, 100).map((t) => t.serial) } }),
  }),
  'totp.assign': op({
    action: 'admin.totp.assign',
    parse(input: unknown): { serial: string; user: string } {
      const args = ARGS.totpAssign.read(input);
      return { serial: args.serial, user: assertUserId(args.user) };
    },
    async run(store: Store, args: { serial: string; user: string }, clock: Clock) {
      const r = await assignToken(store, args.serial, args.user, clock);
      return { serial: r.serial, user: r.userId };
    },
    target: (args: { serial: string; user: string }) => ({ user: args.user, target: `user:${args.user} totp:${args.serial}`, fields: { 'gatehouse.totp_serial': args.serial } }),
  }),
  'totp.unassign': op({
    action: 'admin.totp.unassign',
    parse(input: unknown): { serial: string } {
      return { serial: ARGS.totpUnassign.read(input).serial };
    },
    run(store: Store, args: { serial: string }) {
      return unassignToken(store, args.serial);
    },
    target: (args: { serial: string }, result?: unknown) => {
      const user = (result as { user?: string } | undefined)?.user;
      return { ...(user !== undefined ? { user } : {}), target: `${user !== undefined ? `user:${user} ` : ''}totp:${args.serial}`, fields: { 'gatehouse.totp_serial': args.serial, ...ended(result) } };
    },
  }),
  'revoke': op({
    action: 'admin.revoke',
    parse(input: unknown, pc: ParseContext): RevokeOpArgs {
      return { ...parseRevokeRequest(input, pc.by), trustDomain: pc.trustDomain ?? trustDomainArg(input) };
    },
    async run(store: Store, args: RevokeOpArgs, clock: Clock, ctx: OpContext) {
      const check = await checkRevocationTarget(store, args.kind, args.id, { trustDomain: args.trustDomain, force: args.force });
      const { trustDomain: _td, ...request } = args;
      const r = await revoke(store, ctx.bus, request, clock);
      return { ...r.record, created: r.created, key: r.key, published: r.published, sessionsEnded: r.sessionsEnded, ...(check.skipped !== undefined ? { forced: check.skipped } : {}) };
    },
    target: (args: RevokeOpArgs, result?: unknown) => {
      const r = result as { created?: boolean; sessionsEnded?: number; subject?: string; forced?: string } | undefined;
      return revokeTarget(args, r === undefined ? undefined : { created: r.created, sessionsEnded: r.sessionsEnded, subject: r.subject, forced: r.forced });
    },
  }),
  'revoke.lift': op({
    action: 'admin.revoke.lift',
    parse(input: unknown, pc: ParseContext): LiftRequest {
      return parseLiftRequest(input, pc.by);
    },
    async run(store: Store, args: LiftRequest, clock: Clock, ctx: OpContext) {
      const r = await liftRevocation(store, ctx.bus, args, clock);
      return { ...r.lifted, lifted: true, key: r.key, published: r.published };
    },
    target: (args: LiftRequest, result?: unknown) => liftTarget(args, result as { revokedAt: string; by: string; subject?: string } | undefined),
  }),
  'revoke.list': op({
    action: 'admin.revoke.list',
    parse(input: unknown): { kind?: RevocationKind } {
      const { kind } = ARGS.revokeList.read(input);
      if (kind === undefined) return {};
      if (!isRevocationKind(kind)) throw new GatehouseError('ERR_REVOCATION_INVALID', 'kind must be session, user, token, cert or service');
      return { kind };
    },
    run(store: Store, args: { kind?: RevocationKind }, clock: Clock) {
      return listRevocations(store, { kind: args.kind, now: clock.now() });
    },
  }),
  'store.compact': op({
    action: 'admin.store.compact',
    parse(input: unknown): { revision: number } {
      return ARGS.storeCompact.read(input);
    },
    async run(store: Store, args: { revision: number }) {
      await store.compact(args.revision);
      return { compacted: args.revision };
    },
    target: (args: { revision: number }) => ({ target: 'store', fields: { 'gatehouse.store_revision': args.revision } }),
  }),
};

/** A revocation as the operation runs it: the request, and the trust domain its service IDs must name. */
type RevokeOpArgs = RevokeRequest & { trustDomain?: string | undefined };

interface IssuedCertArgs {
  certPem: string;
  serial: string;
  spiffeId: string;
  notBefore: Date;
  notAfter: Date;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * The trust domain the CLI names (its config's) when the gateway it reaches knows none: whoever
 * holds the local API's token acts on the store anyway, so it is taken as given.
 */
function trustDomainArg(input: unknown): string | undefined {
  const td = (input as { trustDomain?: unknown } | null)?.trustDomain;
  if (td === undefined) return undefined;
  if (typeof td !== 'string' || !isTrustDomain(td)) throw new GatehouseError('ERR_REVOCATION_INVALID', 'trustDomain must be a lowercase DNS name');
  return td;
}

/** What an operation may use besides the store: the bus (revocation broadcasts), who asked, this gateway's trust domain. */
export interface OpContext {
  bus?: Bus | undefined;
  by?: string;
  /** A service revocation must name it unless forced (undefined: the CLI's `trustDomain` argument, else the form alone). */
  trustDomain?: string | undefined;
}

export type StoreOpName = keyof typeof STORE_OPS;

export function isStoreOpName(name: string): name is StoreOpName {
  return Object.hasOwn(STORE_OPS, name);
}

/** The event.action of an operation. */
export function opAction(name: StoreOpName): OperatorAction {
  return (STORE_OPS[name] as StoreOp<unknown>).action;
}

const parseContext = (ctx: OpContext, by: string): ParseContext => ({ by: ctx.by ?? by, trustDomain: ctx.trustDomain });

/** Validates the arguments and runs the operation on the store. */
export async function runStoreOp(name: StoreOpName, store: Store, args: unknown, clock: Clock, ctx: OpContext = {}): Promise<unknown> {
  const o: StoreOp<unknown> = STORE_OPS[name];
  return o.run(store, o.parse(args, parseContext(ctx, 'cli')), clock, ctx);
}

export interface AuditedOpContext extends OpContext {
  actor: Actor;
  /** Where the event goes: the gateway's writer (local API), or one opened for a CLI command. */
  audit: AuditSink;
  /** How the operation arrived: straight on the store (CLI), or through the gateway's local API. */
  channel: OperatorChannel;
  sourceIp?: string;
  requestId?: string;
}

/** Whether the operation is audited on the CLI's direct path: every change is; reads (user list, revoke list) are not. */
export function isAuditedOp(name: StoreOpName): boolean {
  return (STORE_OPS[name] as StoreOp<unknown>).target !== undefined;
}

/**
 * Runs an operation and appends exactly one event for it (its action, success or failure) with
 * the actor and, once the arguments parsed, the target and parameters. Both the CLI (on its own
 * writer) and the gateway's local API call this.
 */
export async function runAuditedOp(name: StoreOpName, store: Store, args: unknown, clock: Clock, ctx: AuditedOpContext): Promise<unknown> {
  const o: StoreOp<unknown> = STORE_OPS[name];
  let parsed: { args: unknown } | undefined;
  const append = (outcome: 'success' | 'failure', target: OpTarget | undefined, error?: { code: string; message: string }): void =>
    ctx.audit.append(operatorEvent({ at: clock.now(), action: o.action, outcome, actor: ctx.actor, channel: ctx.channel, sourceIp: ctx.sourceIp, requestId: ctx.requestId, target, error }));
  try {
    parsed = { args: o.parse(args, parseContext(ctx, ctx.actor.id)) };
    const result = await o.run(store, parsed.args, clock, ctx);
    append('success', o.target?.(parsed.args, result));
    return result;
  } catch (err) {
    const error = err instanceof GatehouseError ? { code: err.code, message: err.message } : { code: 'ERR_INTERNAL', message: 'internal error' };
    append('failure', parsed === undefined ? undefined : o.target?.(parsed.args), error);
    throw err;
  }
}
