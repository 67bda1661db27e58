// A route that demands an assurance level (routes[].acr) refuses a session that proved less:
// an aal2 session (a software key or a phone-app seed) cannot reach an aal3 application.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AAL3_HOST, call, openWebSocket, startGatewayFixture, type GatewayFixture } from './fixture.js';

describe('routes[].acr: an application that demands aal3', () => {
  let f: GatewayFixture;
  before(async () => {
    f = await startGatewayFixture();
  });
  after(async () => f.close());

  it('an aal2 session is refused with 403 ERR_ACR_INSUFFICIENT, audited once, over HTTP and WebSocket', async () => {
    const weak = await f.session('wes', { payments: ['ops-admin'] }, AAL3_HOST, 'aal2');
    delete f.upstream.last.http;
    const r = await call(f, { listener: 'human', host: AAL3_HOST, cookie: weak.cookie });
    assert.equal(r.status, 403, r.body);
    const body = JSON.parse(r.body) as { error: { code: string }; requestId: string };
    assert.equal(body.error.code, 'ERR_ACR_INSUFFICIENT');
    assert.equal(f.upstream.last.http, undefined, 'the upstream saw nothing');
    const mine = (await f.events()).filter((e) => e['gatehouse.request_id'] === body.requestId);
    assert.equal(mine.length, 1, JSON.stringify(mine));
    await assert.rejects(openWebSocket(f, { listener: 'human', host: AAL3_HOST, cookie: weak.cookie }), (e: { status?: number }) => e.status === 403);
  });

  it('an aal3 session reaches it', async () => {
    const strong = await f.session('ada', { payments: ['ops-admin'] }, AAL3_HOST, 'aal3');
    const r = await call(f, { listener: 'human', host: AAL3_HOST, cookie: strong.cookie });
    assert.equal(r.status, 200, r.body);
  });
});
