// A hostile upstream tries to set the gateway's own cookies (__Host-gatehouse: the browser would
// be signed in as someone else; -state and -login: a sign-in or step-up hijacked) on every kind
// of answer: plain, 101, 103 Early Hints, trailers, folded and oddly spelled headers.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { API, APP, call, parseResponses, rawExchange, startBench, type Bench } from './fixture.js';

const GATEWAY_COOKIES = ['__host-gatehouse', '__host-gatehouse-state', '__host-gatehouse-login'];

/** The names the browser would store from these Set-Cookie lines (RFC 6265bis 5.6: name before the first '=', trimmed; none: nameless). */
function browserCookieNames(lines: readonly string[]): string[] {
  return lines.map((l) => {
    const pair = l.split(';')[0]!;
    const eq = pair.indexOf('=');
    return eq < 0 ? '' : pair.slice(0, eq).trim();
  });
}

/** What a browser would send back for a nameless cookie: just its value (RFC 6265bis 5.7.3). */
function serializedAs(line: string): string {
  const pair = line.split(';')[0]!;
  const eq = pair.indexOf('=');
  return eq < 0 ? pair.trim() : eq === 0 ? pair.slice(1).trim() : pair.trim();
}

function setCookieLines(headers: [string, string][]): string[] {
  return headers.filter(([k]) => k === 'set-cookie').map(([, v]) => v);
}

/** The upstream answers every request with these raw bytes, then closes. */
function answerRaw(b: Bench, bytes: string): void {
  b.upstream.onRequest = (_req, res) => {
    res.socket!.end(bytes, 'latin1');
  };
}

describe('attack: an upstream sets the gateway cookies', () => {
  let b: Bench;
  let cookie: string;
  before(async () => {
    b = await startBench();
  });
  after(async () => b.close());
  beforeEach(async () => {
    b.upstream.reset();
    cookie = (await b.session({ userId: `u${Math.random().toString(36).slice(2, 8)}` })).cookie;
  });

  async function through(listener: 'service' | 'human', upstreamBytes: string): Promise<ReturnType<typeof parseResponses>> {
    answerRaw(b, upstreamBytes);
    const host = listener === 'human' ? APP : API;
    const raw = await rawExchange(b, `GET /v1/things HTTP/1.1\r\nHost: ${host}\r\nCookie: __Host-gatehouse=${cookie}\r\nConnection: close\r\n\r\n`, { listener });
    return parseResponses(raw);
  }

  const SPELLINGS = [
    '__Host-gatehouse=planted; Path=/; Secure; HttpOnly',
    '__HOST-GATEHOUSE=planted; Path=/; Secure',
    ' __Host-gatehouse =planted; Path=/; Secure',
    '\t__host-gatehouse\t=planted; Path=/; Secure',
    '__Host-gatehouse-state=planted; Path=/; Secure',
    '__Host-gatehouse-login=planted; Path=/; Secure',
    '__Host-Gatehouse-Login=planted; Path=/; Secure',
  ];

  for (const listener of ['human', 'service'] as const) {
    it(`${listener}: Set-Cookie in every spelling, duplicated and under an upper-case header name, is cut from a 200`, async () => {
      const lines = SPELLINGS.map((l, i) => `${i % 2 === 0 ? 'Set-Cookie' : 'SET-COOKIE'}: ${l}\r\n`).join('');
      const [r] = await through(listener, `HTTP/1.1 200 OK\r\n${lines}Set-Cookie: app=1; Path=/\r\nX-Gatehouse-User: root\r\nContent-Length: 2\r\n\r\nok`);
      assert.equal(r?.status, 200, JSON.stringify(r));
      assert.deepEqual(browserCookieNames(setCookieLines(r.headers)), ['app'], 'only the application cookie reaches the browser');
      assert.ok(!r.headers.some(([k]) => k.startsWith('x-gatehouse-')), 'no x-gatehouse-* claim from the upstream');
    });
  }

  it('101: a raw WebSocket answer with the cookies in several spellings keeps none of them', async () => {
    b.upstream.onUpgrade = (req, socket: Duplex) => {
      const key = String(req.headers['sec-websocket-key']);
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${acceptOf(key)}\r\n` +
          SPELLINGS.map((l) => `Set-Cookie: ${l}\r\n`).join('') +
          'Set-Cookie: app=1; Path=/\r\nX-Gatehouse-User: root\r\n\r\n',
      );
    };
    const raw = await rawExchange(
      b,
      `GET /ws HTTP/1.1\r\nHost: ${APP}\r\nCookie: __Host-gatehouse=${cookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      { listener: 'human', waitMs: 800 },
    );
    const [r] = parseResponses(raw);
    assert.equal(r?.status, 101, raw.slice(0, 300));
    assert.deepEqual(browserCookieNames(setCookieLines(r.headers)), ['app'], 'only the application cookie on the 101');
    assert.ok(!r.headers.some(([k]) => k.startsWith('x-gatehouse-')), 'no x-gatehouse-* claim on the 101');
  });

  it('103 Early Hints carrying Set-Cookie never reaches the client (no 1xx is relayed)', async () => {
    const rs = await through('human', 'HTTP/1.1 103 Early Hints\r\nSet-Cookie: __Host-gatehouse=planted; Path=/; Secure\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    assert.deepEqual(
      rs.map((r) => r.status),
      [200],
      'one final answer, no 103',
    );
    assert.deepEqual(setCookieLines(rs[0]!.headers), []);
  });

  it('Set-Cookie in a chunked trailer is not relayed', async () => {
    const rs = await through('human', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Set-Cookie\r\n\r\n2\r\nok\r\n0\r\nSet-Cookie: __Host-gatehouse=planted; Path=/; Secure\r\n\r\n');
    assert.equal(rs[0]?.status, 200);
    assert.equal(rs[0]?.body, 'ok');
    const raw = JSON.stringify(rs);
    assert.ok(!raw.includes('planted'), `the trailer's cookie reached the client: ${raw}`);
  });

  it('a Set-Cookie folded onto a second line (obs-fold) is refused as a bad upstream answer: 502, nothing relayed', async () => {
    const rs = await through('human', 'HTTP/1.1 200 OK\r\nSet-Cookie: app=1\r\n __Host-gatehouse=planted; Path=/; Secure\r\nContent-Length: 2\r\n\r\nok');
    assert.equal(rs[0]?.status, 502, JSON.stringify(rs));
    assert.ok(!JSON.stringify(rs).includes('planted'), 'nothing of the folded line reached the client');
  });

  it('an upstream answer framed both ways (Content-Length and chunked) is a 502, never relayed', async () => {
    const rs = await through('service', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
    assert.equal(rs[0]?.status, 502, JSON.stringify(rs));
  });

  it(
    'a nameless cookie whose value is "__Host-gatehouse=..." is cut (browsers without the 6265bis nameless-prefix check send it back as __Host-gatehouse=planted)',
    async () => {
      const rs = await through('human', 'HTTP/1.1 200 OK\r\nSet-Cookie: =__Host-gatehouse=planted; Path=/; Secure\r\nSet-Cookie: =__host-gatehouse-login=planted; Path=/; Secure\r\nContent-Length: 2\r\n\r\nok');
      assert.equal(rs[0]?.status, 200);
      const sentBack = setCookieLines(rs[0].headers).map(serializedAs);
      const planted = sentBack.filter((c) => GATEWAY_COOKIES.some((n) => c.toLowerCase().startsWith(`${n}=`)));
      assert.deepEqual(planted, [], `cookies a browser would send back under a gateway name: ${JSON.stringify(sentBack)}`);
    },
  );

  it(
    "an upstream cannot switch off HSTS for the gateway's host (Strict-Transport-Security: max-age=0) or wipe its cookies (Clear-Site-Data)",
    async () => {
      const rs = await through('human', 'HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=0\r\nClear-Site-Data: "cookies", "storage"\r\nContent-Length: 2\r\n\r\nok');
      assert.equal(rs[0]?.status, 200);
      const hsts = rs[0].headers.filter(([k]) => k === 'strict-transport-security').map(([, v]) => v);
      assert.ok(!hsts.some((v) => /max-age\s*=\s*0\b/i.test(v)), `HSTS turned off by the upstream: ${JSON.stringify(hsts)}`);
      assert.ok(!rs[0].headers.some(([k]) => k === 'clear-site-data'), 'Clear-Site-Data from the upstream reached the browser');
    },
  );

  it('sanity: the session the upstream tried to replace still works', async () => {
    const r = await call(b, { listener: 'human', cookie });
    assert.equal(r.status, 200, r.body);
  });
});

/** RFC 6455 4.2.2 */
function acceptOf(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}
