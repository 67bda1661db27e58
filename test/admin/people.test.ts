// The authenticator lifecycle commands (issue 11 §2): `user keys`, `user key remove`,
// `user enable`, `user roles add|remove|set`, `user delete`, `totp unassign`. Each change
// reaches every replica through the store (two gateways share one here), and each command is
// audited with who ran it and what it acted on, by the one helper both CLI paths use.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { getUser } from '../../src/authenticate/index.js';
import { isGatehouseError } from '../../src/errors.js';
import { text } from '../../src/store/index.js';
import { runAuditedOp, type StoreOpName } from '../../src/admin/ops.js';
import { ACTOR_HEADER, OPS_PATH, readAdminToken } from '../../src/admin/local-api.js';
import type { AuditEvent } from '../../src/contracts/audit.js';
import { attestedKey, auditEvents, completeEnrollment, enroll, errorCode, jar, login, makeEnv, settle, startGateway, whoAmI, LOGIN, type Env, type Gateway } from '../authenticate/harness.js';
import { SoftAuthenticator } from '../authenticate/soft-authenticator.js';

describe('people: the authenticator lifecycle, on every replica, audited', () => {
  let env: Env;
  let a: Gateway;
  let b: Gateway;
  const events: AuditEvent[] = [];
  const actor = { kind: 'cli' as const, id: 'ops@bastion-1' };

  before(async () => {
    env = await makeEnv();
    a = await startGateway(env, { replicaId: 'h-a' });
    b = await startGateway(env, { replicaId: 'h-b' });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await env?.close();
  });

  /** What `gatehouse <command>` runs on the store (the CLI's direct path), with its audit sink. */
  function op<T>(name: StoreOpName, args: unknown): Promise<T> {
    return runAuditedOp(name, env.store, args, env.clock, { actor, audit: { append: (e) => void events.push(e) }, channel: 'store' }) as Promise<T>;
  }
  const last = (action: string): AuditEvent | undefined => events.filter((e) => e['event.action'] === action).at(-1);
  const credentialId = (key: SoftAuthenticator, i = 0): string => key.credentials[i]!.id.toString('base64url');

  /** A second key for an enrolled person: a new link, confirmed with their OTP token. */
  async function addKey(u: { id: string; seed: string }, key: SoftAuthenticator): Promise<void> {
    const link = await op<{ token: string }>('user.enroll', { id: u.id, enrollmentTtlMs: 86_400_000 });
    env.clock.advance(60_000);
    await completeEnrollment(env, a, link.token, key, u.seed);
  }

  it("a removed security key's sessions end on every replica, the person's other key keeps working, and the removed key signs in no more", async () => {
    const key1 = new SoftAuthenticator();
    const u = await enroll(env, a, 'kim', ['payments:ops-admin'], key1);
    const key2 = attestedKey(env);
    await addKey(u, key2);
    env.clock.advance(60_000);
    const s1 = (await login(env, a, u)).cookies;
    env.clock.advance(30_000);
    const s2 = (await login(env, b, { ...u, key: key2 })).cookies;
    for (const gw of [a, b]) assert.equal((await whoAmI(gw, s1)).status, 200);
    const r = await op<{ credentialId: string; remaining: number; sessionsEnded: number }>('user.key.remove', { id: 'kim', credential: credentialId(key1).slice(0, 10) });
    assert.deepEqual(r, { user: 'kim', credentialId: credentialId(key1), remaining: 1, sessionsEnded: 1 });
    await settle(env);
    assert.equal((await whoAmI(a, s1)).status, 401, 'ended on the replica that made it');
    assert.equal((await whoAmI(b, s1)).status, 401, 'ended on the other replica');
    assert.equal((await whoAmI(b, s2)).status, 200, 'the session of the other key stays');
    env.clock.advance(60_000);
    await assert.rejects(login(env, b, u), /ERR_WEBAUTHN_UNKNOWN_CREDENTIAL/);
    assert.equal((await env.store.get(`/gatehouse/webauthn/${credentialId(key1)}`)), undefined, 'the record is gone');
    const e = last('admin.user.key.remove');
    assert.equal(e?.['gatehouse.actor'], 'ops@bastion-1');
    assert.equal(e?.['user.id'], 'kim');
    assert.equal(e?.['gatehouse.credential_id'], credentialId(key1));
    assert.equal(e?.['gatehouse.sessions_ended'], 1);
    assert.equal(e?.['event.outcome'], 'success');
  });

  it('a credential id that is not the person\'s (or a prefix matching none) is refused with ERR_CREDENTIAL_NOT_FOUND, audited as a failure', async () => {
    await assert.rejects(op('user.key.remove', { id: 'kim', credential: 'AAAAAAAAAAAAAAAA' }), (err: unknown) => isGatehouseError(err, 'ERR_CREDENTIAL_NOT_FOUND'));
    await assert.rejects(op('user.key.remove', { id: 'kim', credential: 'Ab' }), (err: unknown) => isGatehouseError(err, 'ERR_CREDENTIAL_NOT_FOUND'), 'too short a prefix');
    const e = last('admin.user.key.remove');
    assert.equal(e?.['event.outcome'], 'failure');
    assert.equal(e?.['gatehouse.error_code'], 'ERR_CREDENTIAL_NOT_FOUND');
    assert.equal(e?.['user.id'], 'kim');
  });

  it('user keys lists each key with its AAGUID, whether its attestation verified, created and last used, and the OTP token', async () => {
    const r = await op<{ credentials: { id: string; aaguid: string; attestationVerified: boolean; createdAt: number; lastUsedAt?: number }[]; otp: { kind: string; serial: string } }>('user.keys', { id: 'kim' });
    assert.equal(r.credentials.length, 1);
    assert.equal(r.credentials[0]!.attestationVerified, true);
    assert.equal(r.credentials[0]!.aaguid, '00000000-0000-0000-0000-000000000000');
    assert.equal(typeof r.credentials[0]!.lastUsedAt, 'number');
    assert.equal(r.otp.kind, 'hardware');
    assert.equal(JSON.stringify(r).includes('publicKey'), false, 'never the public key');
    assert.equal(last('admin.user.keys')?.['user.id'], 'kim');
  });

  it('a disabled person can be enabled again and re-enrolled; a new link for a disabled person is refused until then', async () => {
    const key = new SoftAuthenticator();
    const u = await enroll(env, a, 'lou', ['payments:ops-admin'], key);
    env.clock.advance(60_000);
    const s = (await login(env, a, u)).cookies;
    await op('user.disable', { id: 'lou' });
    await settle(env);
    assert.equal((await whoAmI(b, s)).status, 401);
    await assert.rejects(op('user.enroll', { id: 'lou', enrollmentTtlMs: 86_400_000 }), (err: unknown) => isGatehouseError(err, 'ERR_USER_DISABLED'));
    const enabled = await op<{ user: { status: string }; changed: boolean }>('user.enable', { id: 'lou' });
    assert.deepEqual([enabled.changed, enabled.user.status], [true, 'active']);
    await settle(env);
    env.clock.advance(60_000);
    assert.equal((await whoAmI(b, (await login(env, b, u)).cookies)).user, 'lou', 'signs in again on any replica');
    // and may enroll a new key (e.g. the old one was lost while disabled)
    const fresh = attestedKey(env);
    await addKey(u, fresh);
    assert.equal((await getUser(env.store, 'lou'))?.credentialIds?.length, 2);
    assert.deepEqual((await op<{ changed: boolean }>('user.enable', { id: 'lou' })).changed, false, 'enabling an active user changes nothing');
    assert.equal(last('admin.user.enable')?.['gatehouse.target'], 'user:lou');
  });

  it("removing a role ends the person's sessions on every replica: a session cannot keep roles the person lost", async () => {
    const u = await enroll(env, a, 'max', ['payments:ops-admin', 'ops:viewer'], new SoftAuthenticator());
    env.clock.advance(60_000);
    const { cookies } = await login(env, a, u, { host: 'app.example.org' });
    assert.equal((await b.request({ url: '/v1/x', host: 'app.example.org', cookies, accept: 'application/json' })).status, 200);
    const r = await op<{ changed: boolean; sessionsEnded: number; user: { roles: Record<string, string[]> } }>('user.roles', { id: 'max', change: 'remove', roles: ['payments:ops-admin'] });
    assert.deepEqual([r.changed, r.sessionsEnded, r.user.roles], [true, 1, { ops: ['viewer'] }]);
    await settle(env);
    for (const gw of [a, b]) assert.equal(errorCode(await gw.request({ url: '/v1/x', host: 'app.example.org', cookies, accept: 'application/json' })), 'ERR_SESSION_EXPIRED');
    env.clock.advance(60_000);
    const again = (await login(env, b, u, { host: 'app.example.org' })).cookies;
    assert.equal(errorCode(await a.request({ url: '/v1/x', host: 'app.example.org', cookies: again, accept: 'application/json' })), 'ERR_POLICY_DENIED');
    // add and set work on the same map; an unchanged map ends nothing
    assert.deepEqual((await op<{ user: { roles: Record<string, string[]> } }>('user.roles', { id: 'max', change: 'add', roles: ['payments:viewer'] })).user.roles, { ops: ['viewer'], payments: ['viewer'] });
    assert.deepEqual(await op<{ changed: boolean; sessionsEnded: number }>('user.roles', { id: 'max', change: 'add', roles: ['payments:viewer'] }).then((x) => [x.changed, x.sessionsEnded]), [false, 0]);
    assert.deepEqual((await op<{ user: { roles: Record<string, string[]> } }>('user.roles', { id: 'max', change: 'set', roles: [] })).user.roles, {});
    await assert.rejects(op('user.roles', { id: 'max', change: 'add', roles: ['no-namespace'] }), (err: unknown) => isGatehouseError(err, 'ERR_USER_INVALID'));
    const e = last('admin.user.roles');
    assert.equal(e?.['event.outcome'], 'failure');
    assert.equal(e?.['gatehouse.error_code'], 'ERR_USER_INVALID');
  });

  it("a deleted person's sessions end, their keys cannot sign in as a new person of the same id, and their hardware token goes back to the pool", async () => {
    const key = new SoftAuthenticator();
    const u = await enroll(env, a, 'ned', ['payments:ops-admin'], key);
    env.clock.advance(60_000);
    const s = (await login(env, a, u)).cookies;
    const r = await op<{ credentialsDeleted: number; sessionsEnded: number }>('user.delete', { id: 'ned' });
    assert.deepEqual([r.credentialsDeleted, r.sessionsEnded], [1, 1]);
    await settle(env);
    assert.equal((await whoAmI(b, s)).status, 401);
    assert.equal(await getUser(env.store, 'ned'), undefined);
    assert.equal(await env.store.get('/gatehouse/totp/ned'), undefined);
    const token = JSON.parse(text((await env.store.get(`/gatehouse/totp-tokens/${u.serial}`))!.value)) as { assignedTo?: string; lastStep?: number };
    assert.equal(token.assignedTo, undefined);
    assert.ok((token.lastStep ?? 0) > 0, 'keeps the last step it accepted');
    // the same id again: the old key is not theirs
    await op('user.add', { id: 'ned', roles: ['payments:ops-admin'], enrollmentTtlMs: 86_400_000 });
    await op('totp.assign', { serial: u.serial, user: 'ned' });
    await op('user.enable', { id: 'ned' });
    env.clock.advance(60_000);
    await assert.rejects(login(env, a, u), /login\/webauthn: .*ERR_WEBAUTHN_UNKNOWN_CREDENTIAL/);
    assert.equal(last('admin.user.delete')?.['gatehouse.sessions_ended'], 1);
  });

  it('an unassigned OTP token ends the sessions proven with it, and assigned again it still refuses the codes it accepted', async () => {
    const u = await enroll(env, a, 'ola', ['payments:ops-admin'], new SoftAuthenticator());
    env.clock.advance(60_000);
    const usedAt = env.clock.now() + 30_000;
    const s = (await login(env, a, u, { totpAt: usedAt })).cookies;
    const r = await op<{ user: string; kind: string; sessionsEnded: number }>('totp.unassign', { serial: u.serial });
    assert.deepEqual(r, { serial: u.serial, user: 'ola', kind: 'hardware', sessionsEnded: 1 });
    await settle(env);
    assert.equal((await whoAmI(b, s)).status, 401);
    await assert.rejects(login(env, a, u), /login\/totp: .*ERR_TOTP_NOT_ENROLLED/);
    await assert.rejects(op('totp.unassign', { serial: u.serial }), (err: unknown) => isGatehouseError(err, 'ERR_TOTP_TOKEN_NOT_ASSIGNED'));
    await assert.rejects(op('totp.unassign', { serial: 'NO-SUCH-1' }), (err: unknown) => isGatehouseError(err, 'ERR_TOTP_TOKEN_UNKNOWN'));
    await op('totp.assign', { serial: u.serial, user: 'ola' });
    await assert.rejects(login(env, a, u, { totpAt: usedAt }), /login\/totp: .*ERR_TOTP_REPLAY/);
    const e = events.filter((x) => x['event.action'] === 'admin.totp.unassign').find((x) => x['event.outcome'] === 'success');
    assert.equal(e?.['user.id'], 'ola');
    assert.equal(e?.['gatehouse.totp_serial'], u.serial);
  });

  it("through a running gateway's local API each command lands in that gateway's chain, with the actor the CLI names and the target", async () => {
    const token = await readAdminToken(path.join(env.dir, 'data'));
    const call = (name: string, body: unknown, who = 'alice@bastion-2') =>
      b.app.admin.inject({ method: 'POST', url: `${OPS_PATH}${name}`, headers: { authorization: `Bearer ${token}`, [ACTOR_HEADER]: who, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    assert.equal((await call('user.keys', { id: 'kim' })).statusCode, 200);
    assert.equal((await call('user.key.remove', { id: 'kim', credential: 'ZZZZZZZZZZZZ' })).statusCode, 404);
    assert.equal((await call('user.keys', { id: 'kim' }, 'not an actor\n')).statusCode, 200);
    const chain = (await auditEvents(env, b)).filter((e) => String(e['event.action']).startsWith('admin.user.key'));
    const keys = chain.filter((e) => e['event.action'] === 'admin.user.keys');
    assert.deepEqual(keys.map((e) => [e['gatehouse.actor'], e['gatehouse.channel'], e['user.id'], e['event.outcome']]), [['alice@bastion-2', 'local-api', 'kim', 'success'], ['local-operator', 'local-api', 'kim', 'success']]);
    const failed = chain.find((e) => e['event.action'] === 'admin.user.key.remove');
    assert.deepEqual([failed?.['event.outcome'], failed?.['gatehouse.error_code'], failed?.['gatehouse.target']], ['failure', 'ERR_CREDENTIAL_NOT_FOUND', 'user:kim credential:ZZZZZZZZZZZZ']);
  });

  it('the enrollment page of a person deleted meanwhile stops at the next step', async () => {
    const link = await op<{ token: string }>('user.add', { id: 'pat', roles: [], enrollmentTtlMs: 86_400_000 });
    await op('user.delete', { id: 'pat' });
    assert.equal(errorCode(await a.request({ url: '/.gatehouse/enroll/start', cookies: jar(), body: { token: link.token }, origin: LOGIN })), 'ERR_ENROLLMENT_INVALID');
  });
});
