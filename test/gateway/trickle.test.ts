// A caller holding a request open by trickling its body (the request timeout was 0): the route's
// bodyIdleTimeout cuts a body that stops, its requestTimeout one that crawls; each is audited.
// And h2c smuggling: an Upgrade to anything but WebSocket is refused before any upstream sees it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { APP_HOST, startGatewayFixture, type GatewayFixture } from './fixture.js';

interface RawConn {
  socket: tls.TLSSocket;
  text(): string;
  closed: Promise<void>;
}

function connect(f: GatewayFixture, listener: 'service' | 'human', head: string): Promise<RawConn> {
  const host = listener === 'service' ? 'api.payments' : APP_HOST;
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port: listener === 'service' ? f.servicePort : f.humanPort,
        ca: f.ca.certPem,
        servername: host,
        ...(listener === 'service' ? { cert: f.web.certPem, key: f.web.keyPem } : {}),
      },
      () => {
        socket.write(head.replaceAll('{host}', host));
        resolve({ socket, text: () => text, closed });
      },
    );
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('error', reject);
  });
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

describe('a trickled request body is cut (route bodyIdleTimeout 30 s, requestTimeout 5 min)', () => {
  let f: GatewayFixture;
  before(async () => {
    f = await startGatewayFixture();
  });
  after(async () => f.close());

  it('a body that stops for longer than bodyIdleTimeout: the connection is cut and audited', async () => {
    const c = await connect(f, 'service', 'POST /v1/upload HTTP/1.1\r\nhost: {host}\r\ncontent-length: 100\r\n\r\n0123456789');
    await until(() => f.upstream.last.http?.['content-length'] === '100', 2_000);
    f.clock.advance(29_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.socket.destroyed, false, 'still inside the idle window');
    f.clock.advance(2_000);
    assert.ok(await until(() => c.socket.destroyed, 3_000), 'the connection was cut');
    const aborted = (await f.events()).filter((e) => e['event.action'] === 'proxy.request.aborted');
    assert.equal(aborted.length, 1, JSON.stringify(aborted));
    assert.equal(aborted[0]!['event.reason'], 'body-idle-timeout');
  });

  it('a body that keeps crawling past requestTimeout is cut too', async () => {
    const c = await connect(f, 'service', 'POST /v1/upload HTTP/1.1\r\nhost: {host}\r\ncontent-length: 100000\r\n\r\nx');
    for (let i = 0; i < 40 && !c.socket.destroyed; i++) {
      c.socket.write('x');
      await new Promise((r) => setTimeout(r, 20));
      f.clock.advance(10_000); // 10 s between bytes: never idle for 30 s, but 400 s in all
    }
    assert.ok(await until(() => c.socket.destroyed, 3_000), 'the connection was cut at the request timeout');
    const reasons = (await f.events()).filter((e) => e['event.action'] === 'proxy.request.aborted').map((e) => e['event.reason']);
    assert.ok(reasons.includes('request-timeout'), JSON.stringify(reasons));
  });
});

describe('h2c smuggling: an Upgrade to anything but WebSocket is refused', () => {
  let f: GatewayFixture;
  let cookie: string;
  before(async () => {
    f = await startGatewayFixture();
    cookie = (await f.session('hana')).cookie;
  });
  after(async () => f.close());

  for (const listener of ['service', 'human'] as const) {
    for (const connection of ['Upgrade, HTTP2-Settings', 'keep-alive']) {
      it(`${listener}: Upgrade: h2c with Connection: ${connection} → 400 ERR_UPGRADE_REFUSED, the upstream sees nothing`, async () => {
        delete f.upstream.last.http;
        const c = await connect(f, listener, `GET /v1/things HTTP/1.1\r\nhost: {host}\r\ncookie: __Host-gatehouse=${cookie}\r\nupgrade: h2c\r\nconnection: ${connection}\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`);
        assert.ok(await until(() => c.text().includes('\r\n\r\n{'), 3_000), `an answer: ${c.text()}`);
        c.socket.destroy();
        assert.match(c.text(), /^HTTP\/1\.1 400 /);
        assert.match(c.text(), /ERR_UPGRADE_REFUSED/);
        assert.equal(f.upstream.last.http, undefined, 'nothing reached the upstream');
        const id = /"requestId":"([^"]+)"/.exec(c.text())?.[1];
        const mine = (await f.events()).filter((e) => e['gatehouse.request_id'] === id);
        assert.equal(mine.length, 1, JSON.stringify(mine));
      });
    }
  }
});
