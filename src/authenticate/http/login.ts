// Sign-in over HTTP: start (user name) -> each factor in the configured order -> a session.
// A pending sign-in lives in the store (hash of the __Host-gatehouse-login cookie, short
// lease); completing it is a compare-and-swap delete, so it yields one session only.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError, isGatehouseError } from '../../errors.js';
import { consumeRecord, readRecord, ttlSeconds, updateRecord } from '../lib/records.js';
import { randomSecret, sha256hex } from '../lib/digest.js';
import { clearCookie, readCookie, serializeCookie } from '../lib/cookies.js';
import { factorsFor } from '../factors.js';
import { safeReturnTo } from '../redirect.js';
import { getUser, USER_ID } from '../users.js';
import { finishAuthentication, startAuthentication } from '../webauthn/authentication.js';
import { verifyTotp } from '../totp/tokens.js';
import { HANDOFFS_PREFIX, LOGINS_PREFIX, LOGIN_COOKIE, SESSION_COOKIE, acrOf, amrOf, type Factor, type HandoffRecord, type LoginRecord, type UserRecord } from '../types.js';
import { bodyOf, type HumanContext } from './context.js';

const HANDOFF_TTL_MS = 60_000;

export function loginRoutes(app: FastifyInstance, c: HumanContext, limited: object): void {
  const { store, clock } = c;

  async function credentialIdsOf(username: string, user: UserRecord | undefined): Promise<string[]> {
    return user?.status === 'active' && (user.credentialIds ?? []).length > 0 ? [...user.credentialIds!] : [c.fakeCredentialId(username)];
  }

  async function loadLogin(req: FastifyRequest, purpose: LoginRecord['purpose']): Promise<{ login: LoginRecord; bound: string }> {
    const id = readCookie(req.headers, LOGIN_COOKIE);
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) throw new GatehouseError('ERR_LOGIN_EXPIRED', 'no sign-in in progress');
    const bound = sha256hex(id);
    const rec = await readRecord<LoginRecord>(store, LOGINS_PREFIX + bound);
    if (rec === undefined || rec.value.purpose !== purpose || clock.now() - rec.value.createdAt > c.pendingTtlMs) throw new GatehouseError('ERR_LOGIN_EXPIRED');
    return { login: rec.value, bound };
  }

  function nextFactor(login: LoginRecord): Factor | undefined {
    return login.factors.find((f) => !login.done.includes(f));
  }

  /** Audits a failed factor, counts it towards the lockout, raises the alert of a suspected clone. */
  async function factorFailed(req: FastifyRequest, username: string, factor: Factor, err: unknown): Promise<void> {
    if (!isGatehouseError(err) || !/^ERR_(WEBAUTHN|TOTP)_/.test(err.code)) return;
    c.event(req, factor === 'totp' ? 'authentication.totp' : 'authentication.webauthn', 'failure', { 'user.id': username, 'gatehouse.error_code': err.code, 'event.reason': err.message.slice(0, 300) });
    if (err.code === 'ERR_WEBAUTHN_COUNTER') {
      c.event(req, 'authentication.counter_regression', 'failure', {
        'event.kind': 'alert',
        'event.severity': 8,
        'user.id': username,
        'gatehouse.error_code': err.code,
        'event.reason': 'signature counter went backwards: cloned authenticator suspected; credential locked',
        'gatehouse.credential_id': typeof err.details?.credentialId === 'string' ? err.details.credentialId : '',
      });
    }
    if (await c.regulator.fail(username)) {
      c.event(req, 'authentication.lockout', 'failure', { 'user.id': username, 'event.kind': 'alert', 'event.severity': 5, 'event.reason': 'too many failed factor attempts' });
    }
  }

  async function checkNotLocked(req: FastifyRequest, username: string): Promise<void> {
    try {
      await c.regulator.check(username);
    } catch (err) {
      c.event(req, 'authentication.locked', 'failure', { 'user.id': username, 'gatehouse.error_code': 'ERR_USER_LOCKED' });
      throw err;
    }
  }

  /** The answer after a factor: the next one, or the session. */
  async function proceed(req: FastifyRequest, reply: FastifyReply, login: LoginRecord, bound: string): Promise<unknown> {
    const next = nextFactor(login);
    if (next === 'webauthn-uv') {
      const user = await getUser(store, login.username);
      const options = await startAuthentication({ store, clock, rp: c.rp, purpose: 'login', userId: login.username, bound, challengeTtlMs: c.challengeTtlMs, credentialIds: await credentialIdsOf(login.username, user) });
      return { next, options };
    }
    if (next === 'totp') return { next };
    // every factor is done: exactly one request turns this sign-in into a session
    const finished = await consumeRecord<LoginRecord>(store, LOGINS_PREFIX + bound);
    if (finished === undefined) throw new GatehouseError('ERR_LOGIN_EXPIRED', 'this sign-in already finished');
    const user = await getUser(store, login.username);
    if (user === undefined || user.status !== 'active') throw new GatehouseError('ERR_USER_DISABLED');
    await c.regulator.clear(login.username);
    const host = c.hostOf(req);
    const session = await c.sessions.create({
      userId: user.id,
      roles: user.roles,
      amr: amrOf(login.done),
      acr: acrOf(login.done),
      credentialId: login.credentialId ?? '',
      lastWebAuthnAt: login.lastWebAuthnAt ?? 0,
      host,
      ip: req.ip,
      userAgent: String(req.headers['user-agent'] ?? ''),
    });
    c.event(req, 'authentication.session', 'success', { 'user.id': user.id, 'gatehouse.sid': session.record.sid, 'gatehouse.amr': session.record.amr, 'gatehouse.acr': session.record.acr });
    void reply.header('set-cookie', [serializeCookie(SESSION_COOKIE, session.id, { maxAge: c.sessionAbsoluteMs / 1000 }), clearCookie(LOGIN_COOKIE)]);
    const [rdHost, ...rest] = login.returnTo.split('/');
    const path = `/${rest.join('/')}`;
    if (rdHost === host) return { redirect: path };
    // another route host: a one-time code its /.gatehouse/callback turns into that host's cookie
    const code = randomSecret();
    const lease = await store.grant(ttlSeconds(HANDOFF_TTL_MS));
    const handoff: HandoffRecord = { format: 1, sessionHash: session.hash, host: rdHost!, path, stateDigest: login.stateDigest ?? '', createdAt: clock.now() };
    await store.put(HANDOFFS_PREFIX + sha256hex(code), JSON.stringify(handoff), { lease: lease.id });
    return { redirect: `${c.originOf(rdHost!)}/.gatehouse/callback?code=${code}` };
  }

  app.post('/.gatehouse/login/start', limited, async (req, reply) => {
    c.checkOrigin(req);
    const body = bodyOf(req);
    const username = typeof body.username === 'string' ? body.username.trim().toLowerCase() : '';
    if (!USER_ID.test(username)) throw new GatehouseError('ERR_BAD_REQUEST', 'enter your user name');
    const returnTo = safeReturnTo(body.rd, c.returnPolicy(req));
    const stateDigest = typeof body.state === 'string' && /^[0-9a-f]{64}$/.test(body.state) ? body.state : undefined;
    // a session for another host is handed over only to the browser that was sent here from it
    if (returnTo.host !== c.hostOf(req) && stateDigest === undefined) throw new GatehouseError('ERR_REDIRECT_REFUSED', 'return address refused: another host without the state of a redirect from it');
    await checkNotLocked(req, username);
    const user = await getUser(store, username);
    const loginId = randomSecret();
    const bound = sha256hex(loginId);
    const login: LoginRecord = {
      format: 1,
      purpose: 'login',
      username,
      returnTo: `${returnTo.host}${returnTo.path}`,
      ...(stateDigest !== undefined ? { stateDigest } : {}),
      // an unknown or inactive user walks the default factors and fails at the first (no enumeration)
      factors: factorsFor(user?.status === 'active' ? user.roles : {}, c.mfa),
      done: [],
      createdAt: clock.now(),
    };
    const lease = await store.grant(ttlSeconds(c.pendingTtlMs));
    await store.put(LOGINS_PREFIX + bound, JSON.stringify(login), { lease: lease.id });
    void reply.header('set-cookie', serializeCookie(LOGIN_COOKIE, loginId, { maxAge: c.pendingTtlMs / 1000 }));
    c.event(req, 'authentication.start', 'success', { 'user.id': username });
    return proceed(req, reply, login, bound);
  });

  app.post('/.gatehouse/login/webauthn', limited, async (req, reply) => {
    c.checkOrigin(req);
    const body = bodyOf(req);
    const { login, bound } = await loadLogin(req, 'login');
    // WebAuthn must be the factor the configured order expects now
    if (nextFactor(login) !== 'webauthn-uv') throw new GatehouseError('ERR_LOGIN_FACTOR_ORDER', `expected ${nextFactor(login) ?? 'no more factors'}, got webauthn-uv`);
    await checkNotLocked(req, login.username);
    let result;
    try {
      result = await finishAuthentication({ store, clock, rp: c.rp, purpose: 'login', userId: login.username, bound, challengeTtlMs: c.challengeTtlMs, response: body.response });
    } catch (err) {
      await factorFailed(req, login.username, 'webauthn-uv', err);
      throw err;
    }
    // The user must still be allowed in (told only to whoever proved the key)
    const user = await getUser(store, login.username);
    if (user?.status !== 'active') {
      c.event(req, 'authentication.webauthn', 'failure', { 'user.id': login.username, 'gatehouse.error_code': 'ERR_USER_DISABLED' });
      throw new GatehouseError('ERR_USER_DISABLED');
    }
    c.event(req, 'authentication.webauthn', 'success', { 'user.id': login.username, 'gatehouse.credential_id': result.credential.id, 'gatehouse.aaguid': result.credential.aaguid });
    const updated = await updateRecord<LoginRecord>(store, LOGINS_PREFIX + bound, (l) => ({ ...l, done: [...l.done, 'webauthn-uv'], credentialId: result.credential.id, lastWebAuthnAt: result.at }));
    if (updated === undefined) throw new GatehouseError('ERR_LOGIN_EXPIRED');
    return proceed(req, reply, updated, bound);
  });

  app.post('/.gatehouse/login/totp', limited, async (req, reply) => {
    c.checkOrigin(req);
    const body = bodyOf(req);
    const { login, bound } = await loadLogin(req, 'login');
    // TOTP must be the factor the configured order expects now
    if (nextFactor(login) !== 'totp') throw new GatehouseError('ERR_LOGIN_FACTOR_ORDER', `expected ${nextFactor(login) ?? 'no more factors'}, got totp`);
    await checkNotLocked(req, login.username);
    const code = typeof body.code === 'string' ? body.code : '';
    let step;
    try {
      const user = await getUser(store, login.username);
      if (user?.status !== 'active') throw new GatehouseError('ERR_TOTP_INVALID', 'expected the code of an enrolled token, got another');
      step = await verifyTotp({ store, kek: c.kek, clock, userId: login.username, code });
    } catch (err) {
      await factorFailed(req, login.username, 'totp', err);
      throw err;
    }
    c.event(req, 'authentication.totp', 'success', { 'user.id': login.username, 'gatehouse.totp_serial': step.serial });
    const updated = await updateRecord<LoginRecord>(store, LOGINS_PREFIX + bound, (l) => (l.done.includes('totp') ? undefined : { ...l, done: [...l.done, 'totp'] }));
    if (updated === undefined) throw new GatehouseError('ERR_LOGIN_EXPIRED');
    return proceed(req, reply, updated, bound);
  });
}
