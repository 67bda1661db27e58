// An ended identity ends every channel that carries it. Each attack keeps a channel open past
// the end of its identity: a WebSocket after logout or `user disable`, a kept-alive connection
// after a certificate revoke, a certificate past its notAfter on a kept-alive connection.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { disableUser } from '../../src/authenticate/index.js';
import { revoke } from '../../src/revocation/index.js';
import { APP_HOST, call, echo, openWebSocket, startGatewayFixture, within, type GatewayFixture } from './fixture.js';

/** A kept-alive agent with exactly one socket, and a promise that resolves when that socket closes. */
function keptAlive(): { agent: https.Agent; socketClosed: () => Promise<void> } {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    agent,
    socketClosed: () => {
      const sockets = [...Object.values(agent.freeSockets).flat(), ...Object.values(agent.sockets).flat()].filter((s) => s !== undefined);
      assert.equal(sockets.length, 1, 'one kept-alive socket');
      const s = sockets[0]!;
      return s.destroyed ? Promise.resolve() : new Promise<void>((r) => s.once('close', () => r()));
    },
  };
}

async function settle(f: GatewayFixture): Promise<void> {
  for (let i = 0; i < 6; i++) {
    await f.store.settle();
    await new Promise<void>((r) => setImmediate(r));
  }
}

describe('an ended identity ends every channel (keep-alive and WebSocket)', () => {
  let f: GatewayFixture;
  before(async () => {
    f = await startGatewayFixture();
  });
  after(async () => f.close());

  it('a WebSocket and a kept-alive connection do not outlive logout', async () => {
    const s = await f.session('lou');
    const k = keptAlive();
    assert.equal((await call(f, { listener: 'human', cookie: s.cookie, agent: k.agent })).status, 200);
    const socketGone = k.socketClosed();
    const ws = await openWebSocket(f, { listener: 'human', cookie: s.cookie });
    assert.equal(await echo(ws, 'before'), 'echo:before');
    const out = await call(f, { listener: 'human', method: 'POST', path: '/.gatehouse/logout', cookie: s.cookie, headers: { origin: `https://${APP_HOST}` } });
    assert.equal(out.status, 200, out.body);
    await settle(f);
    assert.ok(await within(ws.closed, 5_000), 'the WebSocket was closed at logout');
    assert.ok(await within(socketGone, 5_000), 'the kept-alive connection was closed at logout');
    assert.equal((await call(f, { listener: 'human', cookie: s.cookie })).status, 401);
    k.agent.destroy();
  });

  it('a WebSocket does not outlive `user disable`', async () => {
    const s = await f.session('dee');
    const ws = await openWebSocket(f, { listener: 'human', cookie: s.cookie });
    assert.equal(await echo(ws, 'x'), 'echo:x');
    await disableUser(f.store, 'dee', f.clock);
    await settle(f);
    assert.ok(await within(ws.closed, 5_000), 'the WebSocket was closed when the user was disabled');
  });

  it('a WebSocket does not outlive the revocation of its session', async () => {
    const s = await f.session('sam');
    const ws = await openWebSocket(f, { listener: 'human', cookie: s.cookie });
    await revoke(f.store, f.bus, { kind: 'session', id: s.sid, by: 'test', reason: 'compromised' }, f.clock);
    await settle(f);
    assert.ok(await within(ws.closed, 5_000));
  });

  it('a kept-alive connection and a WebSocket do not outlive `cert revoke`', async () => {
    const cert = await f.shortLived(3600_000);
    const k = keptAlive();
    assert.equal((await call(f, { listener: 'service', cert, agent: k.agent })).status, 200);
    const socketGone = k.socketClosed();
    const ws = await openWebSocket(f, { listener: 'service', cert });
    await revoke(f.store, f.bus, { kind: 'cert', id: cert.serial, notAfter: cert.notAfter.toISOString(), by: 'test', reason: 'keyCompromise' }, f.clock);
    await settle(f);
    assert.ok(await within(ws.closed, 5_000), 'WebSocket closed');
    assert.ok(await within(socketGone, 5_000), 'kept-alive connection closed');
    await assert.rejects(call(f, { listener: 'service', cert }), 'a new handshake with the revoked certificate fails');
    k.agent.destroy();
  });

  it('a WebSocket does not outlive `service revoke`', async () => {
    const other = await f.shortLived(3600_000);
    const ws = await openWebSocket(f, { listener: 'service', cert: other });
    await revoke(f.store, f.bus, { kind: 'service', id: 'spiffe://example.org/ns/frontend/sa/web', by: 'test', reason: 'retired' }, f.clock);
    await settle(f);
    assert.ok(await within(ws.closed, 5_000));
  });
});

describe('a certificate does not outlive its notAfter on a kept-alive connection', () => {
  let f: GatewayFixture;
  before(async () => {
    f = await startGatewayFixture();
  });
  after(async () => f.close());

  it('the connection (and its WebSocket) is closed when notAfter passes on the gateway clock', async () => {
    const cert = await f.shortLived(120_000);
    const k = keptAlive();
    assert.equal((await call(f, { listener: 'service', cert, agent: k.agent })).status, 200);
    const socketGone = k.socketClosed();
    const ws = await openWebSocket(f, { listener: 'service', cert });
    f.clock.advance(90_000);
    assert.equal(await echo(ws, 'still valid'), 'echo:still valid');
    f.clock.advance(60_000); // 30 s past notAfter
    assert.ok(await within(socketGone, 5_000), 'kept-alive connection closed at notAfter');
    assert.ok(await within(ws.closed, 5_000), 'WebSocket closed at notAfter');
    k.agent.destroy();
  });
});
