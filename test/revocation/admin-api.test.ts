// Issue 11 §4, §5 in the revocation admin API: revoking validates the target like the CLI
// (an unknown user, a service of another trust domain: refused unless `force: true`), lifting
// (POST .../revoke/lift) and listing (GET .../revocations) exist, and every call is audited as
// the same operator action as the CLI's, its actor the session's user. Before, the API had
// neither lift nor list, stored any well-formed id, and its event named the admin as user.id.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { GatehouseError } from '../../src/errors.js';
import { ManualClock } from '../../src/lib/clock.js';
import { openEmbeddedStore, type EmbeddedStore } from '../../src/store/embedded/index.js';
import { isAuditAction, type AuditEvent } from '../../src/contracts/audit.js';
import { LIFT_API_PATH, REVOCATIONS_API_PATH, REVOKE_API_PATH, revocationApiRoutes, type AdminCaller } from '../../src/revocation/index.js';

const ORIGIN = 'https://admin.example.org';
const TD = 'example.org';

describe('revocation admin API: validated, listed, liftable, audited with the session as actor', () => {
  let dir: string;
  let store: EmbeddedStore;
  let app: FastifyInstance;
  const clock = new ManualClock(Date.parse('2030-01-01T00:00:00Z'));
  const events: AuditEvent[] = [];
  const callers = new Map<string, AdminCaller>();

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gh-rev-api-'));
    store = await openEmbeddedStore({ kind: 'embedded', path: dir, clock });
    await store.put('/gatehouse/users/erin', JSON.stringify({ format: 1, id: 'erin', roles: {}, status: 'active', createdAt: 0 }));
    const now = clock.now();
    callers.set('heidi', { userId: 'heidi', sid: 'sid-heidi-0000000001', roles: { gatehouse: ['security-admin'] }, lastWebAuthnAt: now });
    callers.set('ivan', { userId: 'ivan', sid: 'sid-ivan-00000000001', roles: { gatehouse: ['security-auditor'] }, lastWebAuthnAt: now });
    callers.set('stale', { userId: 'stale', sid: 'sid-stale-0000000001', roles: { gatehouse: ['security-admin'] }, lastWebAuthnAt: now - 6 * 60_000 });
    app = Fastify();
    await revocationApiRoutes(app, {
      store,
      bus: undefined,
      clock,
      audit: { append: (e) => void events.push(e) },
      trustDomain: TD,
      caller: (req) => callers.get(String(req.headers['x-test-user'])) ?? new GatehouseError('ERR_SESSION_REQUIRED'),
      checkOrigin: (req) => {
        if (req.headers.origin !== ORIGIN) throw new GatehouseError('ERR_ORIGIN_REFUSED');
      },
    });
  });
  after(async () => {
    await app?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function call(user: string | undefined, url: string, body?: unknown, origin: string | undefined = ORIGIN): Promise<{ status: number; code?: string; json: Record<string, unknown> }> {
    const res = await app.inject({
      method: body === undefined ? 'GET' : 'POST',
      url,
      headers: { ...(user !== undefined ? { 'x-test-user': user } : {}), ...(origin !== undefined ? { origin } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
    });
    const json = JSON.parse(res.body) as Record<string, unknown>;
    const code = (json.error as { code?: string } | undefined)?.code;
    return { status: res.statusCode, ...(code !== undefined ? { code } : {}), json };
  }
  const last = (): AuditEvent => events.at(-1)!;

  it('refuses an unknown user (404 ERR_USER_NOT_FOUND) and a foreign SPIFFE ID (400) unless force: true, and says so in the event', async () => {
    const unknown = await call('heidi', REVOKE_API_PATH, { kind: 'user', id: 'nosuchuser' });
    assert.deepEqual([unknown.status, unknown.code], [404, 'ERR_USER_NOT_FOUND']);
    assert.match(String((unknown.json.error as { message: string }).message), /force: true/);
    assert.equal(await store.get('/gatehouse/revoked/user/nosuchuser'), undefined, 'nothing stored');
    assert.deepEqual(
      [last()['event.action'], last()['event.outcome'], last()['gatehouse.actor'], last()['gatehouse.actor_kind'], last()['gatehouse.channel'], last()['gatehouse.target'], last()['gatehouse.error_code']],
      ['admin.revoke', 'failure', 'heidi', 'session', 'admin-api', 'user:nosuchuser', 'ERR_USER_NOT_FOUND'],
    );
    const forced = await call('heidi', REVOKE_API_PATH, { kind: 'user', id: 'nosuchuser', force: true, reason: 'ahead of time' });
    assert.deepEqual([forced.status, forced.json.forced, forced.json.by], [200, 'user-not-found', 'user:heidi']);
    assert.deepEqual([last()['event.outcome'], last()['user.id'], last()['gatehouse.revocation_force'], last()['gatehouse.revocation_forced'], last()['gatehouse.sid']], ['success', 'nosuchuser', true, 'user-not-found', 'sid-heidi-0000000001']);

    const foreign = await call('heidi', REVOKE_API_PATH, { kind: 'service', id: 'spiffe://exmple.org/ns/a/sa/b' });
    assert.deepEqual([foreign.status, foreign.code], [400, 'ERR_REVOCATION_INVALID']);
    const ours = await call('heidi', REVOKE_API_PATH, { kind: 'service', id: `spiffe://${TD}/ns/a/sa/b`, reason: 'retired' });
    assert.equal(ours.status, 200);
    assert.deepEqual([last()['gatehouse.revocation_kind'], last()['gatehouse.revocation_id'], last()['gatehouse.revocation_reason']], ['service', `spiffe://${TD}/ns/a/sa/b`, 'retired']);
    assert.equal((await call('heidi', REVOKE_API_PATH, { kind: 'user', id: 'erin', force: 'yes' })).status, 400, 'force is a boolean');
  });

  it('lists what is revoked for auditors and admins; others are refused and audited', async () => {
    const list = await call('ivan', `${REVOCATIONS_API_PATH}?kind=user`, undefined, undefined);
    assert.equal(list.status, 200);
    assert.deepEqual((list.json.revocations as { id: string }[]).map((r) => r.id), ['nosuchuser']);
    assert.deepEqual([last()['event.action'], last()['gatehouse.actor'], last()['gatehouse.count']], ['admin.revoke.list', 'ivan', 1]);
    const anon = await call(undefined, REVOCATIONS_API_PATH, undefined, undefined);
    assert.deepEqual([anon.status, anon.code], [401, 'ERR_SESSION_REQUIRED']);
    assert.equal(last()['gatehouse.actor'], undefined, 'nobody was identified');
    assert.equal((await call('ivan', `${REVOCATIONS_API_PATH}?kind=users`, undefined, undefined)).status, 400);
  });

  it('lifts a revocation for a security admin with a fresh assertion and the right Origin; each refusal and the lift are audited', async () => {
    await call('heidi', REVOKE_API_PATH, { kind: 'user', id: 'erin', reason: 'stolen laptop' });
    const lift = { kind: 'user', id: 'erin', reason: 'laptop found' };
    assert.deepEqual((await call('ivan', LIFT_API_PATH, lift)).code, 'ERR_REVOCATION_FORBIDDEN', 'an auditor may not lift');
    assert.deepEqual((await call('stale', LIFT_API_PATH, lift)).code, 'ERR_STEP_UP_REQUIRED');
    assert.deepEqual((await call('heidi', LIFT_API_PATH, lift, 'https://evil.example.net')).code, 'ERR_ORIGIN_REFUSED');
    assert.notEqual(await store.get('/gatehouse/revoked/user/erin'), undefined, 'the refused calls lifted nothing');
    const ok = await call('heidi', LIFT_API_PATH, lift);
    assert.deepEqual([ok.status, ok.json.lifted, ok.json.id], [200, true, 'erin']);
    assert.equal(await store.get('/gatehouse/revoked/user/erin'), undefined);
    assert.deepEqual(
      [last()['event.action'], last()['event.outcome'], last()['gatehouse.actor'], last()['user.id'], last()['gatehouse.lift_reason'], last()['gatehouse.revoked_by']],
      ['admin.revoke.lift', 'success', 'heidi', 'erin', 'laptop found', 'user:heidi'],
    );
    const again = await call('heidi', LIFT_API_PATH, lift);
    assert.deepEqual([again.status, again.code], [404, 'ERR_REVOCATION_NOT_FOUND']);
    const cert = await call('heidi', LIFT_API_PATH, { kind: 'cert', id: '0a' });
    assert.deepEqual([cert.status, cert.code], [409, 'ERR_REVOCATION_PERMANENT']);
  });

  it('every event is an operator action from the closed list, on the admin-api channel', () => {
    assert.ok(events.length >= 12);
    for (const e of events) {
      assert.ok(isAuditAction(e['event.action']), String(e['event.action']));
      assert.equal(e['gatehouse.channel'], 'admin-api');
    }
  });
});
