// Store operations the CLI can run either directly on the store or, when a running gateway
// holds the embedded store, through that gateway's admin API. One implementation, two paths,
// and one audit helper (runAuditedOp) both paths call: an operation that names its target is
// audited with who asked (actor) and what it acted on, whichever path it took.
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { Type, bodyReader } from '../lib/schema.js';
import type { Store } from '../store/index.js';
import type { AuditEvent, AuditSink } from '../contracts/audit.js';
import { applyPolicySources, type ApplyResult, type PolicySource } from '../authorize/index.js';
import { canonicalSerial, lookupIssued, revokeCertificate, REVOCATION_REASONS, type RevocationReason } from '../pki/index.js';
import type { Bus } from '../bus/index.js';
import { parseRevokeRequest, revoke, type RevokeRequest } from '../revocation/index.js';
import {
  addRoles, addUser, assertUserId, assignToken, changeRoles, deleteUser, disableUser, enableUser, importTokens, issueEnrollment, listAuthenticators, listUsers, parseRoles,
  removeCredential, removeRoles, unassignToken, type SealedImport,
} from '../authenticate/index.js';

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
};

/** What an audited operation acted on: the person (the event's user.id) and a readable name. */
export interface OpTarget {
  user?: string;
  target: string;
  /** More about it (credential id, serial, roles, sessions ended). */
  fields?: Partial<AuditEvent>;
}

/**
 * One operation: parse checks what arrived (from the CLI or over HTTP), run applies it, target
 * (for audited operations) names what it acted on, from the arguments and, after a success,
 * its result.
 */
interface StoreOp<A> {
  parse(args: unknown, by: string): A;
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
    target: (args: { id: string; roles: string[] }) => ({ ...person(args.id), fields: { 'gatehouse.roles': args.roles } }),
  }),
  'user.enroll': op({
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
    target: (args: { id: string }, result?: unknown) => ({ ...person(args.id), fields: ended(result) }),
  }),
  'user.enable': op({
    parse(args: unknown): { id: string } {
      return { id: assertUserId(ARGS.user.read(args).id) };
    },
    run(store: Store, args: { id: string }, clock: Clock) {
      return enableUser(store, args.id, clock);
    },
    target: (args: { id: string }) => person(args.id),
  }),
  'user.delete': op({
    parse(args: unknown): { id: string } {
      return { id: assertUserId(ARGS.user.read(args).id) };
    },
    run(store: Store, args: { id: string }) {
      return deleteUser(store, args.id);
    },
    target: (args: { id: string }, result?: unknown) => ({ ...person(args.id), fields: ended(result) }),
  }),
  'user.roles': op({
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
    parse(args: unknown): { id: string } {
      return { id: assertUserId(ARGS.user.read(args).id) };
    },
    run(store: Store, args: { id: string }) {
      return listAuthenticators(store, args.id);
    },
    target: (args: { id: string }) => person(args.id),
  }),
  'user.key.remove': op({
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
    parse(args: unknown): { tokens: SealedImport[] } {
      return { tokens: ARGS.totpImport.read(args).tokens.map((t): SealedImport => ({ serial: t.serial, sealedSeed: t.sealedSeed, digits: t.digits, period: t.period, algorithm: t.algorithm })) };
    },
    run(store: Store, args: { tokens: SealedImport[] }, clock: Clock) {
      return importTokens(store, args.tokens, clock);
    },
    target: (args: { tokens: SealedImport[] }) => ({ target: `totp:${args.tokens.length} token(s)`, fields: { 'gatehouse.totp_serials': args.tokens.slice(0, 100).map((t) => t.serial) } }),
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
    target: (args: { serial: string; user: string }) => ({ user: args.user, target: `user:${args.user} totp:${args.serial}`, fields: { 'gatehouse.totp_serial': args.serial } }),
  }),
  'totp.unassign': op({
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

/** Who asked for an operator action. */
export interface Actor {
  /** cli: an OS user on a host (`alice@bastion-1`); session: a signed-in person (their user id). */
  kind: 'cli' | 'session';
  id: string;
  /** A session's public sid. */
  sid?: string;
}

export interface AuditedOpContext extends OpContext {
  actor: Actor;
  /** Where the event goes: the gateway's writer (local API), or one opened for a CLI command. */
  audit: AuditSink;
  /** How the operation arrived: straight on the store (CLI), or through the gateway's local API. */
  channel: 'store' | 'local-api' | 'admin-api';
  sourceIp?: string;
  requestId?: string;
}

/** Whether the operation is audited with its target (operations that do not name one yet are audited by the local API only). */
export function isAuditedOp(name: StoreOpName): boolean {
  return (STORE_OPS[name] as StoreOp<unknown>).target !== undefined;
}

/**
 * Runs an operation and appends exactly one event for it (`admin.<name>`, success or failure)
 * with the actor and, once the arguments parsed, the target. Both the CLI (on its own writer)
 * and the gateway's local API call this.
 */
export async function runAuditedOp(name: StoreOpName, store: Store, args: unknown, clock: Clock, ctx: AuditedOpContext): Promise<unknown> {
  const o: StoreOp<unknown> = STORE_OPS[name];
  let parsed: { args: unknown } | undefined;
  const event = (outcome: 'success' | 'failure', target: OpTarget | undefined, extra: Partial<AuditEvent>): AuditEvent => ({
    '@timestamp': new Date(clock.now()).toISOString(),
    'event.action': `admin.${name}`.slice(0, 64),
    'event.outcome': outcome,
    'gatehouse.actor': ctx.actor.id,
    'gatehouse.actor_kind': ctx.actor.kind,
    ...(ctx.actor.sid !== undefined ? { 'gatehouse.sid': ctx.actor.sid } : {}),
    'gatehouse.channel': ctx.channel,
    ...(ctx.sourceIp !== undefined ? { 'source.ip': ctx.sourceIp } : {}),
    ...(ctx.requestId !== undefined ? { 'gatehouse.request_id': ctx.requestId } : {}),
    ...(target?.user !== undefined ? { 'user.id': target.user } : {}),
    ...(target !== undefined ? { 'gatehouse.target': target.target, ...target.fields } : {}),
    ...extra,
  });
  try {
    parsed = { args: o.parse(args, ctx.by ?? ctx.actor.id) };
    const result = await o.run(store, parsed.args, clock, ctx);
    ctx.audit.append(event('success', o.target?.(parsed.args, result), {}));
    return result;
  } catch (err) {
    const code = err instanceof GatehouseError ? err.code : 'ERR_INTERNAL';
    ctx.audit.append(event('failure', parsed === undefined ? undefined : o.target?.(parsed.args), { 'gatehouse.error_code': code, 'event.reason': err instanceof GatehouseError ? err.message.slice(0, 300) : 'internal error' }));
    throw err;
  }
}
