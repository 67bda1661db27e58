// The gateway the browser tests drive: a human listener for dash.<DOMAIN> on a free port, on
// an embedded store, with a clock the tests move forward (TOTP steps without sleeping 30 s).
import assert from 'node:assert/strict';
import https from 'node:https';
import path from 'node:path';
import { tmpdir } from 'node:os';
import type { Page } from 'playwright-core';
import { parseConfig } from '../../src/config/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { openBus, type Bus } from '../../src/bus/index.js';
import { buildApp, type GatehouseApp } from '../../src/app.js';
import type { Clock, TimerHandle } from '../../src/lib/clock.js';
import { freePort } from '../helpers/programs.js';

export const DOMAIN = 'gatehouse.test';
/** Screenshots go to a temporary folder; `npm run screenshots` points this at docs/screenshots. */
export const SHOTS = process.env.GATEHOUSE_SCREENSHOTS_DIR ?? path.join(tmpdir(), 'gatehouse-screenshots');

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
    // the browser tests enroll with the page's phone-app seed
    'totp: { allowSoftware: true }',
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

/** Waits for `selector`; if the page shows an error first, fails with its text. */
export async function expectStep(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(`${selector}, #error:not(:empty)`, { timeout: 15_000 });
  if (!(await page.isVisible(selector))) assert.fail(`expected ${selector}, the page says: ${(await page.textContent('#error')) ?? ''}`);
}

/** A plain HTTPS request to the gateway as `dash.<DOMAIN>` (trusting `caPem`), with a session cookie if not ''. */
export function gatewayRequest(gw: Gateway, caPem: string, p: string, cookie = '', accept = 'application/json'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: `dash.${DOMAIN}:${gw.port}`, accept };
    if (cookie !== '') headers.cookie = `__Host-gatehouse=${cookie}`;
    const r = https.request({ host: '127.0.0.1', port: gw.port, path: p, servername: `dash.${DOMAIN}`, ca: caPem, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', reject);
    r.end();
  });
}
