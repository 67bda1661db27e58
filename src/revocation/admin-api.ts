// POST /.gatehouse/admin/api/revoke on the human listener: a person holding the security-admin
// role in the gatehouse namespace, with a WebAuthn assertion at most 5 minutes old, revokes
// anything. Origin-checked like every state-changing request under /.gatehouse/, and audited.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';
import type { Bus } from '../bus/index.js';
import type { AuditSink } from '../contracts/audit.js';
import { errorBody, parseJsonBodies } from '../lib/http-errors.js';
import { Type, bodyReader } from '../lib/schema.js';
import { parseRevokeRequest, revoke } from './revoke.js';
import { REVOCATION_KINDS } from './types.js';

export const REVOKE_API_PATH = '/.gatehouse/admin/api/revoke';
export const SECURITY_ADMIN = { namespace: 'gatehouse', role: 'security-admin' } as const;
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
  /** The session behind the request's cookie on this host, or why not. */
  caller(req: FastifyRequest): AdminCaller | GatehouseError;
  /** Throws ERR_ORIGIN_REFUSED unless the Origin is this host's allowed origin. */
  checkOrigin(req: FastifyRequest): void;
  onError?: (err: Error) => void;
}

/** {kind, id, reason?}: its shape here (a 400 naming the field), what the id means in parseRevokeRequest. */
const REVOKE_BODY = bodyReader(Type.Object({
  kind: Type.Union(REVOCATION_KINDS.map((k) => Type.Literal(k))),
  id: Type.String({ minLength: 1, maxLength: 512 }),
  reason: Type.Optional(Type.String({ maxLength: 200 })),
  notAfter: Type.Optional(Type.String({ maxLength: 64 })),
}), 'ERR_REVOCATION_INVALID');

/** The checks, in order: Origin, a live session, the role, a fresh MFA assertion. */
export function authorizeRevoker(req: FastifyRequest, d: RevocationApiDeps): AdminCaller {
  d.checkOrigin(req);
  const who = d.caller(req);
  if (who instanceof GatehouseError) throw who;
  if (!(who.roles[SECURITY_ADMIN.namespace] ?? []).includes(SECURITY_ADMIN.role)) {
    throw new GatehouseError('ERR_REVOCATION_FORBIDDEN', `revoking needs the ${SECURITY_ADMIN.namespace}:${SECURITY_ADMIN.role} role`);
  }
  if (d.clock.now() - who.lastWebAuthnAt > FRESH_MFA_MS) {
    throw new GatehouseError('ERR_STEP_UP_REQUIRED', 'revoking needs a security-key confirmation at most 300 s old');
  }
  return who;
}

export async function revocationApiRoutes(app: FastifyInstance, d: RevocationApiDeps): Promise<void> {
  await app.register(async (scope) => {
    parseJsonBodies(scope, 16 * 1024);
    scope.post(REVOKE_API_PATH, async (req, reply) => {
      const event = {
        '@timestamp': new Date(d.clock.now()).toISOString(),
        'event.action': 'revocation.revoke',
        'source.ip': req.ip,
        'gatehouse.listener': 'human',
        'gatehouse.request_id': req.id,
      } as const;
      let userId: string | undefined;
      try {
        const who = authorizeRevoker(req, d);
        userId = who.userId;
        const request = parseRevokeRequest(REVOKE_BODY.read(req.body), `user:${who.userId}`);
        const r = await revoke(d.store, d.bus, request, d.clock, d.onError);
        d.audit.append({
          ...event,
          'event.outcome': 'success',
          'user.id': who.userId,
          'gatehouse.sid': who.sid,
          'gatehouse.revocation_kind': r.record.kind,
          'gatehouse.revocation_id': r.record.id,
          'event.reason': r.record.reason,
          'gatehouse.revocation_created': r.created,
        });
        return reply.header('cache-control', 'no-store').send({ ...r.record, created: r.created, published: r.published, sessionsEnded: r.sessionsEnded });
      } catch (err) {
        const ge = err instanceof GatehouseError ? err : new GatehouseError('ERR_INTERNAL', undefined, { cause: err });
        if (ge.code === 'ERR_INTERNAL') d.onError?.(err instanceof Error ? err : new Error(String(err)));
        d.audit.append({ ...event, 'event.outcome': 'failure', 'gatehouse.error_code': ge.code, ...(userId !== undefined ? { 'user.id': userId } : {}) });
        return reply.status(ge.status).header('cache-control', 'no-store').send(errorBody(ge, req.id));
      }
    });
  });
}
