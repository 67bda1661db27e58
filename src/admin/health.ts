// /healthz: the process is up. /readyz: the store and the bus answer, so traffic may come.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/index.js';
import type { Bus } from '../bus/index.js';
import { GatehouseError } from '../errors.js';
import { errorBody } from '../lib/http-errors.js';

export interface HealthDeps {
  store: Store;
  bus: Bus;
  /** Longest a readiness probe waits on a dependency. */
  probeTimeoutMs?: number;
}

async function probe(fn: () => Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn().catch(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export const healthRoutes = fp<HealthDeps>(async (app: FastifyInstance, deps) => {
  const ms = deps.probeTimeoutMs ?? 1_000;
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (request, reply) => {
    const [store, bus] = await Promise.all([probe(() => deps.store.ping(), ms), probe(() => deps.bus.ping(), ms)]);
    const checks = { store: store ? 'ok' : 'down', bus: bus ? 'ok' : 'down' };
    if (store && bus) return { status: 'ready', checks };
    const err = new GatehouseError('ERR_NOT_READY', `not ready: ${Object.entries(checks).filter(([, v]) => v !== 'ok').map(([k]) => k).join(', ')} down`);
    return reply.status(503).send({ ...errorBody(err, request.id), checks });
  });
}, { name: 'gatehouse-health' });
