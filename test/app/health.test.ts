import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildApp, type GatehouseApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { openBus, type Bus } from '../../src/bus/index.js';
import { ManualClock } from '../../src/lib/clock.js';

describe('admin listener: health and errors', () => {
  let dir: string;
  let store: Store;
  let bus: Bus;
  let app: GatehouseApp;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gh-app-'));
    const clock = new ManualClock();
    store = await openStore({ kind: 'embedded', path: path.join(dir, 'data'), clock });
    bus = await openBus({ kind: 'memory' });
    app = await buildApp(parseConfig('{}', path.join(dir, 'g.yaml')), { store, bus, clock });
  });

  after(async () => {
    await app.close();
    await bus.close();
    await store.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('/healthz answers ok', async () => {
    const res = await app.admin.inject({ method: 'GET', url: '/healthz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ok' });
  });

  it('/readyz is ready while store and bus answer', async () => {
    const res = await app.admin.inject({ method: 'GET', url: '/readyz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ready', checks: { store: 'ok', bus: 'ok' } });
  });

  it('an unknown path is a coded 404 with a request id, not a stack', async () => {
    const res = await app.admin.inject({ method: 'GET', url: '/nope?secret=1' });
    assert.equal(res.statusCode, 404);
    const body = res.json<{ error: { code: string; message: string }; requestId: string }>();
    assert.equal(body.error.code, 'ERR_NOT_FOUND');
    assert.doesNotMatch(body.error.message, /secret/);
    assert.match(body.requestId, /^[0-9a-f-]{36}$/);
    assert.doesNotMatch(res.body, /at .*\.ts:\d+/);
  });

  it('/readyz is 503 ERR_NOT_READY naming the dependency that is down', async () => {
    await bus.close();
    const res = await app.admin.inject({ method: 'GET', url: '/readyz' });
    assert.equal(res.statusCode, 503);
    const body = res.json<{ error: { code: string }; checks: Record<string, string> }>();
    assert.equal(body.error.code, 'ERR_NOT_READY');
    assert.deepEqual(body.checks, { store: 'ok', bus: 'down' });
    await store.close();
    const res2 = await app.admin.inject({ method: 'GET', url: '/readyz' });
    assert.deepEqual(res2.json<{ checks: Record<string, string> }>().checks, { store: 'down', bus: 'down' });
  });
});
