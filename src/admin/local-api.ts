// The local operator API: while a gateway holds the embedded store, the CLI's store commands
// (`policy apply`, `cert issue|revoke`, `user ...`, `totp ...`, `revoke ...`, `store compact`)
// reach the store through this gateway, each audited on this gateway's chain with the actor the
// CLI names. A call refused before any operation runs (no token, no such operation) is audited
// under one fixed action: the URL never chooses an event's action. The credential is a random
// token written 0600 next to the store at every start: whoever may read the store's folder
// may act on it anyway, and nobody else can.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';
import { operatorEvent, type AuditSink } from '../contracts/audit.js';
import { errorBody } from '../lib/http-errors.js';
import { parseBearer } from '../lib/bearer.js';
import { safeEqual } from '../lib/safe-equal.js';
import type { Bus } from '../bus/index.js';
import { isStoreOpName, runAuditedOp } from './ops.js';

export const ADMIN_TOKEN_FILE = 'admin.token';
export const OPS_PATH = '/admin/v1/ops/';

/** Writes a fresh token (mode 0600, atomically) and returns it. */
export async function createAdminToken(dir: string): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const file = path.join(dir, ADMIN_TOKEN_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(`${token}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  return token;
}

export async function readAdminToken(dir: string): Promise<string> {
  try {
    return (await readFile(path.join(dir, ADMIN_TOKEN_FILE), 'utf8')).trim();
  } catch (cause) {
    throw new GatehouseError('ERR_ADMIN_UNAUTHORIZED', `cannot read ${path.join(dir, ADMIN_TOKEN_FILE)}: run as the gateway's user`, { cause });
  }
}

export async function removeAdminToken(dir: string): Promise<void> {
  await unlink(path.join(dir, ADMIN_TOKEN_FILE)).catch(() => undefined);
}

export interface LocalOpsDeps {
  store: Store;
  clock: Clock;
  token: string;
  audit: AuditSink;
  /** Revocations are broadcast on it after the store write. */
  bus?: Bus | undefined;
  /** This gateway's trust domain (service revocations must name it unless forced); unset: the CLI's. */
  trustDomain?: string | undefined;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const b = parseBearer(header);
  return b.kind === 'bearer' && safeEqual(b.token, token);
}

/** The header the CLI names its OS user and host in (`alice@bastion-1`); what the token holder says, recorded as said. */
export const ACTOR_HEADER = 'x-gatehouse-actor';
const ACTOR = /^[A-Za-z0-9._@-]{1,128}$/;

function actorOf(header: string | string[] | undefined): string {
  const v = Array.isArray(header) ? header[0] : header;
  return v !== undefined && ACTOR.test(v) ? v : 'local-operator';
}

export const localOpsRoutes = fp<LocalOpsDeps>(async (app: FastifyInstance, deps) => {
  app.post<{ Params: { name: string } }>(`${OPS_PATH}:name`, { bodyLimit: 8 * 1024 * 1024 }, async (request, reply) => {
    const { name } = request.params;
    const known = isStoreOpName(name);
    const authorized = tokenMatches(request.headers.authorization, deps.token);
    if (!authorized || !known) {
      const err = authorized ? new GatehouseError('ERR_NOT_FOUND', 'no such operation') : new GatehouseError('ERR_ADMIN_UNAUTHORIZED');
      deps.audit.append(operatorEvent({
        at: deps.clock.now(),
        action: 'admin.op.refused',
        outcome: 'failure',
        // without the token the header is a stranger's word: recorded, but not as the actor
        actor: authorized ? { kind: 'cli', id: actorOf(request.headers[ACTOR_HEADER]) } : undefined,
        channel: 'local-api',
        sourceIp: request.ip,
        requestId: request.id,
        // an operation's name from the closed table, never the caller's text
        target: { target: 'local-api', fields: { 'gatehouse.op': known ? name : 'unknown', ...(authorized ? {} : { 'gatehouse.claimed_actor': actorOf(request.headers[ACTOR_HEADER]) }) } },
        error: { code: err.code, message: err.message },
      }));
      return reply.status(err.status).send(errorBody(err, request.id));
    }
    // one event per operation, with actor and target, from the same helper the CLI uses on the store
    return runAuditedOp(name, deps.store, request.body, deps.clock, {
      bus: deps.bus,
      by: 'local-operator',
      trustDomain: deps.trustDomain,
      actor: { kind: 'cli', id: actorOf(request.headers[ACTOR_HEADER]) },
      audit: deps.audit,
      channel: 'local-api',
      sourceIp: request.ip,
      requestId: request.id,
    });
  });
}, { name: 'gatehouse-local-ops' });
