// One error shape for every HTTP answer Gatehouse gives: {error: {code, message}, requestId}.
// Never a stack trace; unknown failures become ERR_INTERNAL and are logged server-side only.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError, isGatehouseError } from '../errors.js';

export interface ErrorBody {
  error: { code: string; message: string };
  requestId: string;
}

export function errorBody(err: GatehouseError, requestId: string): ErrorBody {
  return { error: err.toJSON(), requestId };
}

function toGatehouseError(err: FastifyError | Error): GatehouseError {
  if (isGatehouseError(err)) return err;
  const status = (err as FastifyError).statusCode;
  // fastify's own 4xx (bad JSON, body too large, bad content type) are the client's fault.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new GatehouseError(status === 404 ? 'ERR_NOT_FOUND' : 'ERR_BAD_REQUEST', status === 404 ? undefined : err.message);
  }
  return new GatehouseError('ERR_INTERNAL');
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const ge = toGatehouseError(err);
    if (ge.code === 'ERR_INTERNAL') request.log.error({ err }, 'internal error');
    else request.log.info({ code: ge.code }, 'request refused');
    void reply.status(ge.status).send(errorBody(ge, request.id));
  });
  app.setNotFoundHandler((request, reply) => {
    const ge = new GatehouseError('ERR_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0] ?? ''}`);
    void reply.status(404).send(errorBody(ge, request.id));
  });
}

/**
 * A JSON body parser for one scope: at most bodyLimit bytes, parsed by fastify's own parser
 * (secure-json-parse), which refuses `__proto__` and `constructor.prototype` keys instead of
 * handing a prototype-polluting object to the routes; every refusal is ERR_BAD_REQUEST.
 */
export function parseJsonBodies(scope: FastifyInstance, bodyLimit: number): void {
  const secureParse = scope.getDefaultJsonParser('error', 'error');
  scope.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (req, body, done) => {
    void secureParse(req, body as string, (err: Error | null, value?: unknown) => {
      if (err === null) done(null, value);
      else done(new GatehouseError('ERR_BAD_REQUEST', 'the body is not JSON, or it carries __proto__ or constructor.prototype'), undefined);
    });
  });
}
