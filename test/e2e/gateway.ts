// The gateway the browser tests drive: a human listener for dash.<DOMAIN> on a free port, on
// an embedded store, with a clock the tests move forward (TOTP steps without sleeping 30 s).
import path from 'node:path';
import { parseConfig } from '../../src/config/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { openBus, type Bus } from '../../src/bus/index.js';
import { buildApp, type GatehouseApp } from '../../src/app.js';
import type { Clock, TimerHandle } from '../../src/lib/clock.js';
import { freePort } from '../helpers/programs.js';

export const DOMAIN = 'gatehouse.test';
export const SHOTS = path.join(import.meta.dirname, '../../docs/screenshots');

/** Real time plus an offset the test moves forward (TOTP steps without sleeping 30 s). */
export class OffsetClock implements Clock {
  offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  setTimer(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  }
}

export interface Gateway {
  app: GatehouseApp;
  store: Store;
  bus: Bus;
  port: number;
  origin: string;
  close(): Promise<void>;
}

export async function startGateway(dir: string, clock: OffsetClock, upstreamPort: number, extraWebauthn = ''): Promise<Gateway> {
  const port = await freePort();
  const origin = `https://dash.${DOMAIN}:${port}`;
  const text = [
    'trustDomain: example.org',
    'replicaId: e2e',
    `store: { kind: embedded, path: ./data-${port} }`,
    'pki: { dir: ./certs }',
    'policies: { dir: ./policies }',
    'listeners:',
    `  human: { address: 127.0.0.1, port: ${port} }`,
    '  admin: { address: 127.0.0.1, port: 0 }',
    'webauthn:',
    `  rpId: ${DOMAIN}`,
    `  origins: ["${origin}"]`,
    extraWebauthn,
    'routes:',
    `  - { host: dash.${DOMAIN}, namespace: ops, service: dash, upstream: "http://127.0.0.1:${upstreamPort}" }`,
    '',
  ].join('\n');
  const config = parseConfig(text, path.join(dir, 'gatehouse.yaml'));
  const store = await openStore(config.store.kind === 'embedded' ? { kind: 'embedded', path: config.store.path, clock } : config.store);
  const bus = await openBus({ kind: 'memory' });
  const app = await buildApp(config, { store, bus, clock });
  await app.listen();
  return {
    app,
    store,
    bus,
    port,
    origin,
    close: async () => {
      await app.close();
      await bus.close();
      await store.close();
    },
  };
}
