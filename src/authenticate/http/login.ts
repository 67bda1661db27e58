// Sign-in over HTTP: start (user name) -> each factor in the configured order -> a session.
// A pending sign-in lives in the store (hash of the __Host-gatehouse-login cookie, under a
// pooled lease). Each step commits everything it writes in ONE transaction, guarded by what it
// read (the pending sign-in, the user, the challenge and credential, or the OTP token): one
// durable write per step. Of two requests racing for the same thing, one commits; the other
// starts its step again and fails a check (challenge used, code replayed, sign-in finished).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatehouseError, isGatehouseError } from '../../errors.js';
import type { LeaseId } from '../../store/index.js';
import { CONFLICT as RETRY, retryOnConflict } from '../../store/update.js';
import { commit, readRecord, unchanged, type Versioned, type Writes } from '../lib/records.js';
import { randomSecret, sha256hex } from '../lib/digest.js';
import { clearCookie, readCookie, serializeCookie } from '../lib/cookies.js';
import { newChallenge } from '../challenges.js';
import { factorsFor } from '../factors.js';
import { safeReturnTo } from '../redirect.js';
import { USER_ID } from '../users.js';
import { authenticationOptions, verifyAssertion } from '../webauthn/authentication.js';
import { checkTotp } from '../totp/tokens.js';
import { HANDOFFS_PREFIX, LOGINS_PREFIX, LOGIN_COOKIE, SESSION_COOKIE, USERS_PREFIX, acrOf, amrOf, type Factor, type HandoffRecord, type LoginRecord, type UserRecord } from '../types.js';
import type { HumanContext } from './context.js';
import { LOGIN_START_BODY, TOTP_BODY, WEBAUTHN_BODY } from './bodies.js';

const HANDOFF_TTL_MS = 60_000;

interface Pending {
  login: LoginRecord;
  bound: string;
  modRevision: number;
  lease: LeaseId | undefined;
}

/** A factor step ready to commit: the sign-in with the factor done, and the writes the factor needs. */
interface Step {
  /** The pending sign-in as read (undefined at start: it is new). */
  pending: Pending | undefined;
  bound: string;
  login: LoginRecord;
  user: Versioned<UserRecord> | undefined;
  writes: Writes;
  /** The new session's lease, asked for while the last factor was checked. */
  sessionLease?: Promise<LeaseId> | undefined;
  /** Audits the factor (and sets cookies) once its writes are committed. */
  onCommit(): void;
}

export function loginRoutes(app: FastifyInstance, c: HumanContext, limited: object): void {
  const { store, clock } = c;

  function credentialIdsOf(username: string, user: UserRecord | undefined): string[] {
    return user?.status === 'active' && (user.credentialIds ?? []).length > 0 ? [...user.credentialIds!] : [c.fakeCredentialId(username)];
  }

  function readUser(username: string): Promise<Versioned<UserRecord> | undefined> {
    return readRecord<UserRecord>(store, USERS_PREFIX + username);
  }

  async function loadLogin(req: FastifyRequest, purpose: LoginRecord['purpose']): Promise<Pending> {
    const id = readCookie(req.headers, LOGIN_COOKIE);
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) throw new GatehouseError('ERR_LOGIN_EXPIRED', 'no sign-in in progress');
    const bound = sha256hex(id);
    const rec = await readRecord<LoginRecord>(store, LOGINS_PREFIX + bound);
    if (rec === undefined || rec.value.purpose !== purpose || clock.now() - rec.value.createdAt > c.pendingTtlMs) throw new GatehouseError('ERR_LOGIN_EXPIRED');
    return { login: rec.value, bound, modRevision: rec.modRevision, lease: rec.lease };
  }

  function nextFactor(login: LoginRecord): Factor | undefined {
    return login.factors.find((f) => !login.done.includes(f));
  }

  /** When `factor` is the last one, the session's own lease is asked for while it is checked (unused, it expires). */
  function sessionLeaseIfLast(login: LoginRecord, factor: Factor): Promise<LeaseId> | undefined {
    if (login.factors.some((f) => f !== factor && !login.done.includes(f))) return undefined;
    const lease = c.sessions.grantLease();
    lease.catch(() => undefined); // awaited, and its failure reported, when the session is stored
    return lease;
  }

  /** Runs a step, again from its first read while another writer comes first (a guard of its transaction failed). */
  function retrying(step: () => Promise<unknown>): Promise<unknown> {
    return retryOnConflict('sign-in', step);
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

  /** Commits a step with what comes after it: the next factor (and its challenge), or the session. */
  async function proceed(req: FastifyRequest, reply: FastifyReply, s: Step): Promise<unknown> {
    const key = LOGINS_PREFIX + s.bound;
    // the step holds only if the sign-in and the user are as read
    const step: Writes = { compares: [...s.writes.compares, unchanged(key, s.pending), unchanged(USERS_PREFIX + s.login.username, s.user)], ops: s.writes.ops };
    const next = nextFactor(s.login);
    if (next === undefined) return finish(req, reply, s, step);
    // the sign-in goes on: it is stored with this factor done, and the next factor's challenge with it
    const now = clock.now();
    const [loginLease, challengeLease] = await Promise.all([s.pending?.lease ?? c.leases.lease(c.pendingTtlMs), next === 'webauthn-uv' ? c.leases.lease(c.challengeTtlMs) : undefined]);
    const stay: Writes = { compares: [], ops: [{ op: 'put', key, value: JSON.stringify(s.login), lease: loginLease }] };
    if (challengeLease === undefined) {
      if ((await commit(store, step, stay)) === undefined) return RETRY;
      s.onCommit();
      return { next };
    }
    const { challenge, writes } = newChallenge({ purpose: 'login', userId: s.login.username, bound: s.bound, createdAt: now, lease: challengeLease });
    if ((await commit(store, step, stay, writes)) === undefined) return RETRY;
    s.onCommit();
    return { next, options: await authenticationOptions({ rp: c.rp, challenge, challengeTtlMs: c.challengeTtlMs, credentialIds: credentialIdsOf(s.login.username, s.user?.value) }) };
  }

  /** Every factor is done: one transaction ends the sign-in, clears the failure count and stores the session. */
  async function finish(req: FastifyRequest, reply: FastifyReply, s: Step, step: Writes): Promise<unknown> {
    const { login } = s;
    const user = s.user?.value;
    if (user === undefined || user.status !== 'active') throw new GatehouseError('ERR_USER_DISABLED');
    // The key must still be the user's (removed since the WebAuthn step: the user record, compared below, says so)
    if (login.credentialId !== undefined && !(user.credentialIds ?? []).includes(login.credentialId)) throw new GatehouseError('ERR_WEBAUTHN_UNKNOWN_CREDENTIAL', `expected a credential of ${user.id}, got one removed meanwhile`);
    const host = c.hostOf(req);
    // acr and amr say only what was proven: attestation for the key, an imported token for the OTP
    const proofs = { done: login.done, keyAttested: login.keyAttested === true, otpHardware: login.otpHardware === true };
    const session = c.sessions.draft(
      {
        userId: user.id,
        roles: user.roles,
        amr: amrOf(proofs),
        acr: acrOf(proofs),
        credentialId: login.credentialId ?? '',
        lastWebAuthnAt: login.lastWebAuthnAt ?? 0,
        host,
        ip: req.ip,
        userAgent: String(req.headers['user-agent'] ?? ''),
      },
      await (s.sessionLease ?? c.sessions.grantLease()),
    );
    const ended: Writes = { compares: [], ops: [{ op: 'delete', key: LOGINS_PREFIX + s.bound }] };
    const [rdHost, ...rest] = login.returnTo.split('/');
    const path = `/${rest.join('/')}`;
    // another route host: a one-time code its /.gatehouse/callback turns into that host's cookie
    const handoff = rdHost === host ? undefined : await handoffCode({ format: 1, sessionHash: session.hash, host: rdHost!, path, stateDigest: login.stateDigest ?? '', createdAt: clock.now() });
    const revision = await commit(store, step, ended, c.regulator.clearing(login.username), session.writes, handoff?.writes ?? { compares: [], ops: [] });
    if (revision === undefined) return RETRY;
    c.sessions.adopt(session, revision);
    s.onCommit();
    c.event(req, 'authentication.session', 'success', { 'user.id': user.id, 'gatehouse.sid': session.record.sid, 'gatehouse.amr': session.record.amr, 'gatehouse.acr': session.record.acr });
    void reply.header('set-cookie', [serializeCookie(SESSION_COOKIE, session.id, { maxAge: c.sessionAbsoluteMs / 1000 }), clearCookie(LOGIN_COOKIE)]);
    return { redirect: handoff === undefined ? path : `${c.originOf(rdHost!)}/.gatehouse/callback?code=${handoff.code}` };
  }

  async function handoffCode(record: HandoffRecord): Promise<{ code: string; writes: Writes }> {
    const code = randomSecret();
    const key = HANDOFFS_PREFIX + sha256hex(code);
    const lease = await c.leases.lease(HANDOFF_TTL_MS);
    return { code, writes: { compares: [unchanged(key, undefined)], ops: [{ op: 'put', key, value: JSON.stringify(record), lease }] } };
  }

  app.post('/.gatehouse/login/start', limited, async (req, reply) => {
    c.checkOrigin(req);
    const body = LOGIN_START_BODY.read(req.body);
    const username = (body.username ?? '').trim().toLowerCase();
    if (!USER_ID.test(username)) throw new GatehouseError('ERR_BAD_REQUEST', 'enter your user name');
    const returnTo = safeReturnTo(body.rd, c.returnPolicy(req));
    const stateDigest = body.state !== undefined && /^[0-9a-f]{64}$/.test(body.state) ? body.state : undefined;
    // a session for another host is handed over only to the browser that was sent here from it
    if (returnTo.host !== c.hostOf(req) && stateDigest === undefined) throw new GatehouseError('ERR_REDIRECT_REFUSED', 'return address refused: another host without the state of a redirect from it');
    await checkNotLocked(req, username);
    const loginId = randomSecret();
    const bound = sha256hex(loginId);
    return retrying(async () => {
      const user = await readUser(username);
      const login: LoginRecord = {
        format: 1,
        purpose: 'login',
        username,
        returnTo: `${returnTo.host}${returnTo.path}`,
        ...(stateDigest !== undefined ? { stateDigest } : {}),
        // an unknown or inactive user walks the default factors and fails at the first (no enumeration)
        factors: factorsFor(user?.value.status === 'active' ? user.value.roles : {}, c.mfa),
        done: [],
        createdAt: clock.now(),
      };
      return proceed(req, reply, {
        pending: undefined,
        bound,
        login,
        user,
        writes: { compares: [], ops: [] },
        onCommit: () => {
          void reply.header('set-cookie', serializeCookie(LOGIN_COOKIE, loginId, { maxAge: c.pendingTtlMs / 1000 }));
          c.event(req, 'authentication.start', 'success', { 'user.id': username });
        },
      });
    });
  });

  app.post('/.gatehouse/login/webauthn', limited, async (req, reply) => {
    c.checkOrigin(req);
    const body = WEBAUTHN_BODY.read(req.body);
    let sessionLease: Promise<LeaseId> | undefined;
    return retrying(async () => {
      const pending = await loadLogin(req, 'login');
      const { login, bound } = pending;
      // WebAuthn must be the factor the configured order expects now
      if (nextFactor(login) !== 'webauthn-uv') throw new GatehouseError('ERR_LOGIN_FACTOR_ORDER', `expected ${nextFactor(login) ?? 'no more factors'}, got webauthn-uv`);
      sessionLease ??= sessionLeaseIfLast(login, 'webauthn-uv');
      await checkNotLocked(req, login.username);
      let assertion;
      try {
        assertion = await verifyAssertion({ store, clock, rp: c.rp, purpose: 'login', userId: login.username, bound, challengeTtlMs: c.challengeTtlMs, response: body.response });
        // A counter that went backwards locks the credential (and uses up the challenge)
        if (assertion.refusal !== undefined) {
          if ((await commit(store, assertion.writes)) === undefined) return RETRY;
          throw assertion.refusal;
        }
      } catch (err) {
        await factorFailed(req, login.username, 'webauthn-uv', err);
        throw err;
      }
      // The user must still be allowed in (told only to whoever proved the key)
      const user = await readUser(login.username);
      if (user?.value.status !== 'active') {
        if ((await commit(store, assertion.writes)) === undefined) return RETRY;
        c.event(req, 'authentication.webauthn', 'failure', { 'user.id': login.username, 'gatehouse.error_code': 'ERR_USER_DISABLED' });
        throw new GatehouseError('ERR_USER_DISABLED');
      }
      const { credential, at } = assertion;
      return proceed(req, reply, {
        pending,
        bound,
        login: { ...login, done: [...login.done, 'webauthn-uv'], credentialId: credential.id, lastWebAuthnAt: at, keyAttested: credential.attestationVerified === true },
        user,
        writes: assertion.writes,
        sessionLease,
        onCommit: () => c.event(req, 'authentication.webauthn', 'success', { 'user.id': login.username, 'gatehouse.credential_id': credential.id, 'gatehouse.aaguid': credential.aaguid, 'gatehouse.attestation_verified': credential.attestationVerified === true }),
      });
    });
  });

  app.post('/.gatehouse/login/totp', limited, async (req, reply) => {
    c.checkOrigin(req);
    const code = TOTP_BODY.read(req.body).code ?? '';
    let sessionLease: Promise<LeaseId> | undefined;
    return retrying(async () => {
      const pending = await loadLogin(req, 'login');
      const { login, bound } = pending;
      // TOTP must be the factor the configured order expects now
      if (nextFactor(login) !== 'totp') throw new GatehouseError('ERR_LOGIN_FACTOR_ORDER', `expected ${nextFactor(login) ?? 'no more factors'}, got totp`);
      sessionLease ??= sessionLeaseIfLast(login, 'totp');
      await checkNotLocked(req, login.username);
      let user;
      let accepted;
      try {
        user = await readUser(login.username);
        if (user?.value.status !== 'active') throw new GatehouseError('ERR_TOTP_INVALID', 'expected the code of an enrolled token, got another');
        accepted = await checkTotp({ store, kek: c.kek, clock, userId: login.username, code });
      } catch (err) {
        await factorFailed(req, login.username, 'totp', err);
        throw err;
      }
      const { serial, kind } = accepted;
      return proceed(req, reply, {
        pending,
        bound,
        login: { ...login, done: [...login.done, 'totp'], otpHardware: kind === 'hardware' },
        user,
        writes: accepted.writes,
        sessionLease,
        onCommit: () => c.event(req, 'authentication.totp', 'success', { 'user.id': login.username, 'gatehouse.totp_serial': serial, 'gatehouse.totp_kind': kind }),
      });
    });
  });
}
