// The revocation admin API on the human listener, for the console and scripts:
//   POST /.gatehouse/admin/api/revoke       {kind, id, reason?, notAfter?, force?}
//   POST /.gatehouse/admin/api/revoke/lift  {kind, id, reason?}
//   GET  /.gatehouse/admin/api/revocations  ?kind=
// Writes need gatehouse:security-admin with a WebAuthn assertion at most 5 minutes old and this
// host's Origin; the list needs security-auditor or security-admin. Every call, refused or not,
// is audited once as an operator action (the same action and fields as the CLI's), its actor
// the session's user.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';
import type { Bus } from '../bus/index.js';
import { operatorEvent, type AuditSink, type OperatorAction, type OperatorTarget } from '../contracts/audit.js';
import { errorBody, parseJsonBodies } from '../lib/http-errors.js';
import { Type, bodyReader } from '../lib/schema.js';
import { parseRevokeRequest, revoke, type RevokeRequest } from './revoke.js';
import { checkRevocationTarget } from './check-target.js';
import { liftRevocation, parseLiftRequest, type LiftRequest } from './lift.js';
import { listRevocations } from './list.js';
import { liftTarget, revokeTarget } from './operator-events.js';
import { REVOCATION_KINDS, type RevocationKind } from './types.js';

export const REVOKE_API_PATH = '/.gatehouse/admin/api/revoke';
export const LIFT_API_PATH = '/.gatehouse/admin/api/revoke/lift';
export const REVOCATIONS_API_PATH = '/.gatehouse/admin/api/revocations';
export const SECURITY_ADMIN = { namespace: 'gatehouse', role: 'security-admin' } as const;
const READER_ROLES = ['security-auditor', 'security-admin'] as const;
/** The MFA session must have asserted WebAuthn this recently. */
export const FRESH_MFA_MS = 5 * 60_000;

/** What the route needs of the caller's session (the human listener supplies it). */
export interface AdminCaller {
  userId: string;
  sid: string;
  roles: Readonly<Record<string, readonly string[]>>;
  lastWebAuthnAt: number;
}

export interface RevocationApiDeps {
  store: Store;
  bus: Bus | undefined;
  clock: Clock;
  audit: AuditSink;
  /** This gateway's trust domain: a service revocation names it unless forced. Unset: the ID's form alone is checked. */
  trustDomain?: string | undefined;
  /** The session behind the request's cookie on this host, or why not. */
  caller(req: FastifyRequest): AdminCaller | GatehouseError;
  /** Throws ERR_ORIGIN_REFUSED unless the Origin is this host's allowed origin. */
  checkOrigin(req: FastifyRequest): void;
  onError?: (err: Error) => void;
}

const KIND = Type.Union(REVOCATION_KINDS.map((k) => Type.Literal(k)));
const ID = Type.String({ minLength: 1, maxLength: 512 });
const REASON = Type.Optional(Type.String({ maxLength: 200 }));
/** The shapes here (a 400 naming the field); what an id means in parseRevokeRequest / parseLiftRequest. */
const REVOKE_BODY = bodyReader(Type.Object({ kind: KIND, id: ID, reason: REASON, notAfter: Type.Optional(Type.String({ maxLength: 64 })), force: Type.Optional(Type.Boolean()) }), 'ERR_REVOCATION_INVALID');
const LIFT_BODY = bodyReader(Type.Object({ kind: KIND, id: ID, reason: REASON }), 'ERR_REVOCATION_INVALID');
const LIST_QUERY = bodyReader(Type.Object({ kind: Type.Optional(KIND) }), 'ERR_REVOCATION_INVALID');

const holds = (who: AdminCaller, role: string): boolean => (who.roles[SECURITY_ADMIN.namespace] ?? []).includes(role);

/** Writes: the role, then a fresh MFA assertion. */
function mayWrite(who: AdminCaller, d: RevocationApiDeps, what: string): void {
  if (!holds(who, SECURITY_ADMIN.role)) throw new GatehouseError('ERR_REVOCATION_FORBIDDEN', `${what} needs the ${SECURITY_ADMIN.namespace}:${SECURITY_ADMIN.role} role`);
  if (d.clock.now() - who.lastWebAuthnAt > FRESH_MFA_MS) throw new GatehouseError('ERR_STEP_UP_REQUIRED', `${what} needs a security-key confirmation at most 300 s old`);
}

function mayRead(who: AdminCaller): void {
  if (!READER_ROLES.some((r) => holds(who, r))) throw new GatehouseError('ERR_ADMIN_FORBIDDEN', 'listing revocations needs gatehouse:security-auditor or gatehouse:security-admin');
}

/** The checks of a write, in order: Origin, a live session, the role, a fresh MFA assertion. */
export function authorizeRevoker(req: FastifyRequest, d: RevocationApiDeps): AdminCaller {
  d.checkOrigin(req);
  const who = d.caller(req);
  if (who instanceof GatehouseError) throw who;
  mayWrite(who, d, 'revoking');
  return who;
}

interface AuditedRoute<A, R> {
  action: OperatorAction;
  /** Writes check the Origin first. */
  write: boolean;
  authorize(who: AdminCaller): void;
  parse(input: unknown, who: AdminCaller): A;
  run(args: A, who: AdminCaller): Promise<R>;
  target(args: A, result?: R): OperatorTarget;
  answer(result: R): unknown;
}

/** Runs one call and appends exactly one event for it, naming the caller once the session is known. */
function handle<A, R>(d: RevocationApiDeps, o: AuditedRoute<A, R>) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const at = d.clock.now();
    let who: AdminCaller | undefined;
    let args: A | undefined;
    const append = (outcome: 'success' | 'failure', target: OperatorTarget | undefined, error?: GatehouseError): void =>
      d.audit.append(operatorEvent({
        at,
        action: o.action,
        outcome,
        actor: who === undefined ? undefined : { kind: 'session', id: who.userId, sid: who.sid },
        channel: 'admin-api',
        sourceIp: req.ip,
        requestId: req.id,
        target,
        error: error === undefined ? undefined : { code: error.code, message: error.message },
      }));
    void reply.header('cache-control', 'no-store');
    try {
      if (o.write) d.checkOrigin(req);
      const c = d.caller(req);
      if (c instanceof GatehouseError) throw c;
      who = c;
      o.authorize(c);
      args = o.parse(o.write ? req.body : req.query, c);
      const result = await o.run(args, c);
      append('success', o.target(args, result));
      return reply.send(o.answer(result));
    } catch (err) {
      const ge = err instanceof GatehouseError ? err : new GatehouseError('ERR_INTERNAL', undefined, { cause: err });
      if (ge.code === 'ERR_INTERNAL') d.onError?.(err instanceof Error ? err : new Error(String(err)));
      append('failure', args === undefined ? undefined : o.target(args), ge);
      return reply.status(ge.status).send(errorBody(ge, req.id));
    }
  };
}

export async function revocationApiRoutes(app: FastifyInstance, d: RevocationApiDeps): Promise<void> {
  await app.register(async (scope) => {
    parseJsonBodies(scope, 16 * 1024);
    const by = (who: AdminCaller): string => `user:${who.userId}`;

    scope.post(REVOKE_API_PATH, handle(d, {
      action: 'admin.revoke',
      write: true,
      authorize: (who) => mayWrite(who, d, 'revoking'),
      parse: (input, who): RevokeRequest => parseRevokeRequest(REVOKE_BODY.read(input), by(who)),
      async run(request) {
        const check = await checkRevocationTarget(d.store, request.kind, request.id, { trustDomain: d.trustDomain, force: request.force, forceHint: 'force: true' });
        const r = await revoke(d.store, d.bus, request, d.clock, d.onError);
        return { ...r, forced: check.skipped };
      },
      target: (request, r) => revokeTarget(request, r === undefined ? undefined : { created: r.created, sessionsEnded: r.sessionsEnded, subject: r.record.subject, forced: r.forced }),
      answer: (r) => ({ ...r.record, created: r.created, published: r.published, sessionsEnded: r.sessionsEnded, ...(r.forced !== undefined ? { forced: r.forced } : {}) }),
    }));

    scope.post(LIFT_API_PATH, handle(d, {
      action: 'admin.revoke.lift',
      write: true,
      authorize: (who) => mayWrite(who, d, 'lifting a revocation'),
      parse: (input, who): LiftRequest => parseLiftRequest(LIFT_BODY.read(input), by(who)),
      run: (request) => liftRevocation(d.store, d.bus, request, d.clock, d.onError),
      target: (request, r) => liftTarget(request, r?.lifted),
      answer: (r) => ({ ...r.lifted, lifted: true, published: r.published }),
    }));

    scope.get(REVOCATIONS_API_PATH, handle(d, {
      action: 'admin.revoke.list',
      write: false,
      authorize: mayRead,
      parse: (input): { kind?: RevocationKind } => {
        const q = LIST_QUERY.read(input);
        return q.kind === undefined ? {} : { kind: q.kind };
      },
      run: (q) => listRevocations(d.store, { kind: q.kind, now: d.clock.now() }),
      target: (q, r) => ({ target: `revocations${q.kind !== undefined ? `:${q.kind}` : ''}`, fields: r === undefined ? {} : { 'gatehouse.count': r.revocations.length } }),
      answer: (r) => r,
    }));
  });
}
