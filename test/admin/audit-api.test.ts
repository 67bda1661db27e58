// The audit log through the admin API: security auditors page through it with a cursor;
// anyone else is refused, and every read is itself audited.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeEnv, startGateway, enroll, login, auditEvents, type Env, type Gateway, type Cookies } from '../authenticate/harness.js';

interface Page {
  events: { replica: string; seq: number; event: Record<string, unknown> }[];
  nextCursor?: string;
}

describe('admin API: audit log', () => {
  let env: Env;
  let gw: Gateway;
  let auditor: Cookies;
  let operator: Cookies;

  before(async () => {
    env = await makeEnv();
    gw = await startGateway(env);
    ({ cookies: auditor } = await login(env, gw, await enroll(env, gw, 'ada', ['gatehouse:security-auditor'])));
    ({ cookies: operator } = await login(env, gw, await enroll(env, gw, 'bob', ['payments:ops-admin'])));
    await gw.app.audit.flush();
  });
  after(async () => {
    await gw?.close();
    await env?.close();
  });

  it('pages through filtered events with a cursor, each event once', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 50; i++) {
      const url = `/.gatehouse/admin/api/audit?action=authentication.*&limit=3${cursor !== undefined ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await gw.request({ url, cookies: auditor, accept: 'application/json' });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.headers['cache-control'], 'no-store');
      const page = res.json<Page>();
      assert.ok(page.events.length <= 3);
      for (const e of page.events) {
        assert.match(String(e.event['event.action']), /^authentication\./);
        seen.push(`${e.replica}/${e.seq}`);
      }
      cursor = page.nextCursor;
      if (cursor === undefined || page.events.length === 0) break;
    }
    assert.ok(seen.length >= 6, `expected the logins' factor events, got ${seen.length}`);
    assert.equal(new Set(seen).size, seen.length, 'an event came twice');
    const users = await gw.request({ url: '/.gatehouse/admin/api/audit?user=bob&limit=1000', cookies: auditor, accept: 'application/json' });
    assert.ok(users.json<Page>().events.every((e) => e.event['user.id'] === 'bob'));
  });

  it('refuses people without an auditor role, and callers without a session', async () => {
    const res = await gw.request({ url: '/.gatehouse/admin/api/audit', cookies: operator, accept: 'application/json' });
    assert.equal(res.status, 403);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'ERR_ADMIN_FORBIDDEN');
    const anon = await gw.request({ url: '/.gatehouse/admin/api/audit', accept: 'application/json' });
    assert.equal(anon.status, 401);
    const bad = await gw.request({ url: '/.gatehouse/admin/api/audit?limit=0', cookies: auditor, accept: 'application/json' });
    assert.equal(bad.status, 400);
  });

  it('audits every read of the log', async () => {
    const reads = (await auditEvents(env, gw)).filter((e) => e['event.action'] === 'admin.audit.query');
    assert.ok(reads.some((e) => e['event.outcome'] === 'success' && e['user.id'] === 'ada'));
    assert.ok(reads.some((e) => e['event.outcome'] === 'failure' && e['user.id'] === 'bob'));
  });
});
