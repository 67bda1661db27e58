// The security console on the human listener: GET /.gatehouse/admin (one page, one stylesheet,
// one script, all served here: no CDN, no inline script or style) and its read APIs, for people
// holding gatehouse:security-auditor or gatehouse:security-admin. Every API read is audited and
// answered no-store; revoking goes through POST /.gatehouse/admin/api/revoke (revocation's API).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError, isGatehouseError } from '../../errors.js';
import type { Clock } from '../../lib/clock.js';
import { rangePages, type Store } from '../../store/index.js';
import { SESSIONS_PREFIX, SESSION_SUMMARY } from '../../store/keys.js';
import type { AuditEvent, AuditSink, OperatorAction } from '../../contracts/audit.js';
import type { PolicyState } from '../../authorize/types.js';
import { PAGE_HEADERS, sendHtml } from '../../authenticate/http/context.js';
import { errorPage } from '../../authenticate/http/pages.js';
import { AUDIT_READER_ROLES } from '../audit-api.js';
import { consolePage } from './page.js';
import { explain, explainRequest, policyGraph } from './graph.js';

export const CONSOLE_PATH = '/.gatehouse/admin';
export const CONSOLE_ASSET_PREFIX = '/.gatehouse/admin/assets/';
export const SESSIONS_API_PATH = '/.gatehouse/admin/api/sessions';
export const GRAPH_API_PATH = '/.gatehouse/admin/api/graph';
export const EXPLAIN_API_PATH = '/.gatehouse/admin/api/explain';

export interface ConsoleCaller {
  userId: string;
  sid: string;
  roles: Readonly<Record<string, readonly string[]>>;
}

export interface ConsoleDeps {
  store: Store;
  clock: Clock;
  audit: AuditSink;
  /** The policies in force (PolicyEngine.state). */
  policy(): PolicyState | undefined;
  caller(req: FastifyRequest): ConsoleCaller | GatehouseError;
  /** A browser's answer to a refused page request (sign in, step up); undefined: not handled. */
  refuse(err: GatehouseError, req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined;
}

/** One live session as the console shows it: never the cookie, never its hash. */
export interface LiveSession {
  sid: string;
  userId: string;
  roles: Readonly<Record<string, readonly string[]>>;
  createdAt: number;
  lastSeen: number;
  expiresAt: number;
  ip: string;
  userAgent: string;
}

/**
 * The stylesheet and script, next to this module (src/, or dist/ once the build copies them);
 * a dist/ build without them falls back to the sources, and without either the assets 404
 * rather than keeping the human listener from starting.
 */
function loadAssets(): Map<string, { type: string; body: Buffer }> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const dirs = [path.join(here, 'assets'), path.join(here, '..', '..', '..', 'src', 'admin', 'console', 'assets')];
  const out = new Map<string, { type: string; body: Buffer }>();
  for (const [name, type] of [['console.css', 'text/css; charset=utf-8'], ['console.js', 'text/javascript; charset=utf-8']] as const) {
    for (const dir of dirs) {
      try {
        out.set(name, { type, body: readFileSync(path.join(dir, name)) });
        break;
      } catch {
        // try the next place
      }
    }
  }
  return out;
}

const isReader = (who: ConsoleCaller): boolean => AUDIT_READER_ROLES.some((r) => (who.roles.gatehouse ?? []).includes(r));
const isAdmin = (who: ConsoleCaller): boolean => (who.roles.gatehouse ?? []).includes('security-admin');

/** Every live primary session in the store, newest first. */
export async function listSessions(store: Store, now: number): Promise<LiveSession[]> {
  const out: LiveSession[] = [];
  const revision = await store.revision();
  for await (const page of rangePages(store, { prefix: SESSIONS_PREFIX }, { limit: 500, revision })) {
    for (const kv of page) {
      const r = SESSION_SUMMARY.decode(kv);
      // aliases and anything unreadable are not listed
      if (r instanceof GatehouseError || r.expiresAt <= now) continue;
      out.push({ sid: r.sid, userId: r.userId, roles: r.roles, createdAt: r.createdAt, lastSeen: r.lastSeen, expiresAt: r.expiresAt, ip: r.ip, userAgent: r.userAgent });
    }
  }
  return out.sort((a, b) => b.createdAt - a.createdAt);
}

/** A console read's event: the reader is its user.id and its actor (the same actor fields as an operator action's). */
function consoleEvent(d: Pick<ConsoleDeps, 'clock'>, action: OperatorAction, who: ConsoleCaller, req: FastifyRequest): Omit<AuditEvent, 'event.outcome'> {
  return {
    '@timestamp': new Date(d.clock.now()).toISOString(),
    'event.action': action,
    'user.id': who.userId,
    'gatehouse.actor': who.userId,
    'gatehouse.actor_kind': 'session',
    'gatehouse.sid': who.sid,
    'gatehouse.channel': 'console',
    'gatehouse.request_id': req.id,
  };
}

export function consoleRoutes(app: FastifyInstance, d: ConsoleDeps): void {
  const assets = loadAssets();

  app.get(`${CONSOLE_ASSET_PREFIX}:name`, async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
    const a = assets.get(req.params.name);
    if (a === undefined) throw new GatehouseError('ERR_NOT_FOUND', 'no such asset');
    return reply.headers(PAGE_HEADERS).type(a.type).header('cache-control', 'no-cache').send(a.body);
  });

  app.get(CONSOLE_PATH, async (req, reply) => {
    void reply.headers(PAGE_HEADERS).header('cache-control', 'no-store');
    const who = d.caller(req);
    if (who instanceof GatehouseError) {
      const handled = d.refuse(who, req, reply);
      if (handled !== undefined) return handled;
      return sendHtml(reply, who.status, errorPage({ title: 'Request refused', code: who.code, message: who.message, next: 'Sign in again.', requestId: req.id }));
    }
    if (!isReader(who)) {
      d.audit.append({ ...consoleEvent(d, 'admin.console.open', who, req), 'event.outcome': 'failure', 'gatehouse.error_code': 'ERR_ADMIN_FORBIDDEN' });
      return sendHtml(reply, 403, errorPage({
        title: 'Access denied',
        code: 'ERR_ADMIN_FORBIDDEN',
        message: 'The security console needs gatehouse:security-auditor or gatehouse:security-admin.',
        next: 'Ask your security team for the role if you need it.',
        requestId: req.id,
      }));
    }
    return sendHtml(reply, 200, consolePage({ user: who.userId, canRevoke: isAdmin(who), assetPrefix: CONSOLE_ASSET_PREFIX }));
  });

  /** A read API: the caller must be a reader; the read is audited either way. */
  const read = (p: string, action: OperatorAction, body: (req: FastifyRequest, who: ConsoleCaller) => Promise<unknown>): void => {
    app.get(p, async (req, reply) => {
      void reply.header('cache-control', 'no-store');
      const who = d.caller(req);
      if (who instanceof GatehouseError) throw who;
      const base = consoleEvent(d, action, who, req);
      if (!isReader(who)) {
        d.audit.append({ ...base, 'event.outcome': 'failure', 'gatehouse.error_code': 'ERR_ADMIN_FORBIDDEN' });
        throw new GatehouseError('ERR_ADMIN_FORBIDDEN', 'the console needs gatehouse:security-auditor or gatehouse:security-admin');
      }
      try {
        const out = await body(req, who);
        d.audit.append({ ...base, 'event.outcome': 'success' });
        return reply.send(out);
      } catch (err) {
        d.audit.append({ ...base, 'event.outcome': 'failure', 'gatehouse.error_code': isGatehouseError(err) ? err.code : 'ERR_INTERNAL' });
        throw err;
      }
    });
  };

  read(SESSIONS_API_PATH, 'admin.sessions.list', async (_req, who) => ({
    sessions: (await listSessions(d.store, d.clock.now())).map((s) => ({ ...s, current: s.sid === who.sid })),
    canRevoke: isAdmin(who),
  }));
  read(GRAPH_API_PATH, 'admin.policy.graph', async () => policyGraph(d.policy()));
  read(EXPLAIN_API_PATH, 'admin.policy.explain', async (req) => explain(d.policy(), explainRequest(req.query)));
}
