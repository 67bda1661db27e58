// The route of RFC 8693 token exchange (POST /.gatehouse/token on the mTLS listener), next to
// the exchange itself: reads the form, asks tokenExchange, audits the outcome once. Who the
// caller is and what it may reach come in as functions; this part imports no other.
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatehouseError } from '../errors.js';
import type { AuditSink } from '../contracts/audit.js';
import type { Clock } from '../lib/clock.js';
import { parseSpiffeId } from '../pki/spiffe.js';
import { tokenExchange, type TokenExchangeCaller } from './token-exchange.js';
import type { MintInput, MintedToken } from './types.js';

export const TOKEN_PATH = '/.gatehouse/token';
const MAX_FORM_BYTES = 8 * 1024;

export interface TokenExchangeRouteOptions {
  /** The certificate behind this request, or why there is none (revoked, expired, absent). */
  caller(req: FastifyRequest): TokenExchangeCaller | GatehouseError;
  /** Whether policy lets the caller reach this service at all. */
  canReach(caller: TokenExchangeCaller, namespace: string, service: string): boolean;
  tokens: { mint(input: MintInput): Promise<MintedToken> };
  trustDomain: string;
  audit: AuditSink;
  clock: Clock;
}

/** Reads a small form body from a request whose body fastify left unread. */
async function readForm(req: IncomingMessage): Promise<Record<string, string> | GatehouseError> {
  const type = req.headers['content-type'] ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) return new GatehouseError('ERR_BAD_REQUEST', 'expected application/x-www-form-urlencoded');
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return new GatehouseError('ERR_BAD_REQUEST', 'form body too large');
    chunks.push(chunk);
  }
  const form: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
    // RFC 6749 §3.2: parameters must not repeat
    if (Object.hasOwn(form, k)) return new GatehouseError('ERR_BAD_REQUEST', `parameter ${k.slice(0, 40)} repeated`);
    form[k] = v;
  }
  return form;
}

export function tokenExchangeRoute(app: FastifyInstance, o: TokenExchangeRouteOptions): void {
  app.post(TOKEN_PATH, async (request, reply) => {
    const who = o.caller(request);
    const event = {
      '@timestamp': new Date(o.clock.now()).toISOString(),
      'event.action': 'token.exchange',
      'source.ip': request.ip,
      'gatehouse.request_id': request.id,
    } as const;
    if (who instanceof GatehouseError) {
      o.audit.append({ ...event, 'event.outcome': 'failure', 'gatehouse.error_code': who.code });
      return reply.status(401).header('cache-control', 'no-store').send({ error: 'invalid_client', error_description: who.message });
    }
    const form = await readForm(request.raw);
    if (form instanceof GatehouseError) {
      o.audit.append({ ...event, 'event.outcome': 'failure', 'gatehouse.subject': who.spiffeId, 'gatehouse.error_code': form.code });
      return reply.status(400).header('cache-control', 'no-store').send({ error: 'invalid_request', error_description: form.message });
    }
    const result = await tokenExchange({
      form,
      caller: who,
      canReach: (aud) => {
        const target = parseSpiffeId(aud);
        return target.trustDomain === o.trustDomain && o.canReach(who, target.namespace, target.service);
      },
      service: o.tokens,
      trustDomain: o.trustDomain,
    });
    o.audit.append({
      ...event,
      'event.outcome': result.status === 200 ? 'success' : 'failure',
      'gatehouse.subject': who.spiffeId,
      ...(typeof form.audience === 'string' ? { 'gatehouse.audience': form.audience.slice(0, 300) } : {}),
      ...('error' in result.body ? { 'event.reason': result.body.error } : {}),
    });
    return reply.status(result.status).headers(result.headers).send(result.body);
  });
}
