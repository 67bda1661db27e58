// buildApp wires the concrete parts into fastify instances without listening;
// main.ts is the only place that touches process and sockets' lifetimes.
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { GatehouseConfig } from './config/index.js';
import type { Store } from './store/index.js';
import type { Bus } from './bus/index.js';
import type { Clock } from './lib/clock.js';
import { installErrorHandlers } from './lib/http-errors.js';
import { healthRoutes } from './admin/health.js';

export interface AppDeps {
  store: Store;
  bus: Bus;
  clock: Clock;
  /** fastify logger options; false in tests. */
  logger?: FastifyServerOptions['logger'];
}

export interface GatehouseApp {
  config: GatehouseConfig;
  /** /healthz, /readyz (and /metrics with the service-path issue). */
  admin: FastifyInstance;
  close(): Promise<void>;
}

/** Headers that carry secrets never reach the logs. */
export const REDACT = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]', 'res.headers["set-cookie"]'];

export async function buildApp(config: GatehouseConfig, deps: AppDeps): Promise<GatehouseApp> {
  const logger = deps.logger ?? false;
  const admin = Fastify({
    logger,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    disableRequestLogging: false,
    return503OnClosing: true,
  });
  installErrorHandlers(admin);
  await admin.register(healthRoutes, { store: deps.store, bus: deps.bus });
  await admin.ready();
  return {
    config,
    admin,
    async close() {
      await admin.close();
    },
  };
}
