// GET /.gatehouse/admin/api/audit on the human listener: the audit log for people holding
// gatehouse:security-auditor or gatehouse:security-admin, filtered like `gatehouse audit query`,
// with an opaque cursor for the next page. Reading the log is itself audited.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatehouseError, isGatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { Type, bodyReader } from '../lib/schema.js';
import type { Store } from '../store/index.js';
import type { AuditSink, OperatorAction } from '../contracts/audit.js';
import { AUDIT_FILTER_FIELDS, queryAudit, parseTime, type AuditFilters } from '../audit/index.js';

export const AUDIT_API_PATH = '/.gatehouse/admin/api/audit';
export const AUDIT_READER_ROLES = ['security-auditor', 'security-admin'] as const;

export interface AuditApiCaller {
  userId: string;
  roles: Readonly<Record<string, readonly string[]>>;
}

export interface AuditApiDeps {
  store: Store;
  clock: Clock;
  audit: AuditSink;
  caller(req: FastifyRequest): AuditApiCaller | GatehouseError;
}

/** One short value per parameter (a repeated parameter arrives as a list, and is refused). */
const short = Type.Optional(Type.String({ maxLength: 256 }));
const AUDIT_QUERY = bodyReader(Type.Object({
  ...(Object.fromEntries(AUDIT_FILTER_FIELDS.map((k) => [k, short])) as Record<(typeof AUDIT_FILTER_FIELDS)[number], typeof short>),
  since: short,
  until: short,
  limit: Type.Optional(Type.String({ pattern: '^(1000|[1-9][0-9]{0,2})$', hint: '1..1000' })),
  cursor: short,
}));

export function parseAuditQuery(query: unknown, nowMs: number): { filters: AuditFilters; cursor?: string; limit: number } {
  const q = AUDIT_QUERY.read(query);
  const filters: AuditFilters = {};
  for (const k of AUDIT_FILTER_FIELDS) {
    const v = q[k];
    if (v !== undefined) filters[k] = v;
  }
  for (const k of ['since', 'until'] as const) {
    const v = q[k];
    if (v !== undefined) filters[k] = parseTime(v, nowMs); // ERR_BAD_REQUEST when it is not a time
  }
  const limit = q.limit === undefined ? 100 : Number(q.limit);
  return { filters, limit, ...(q.cursor !== undefined ? { cursor: q.cursor } : {}) };
}

export function auditApiRoutes(app: FastifyInstance, d: AuditApiDeps): void {
  app.get(AUDIT_API_PATH, async (req, reply) => {
    const who = d.caller(req);
    if (who instanceof GatehouseError) throw who;
    const held = who.roles.gatehouse ?? [];
    // the reader is the event's user.id and its actor (the same actor fields as an operator action's)
    const base = {
      '@timestamp': new Date(d.clock.now()).toISOString(),
      'event.action': 'admin.audit.query' satisfies OperatorAction,
      'user.id': who.userId,
      'gatehouse.actor': who.userId,
      'gatehouse.actor_kind': 'session',
      'gatehouse.channel': 'console',
      'gatehouse.request_id': req.id,
    } as const;
    if (!AUDIT_READER_ROLES.some((r) => held.includes(r))) {
      d.audit.append({ ...base, 'event.outcome': 'failure', 'gatehouse.error_code': 'ERR_ADMIN_FORBIDDEN' });
      throw new GatehouseError('ERR_ADMIN_FORBIDDEN', 'reading the audit log needs gatehouse:security-auditor or gatehouse:security-admin');
    }
    try {
      const { filters, cursor, limit } = parseAuditQuery(req.query, d.clock.now());
      const page = await queryAudit(d.store, filters, { limit, ...(cursor !== undefined ? { cursor } : {}) });
      d.audit.append({ ...base, 'event.outcome': 'success' });
      return reply.header('cache-control', 'no-store').send(page);
    } catch (err) {
      d.audit.append({ ...base, 'event.outcome': 'failure', 'gatehouse.error_code': isGatehouseError(err) ? err.code : 'ERR_INTERNAL' });
      throw err;
    }
  });
}
