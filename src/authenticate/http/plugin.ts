// The human listener's own routes under /.gatehouse/: pages, the login and enrollment APIs,
// step-up, logout, the cross-host callback, forward-auth and static assets. Every POST checks
// Origin; every response carries the strict security headers; the login and enrollment
// endpoints are rate-limited per client address.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { GatehouseError, isGatehouseError } from '../../errors.js';
import { errorBody, parseJsonBodies } from '../../lib/http-errors.js';
import { consumeRecord, readRecord, ttlSeconds } from '../lib/records.js';
import { randomSecret, sha256hex } from '../lib/digest.js';
import { safeEqual } from '../../lib/safe-equal.js';
import { clearCookie, readCookie, serializeCookie } from '../lib/cookies.js';
import { safeReturnTo } from '../redirect.js';
import { getUser } from '../users.js';
import { finishAuthentication, startAuthentication } from '../webauthn/authentication.js';
import { CREDENTIALS_PREFIX, HANDOFFS_PREFIX, LOGINS_PREFIX, LOGIN_COOKIE, SESSION_COOKIE, STATE_COOKIE, type CredentialRecord, type HandoffRecord, type LoginRecord } from '../types.js';
import type { SessionView } from '../sessions.js';
import type { Store } from '../../store/index.js';
import { createContext, PAGE_HEADERS, sendHtml, wantsHtml, type HumanContext, type HumanRoutesOptions } from './context.js';
import { RETURN_TO_BODY, WEBAUTHN_BODY } from './bodies.js';
import { enrollPage, errorPage, loggedOutPage, loginPage, logoutPage, stepUpPage, ASSET_PREFIX } from './pages.js';
import { loginRoutes } from './login.js';
import { enrollRoutes } from './enroll.js';

export const GATEWAY_PREFIX = '/.gatehouse/';
export const VERIFY_PATH = '/.gatehouse/auth/verify';

function loadAssets(): Map<string, { type: string; body: Buffer }> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const dir = path.join(here, '..', 'assets');
  const require = createRequire(import.meta.url);
  const browser = path.join(path.dirname(path.dirname(require.resolve('@simplewebauthn/browser'))), 'dist', 'bundle', 'index.umd.min.js');
  return new Map([
    ['gatehouse.css', { type: 'text/css; charset=utf-8', body: readFileSync(path.join(dir, 'gatehouse.css')) }],
    ['gatehouse.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(path.join(dir, 'gatehouse.js')) }],
    ['webauthn.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(browser) }],
  ]);
}

/** What a person sees when something is refused: which check, and what to do next. */
const NEXT_STEP: Partial<Record<string, { title: string; next: string }>> = {
  ERR_POLICY_DENIED: { title: 'Access denied', next: 'Your roles do not allow this. Ask the application owner for access if you need it.' },
  ERR_USER_DISABLED: { title: 'Account disabled', next: 'Contact your administrator.' },
  ERR_REDIRECT_REFUSED: { title: 'Address not allowed', next: 'Go to the application directly and sign in from there.' },
  ERR_LOGIN_EXPIRED: { title: 'Sign-in expired', next: 'Go back to the application and sign in again.' },
  ERR_SESSION_EXPIRED: { title: 'Session ended', next: 'Sign in again.' },
  ERR_ROUTE_NOT_FOUND: { title: 'Unknown application', next: 'Check the address.' },
  ERR_ACR_INSUFFICIENT: {
    title: 'Stronger sign-in needed',
    next: 'This application needs a sign-in with a security key whose make Gatehouse verified and a hardware OTP token. Sign out and sign in with those, or ask your administrator to enroll them.',
  },
};

export function renderRefusal(reply: FastifyReply, err: GatehouseError, requestId: string): FastifyReply {
  const n = NEXT_STEP[err.code] ?? { title: 'Request refused', next: 'Try again, or contact your administrator with the code below.' };
  return sendHtml(reply.headers(PAGE_HEADERS).header('cache-control', 'no-store'), err.status, errorPage({ title: n.title, code: err.code, message: err.message, next: n.next, requestId }));
}

/** The keys a step-up may use: for a session whose key was proven hardware (hwk), only such keys. */
async function stepUpCredentials(store: Store, view: SessionView): Promise<string[]> {
  const user = await getUser(store, view.userId);
  const ids = user?.credentialIds ?? [];
  if (!view.amr.includes('hwk')) return ids;
  const out: string[] = [];
  for (const id of ids) if ((await readRecord<CredentialRecord>(store, CREDENTIALS_PREFIX + id))?.value.attestationVerified === true) out.push(id);
  // an empty list would let the browser offer any key: say so now (a session from before keys recorded their attestation)
  if (out.length === 0) throw new GatehouseError('ERR_ACR_INSUFFICIENT', 'none of your security keys proved its make, as this session claims: sign in again');
  return out;
}

export interface HumanRoutes {
  /**
   * How a refused proxied request is answered to a browser (GET/HEAD with Accept text/html):
   * a redirect to sign in or to step up, or the access-denied page. Undefined: the JSON body.
   */
  refuse(error: GatehouseError, req: FastifyRequest, reply: FastifyReply, target: string): FastifyReply | undefined;
}

/**
 * The routes look sessions up in memory (SessionManager.lookup): the caller's onRequest hook
 * runs SessionManager.ensure for every request first (human-listener.ts), these routes included.
 */
export async function humanRoutes(app: FastifyInstance, options: HumanRoutesOptions): Promise<HumanRoutes> {
  const c: HumanContext = createContext(options);

  /** Sends the browser to sign in and back to `target` on `host`. Across hosts, a state cookie binds the handoff to this browser. */
  function beginLogin(reply: FastifyReply, host: string, target: string): FastifyReply {
    void reply.header('cache-control', 'no-store');
    if (c.loginOrigin === undefined || c.loginHost === host) return reply.redirect(`/.gatehouse/login?rd=${encodeURIComponent(target)}`, 303);
    const state = randomSecret();
    return reply
      .header('set-cookie', serializeCookie(STATE_COOKIE, state, { maxAge: c.pendingTtlMs / 1000, sameSite: 'Lax' }))
      .redirect(`${c.loginOrigin}/.gatehouse/login?rd=${encodeURIComponent(c.originOf(host) + target)}&state=${sha256hex(state)}`, 303);
  }

  const assets = loadAssets();
  await app.register(async (scope) => {
    parseJsonBodies(scope, 64 * 1024);
    await scope.register(rateLimit, { global: false, errorResponseBuilder: () => new GatehouseError('ERR_RATE_LIMITED') });
    scope.addHook('onSend', async (req, reply, payload) => {
      void reply.headers(PAGE_HEADERS);
      if (!req.url.startsWith(ASSET_PREFIX)) void reply.header('cache-control', 'no-store');
      return payload;
    });
    const limited = { config: { rateLimit: { max: c.rateLimit.max, timeWindow: c.rateLimit.windowMs } } };

    scope.get(`${ASSET_PREFIX}:name`, async (req: FastifyRequest<{ Params: { name: string } }>, reply) => {
      const a = assets.get(req.params.name);
      if (a === undefined) throw new GatehouseError('ERR_NOT_FOUND', 'no such asset');
      return reply.type(a.type).header('cache-control', 'public, max-age=300').send(a.body);
    });

    scope.get('/.gatehouse/login', limited, async (req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
      const q = req.query;
      try {
        safeReturnTo(q.rd, c.returnPolicy(req));
      } catch (err) {
        if (isGatehouseError(err)) return renderRefusal(reply, err, req.id);
        throw err;
      }
      const state = typeof q.state === 'string' && /^[0-9a-f]{64}$/.test(q.state) ? q.state : '';
      return sendHtml(reply, 200, loginPage({ rd: q.rd ?? '', state }));
    });
    // an application host's own entry to sign-in (nginx: error_page 401 -> /.gatehouse/start?rd=$request_uri)
    scope.get('/.gatehouse/start', limited, async (req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
      const host = c.hostOf(req);
      try {
        const r = safeReturnTo(req.query.rd, { thisHost: host, otherHosts: new Set(), publicPort: c.publicPort });
        return beginLogin(reply, host, r.path);
      } catch (err) {
        if (isGatehouseError(err)) return renderRefusal(reply, err, req.id);
        throw err;
      }
    });
    scope.get('/.gatehouse/enroll', async (_req, reply) => sendHtml(reply, 200, enrollPage()));
    loginRoutes(scope, c, limited);
    enrollRoutes(scope, c, limited);

    // ---- step-up: a fresh WebAuthn assertion on an existing session
    scope.get('/.gatehouse/step-up', async (req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
      let rd: string;
      try {
        const r = safeReturnTo(req.query.rd, c.returnPolicy(req));
        rd = r.host === c.hostOf(req) ? r.path : `${c.originOf(r.host)}${r.path}`;
      } catch (err) {
        if (isGatehouseError(err)) return renderRefusal(reply, err, req.id);
        throw err;
      }
      const view = c.sessions.lookup(readCookie(req.headers, SESSION_COOKIE), c.hostOf(req));
      if (view instanceof GatehouseError) return reply.redirect(`/.gatehouse/login?rd=${encodeURIComponent(rd)}`, 303);
      return sendHtml(reply, 200, stepUpPage({ rd, user: view.userId }));
    });

    scope.post('/.gatehouse/step-up/start', limited, async (req, reply) => {
      c.checkOrigin(req);
      const view = c.sessions.lookup(readCookie(req.headers, SESSION_COOKIE), c.hostOf(req));
      if (view instanceof GatehouseError) throw view;
      const r = safeReturnTo(RETURN_TO_BODY.read(req.body).rd, c.returnPolicy(req));
      const loginId = randomSecret();
      const bound = sha256hex(loginId);
      const login: LoginRecord = { format: 1, purpose: 'step-up', username: view.userId, returnTo: `${r.host}${r.path}`, factors: ['webauthn-uv'], done: [], sessionHash: view.hash, createdAt: c.clock.now() };
      const lease = await c.store.grant(ttlSeconds(c.pendingTtlMs));
      await c.store.put(LOGINS_PREFIX + bound, JSON.stringify(login), { lease: lease.id });
      void reply.header('set-cookie', serializeCookie(LOGIN_COOKIE, loginId, { maxAge: c.pendingTtlMs / 1000 }));
      const options = await startAuthentication({ store: c.store, clock: c.clock, rp: c.rp, purpose: 'step-up', userId: view.userId, bound, challengeTtlMs: c.challengeTtlMs, credentialIds: await stepUpCredentials(c.store, view) });
      return { options };
    });

    scope.post('/.gatehouse/step-up/webauthn', limited, async (req, reply) => {
      c.checkOrigin(req);
      const view = c.sessions.lookup(readCookie(req.headers, SESSION_COOKIE), c.hostOf(req));
      if (view instanceof GatehouseError) throw view;
      const id = readCookie(req.headers, LOGIN_COOKIE);
      const bound = id === undefined ? '' : sha256hex(id);
      const login = id === undefined ? undefined : await readRecord<LoginRecord>(c.store, LOGINS_PREFIX + bound);
      // The step-up must be this session's, started moments ago
      if (login === undefined || login.value.purpose !== 'step-up' || login.value.sessionHash !== view.hash) throw new GatehouseError('ERR_LOGIN_EXPIRED', 'no step-up in progress for this session');
      await c.regulator.check(view.userId);
      let result;
      try {
        result = await finishAuthentication({ store: c.store, clock: c.clock, rp: c.rp, purpose: 'step-up', userId: view.userId, bound, challengeTtlMs: c.challengeTtlMs, response: WEBAUTHN_BODY.read(req.body).response });
      } catch (err) {
        if (isGatehouseError(err) && err.code.startsWith('ERR_WEBAUTHN_')) {
          c.event(req, 'authentication.step_up', 'failure', { 'user.id': view.userId, 'gatehouse.sid': view.sid, 'gatehouse.error_code': err.code });
          if (err.code === 'ERR_WEBAUTHN_COUNTER') c.event(req, 'authentication.counter_regression', 'failure', { 'event.kind': 'alert', 'event.severity': 8, 'user.id': view.userId, 'gatehouse.error_code': err.code });
          if (await c.regulator.fail(view.userId)) c.event(req, 'authentication.lockout', 'failure', { 'user.id': view.userId, 'event.kind': 'alert', 'event.severity': 5 });
        }
        throw err;
      }
      // The fresh assertion must prove at least what the session claims (an attested key for an hwk session)
      if (view.amr.includes('hwk') && result.credential.attestationVerified !== true) {
        c.event(req, 'authentication.step_up', 'failure', { 'user.id': view.userId, 'gatehouse.sid': view.sid, 'gatehouse.error_code': 'ERR_ACR_INSUFFICIENT' });
        throw new GatehouseError('ERR_ACR_INSUFFICIENT', 'expected a security key whose attestation verified (as at sign-in), got one without');
      }
      if ((await consumeRecord<LoginRecord>(c.store, LOGINS_PREFIX + bound)) === undefined) throw new GatehouseError('ERR_LOGIN_EXPIRED');
      await c.sessions.markWebAuthn(view.hash, result.at);
      c.event(req, 'authentication.step_up', 'success', { 'user.id': view.userId, 'gatehouse.sid': view.sid, 'gatehouse.credential_id': result.credential.id });
      void reply.header('set-cookie', clearCookie(LOGIN_COOKIE));
      const [host, ...rest] = login.value.returnTo.split('/');
      return { redirect: host === c.hostOf(req) ? `/${rest.join('/')}` : `${c.originOf(host!)}/${rest.join('/')}` };
    });

    // ---- the cross-host handoff: a one-time code becomes this host's cookie
    scope.get('/.gatehouse/callback', async (req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
      const host = c.hostOf(req);
      try {
        const code = req.query.code;
        if (typeof code !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(code)) throw new GatehouseError('ERR_LOGIN_EXPIRED', 'expected a one-time code');
        const handoff = await consumeRecord<HandoffRecord>(c.store, HANDOFFS_PREFIX + sha256hex(code));
        // The code must be live and for this host
        if (handoff === undefined || c.clock.now() - handoff.createdAt > 60_000) throw new GatehouseError('ERR_LOGIN_EXPIRED', 'the one-time code is unknown, used or expired');
        if (handoff.host !== host) throw new GatehouseError('ERR_LOGIN_EXPIRED', 'the one-time code is for another host');
        // And this must be the browser this host sent to sign in (its state cookie), so nobody can log a victim into their own session
        const state = readCookie(req.headers, STATE_COOKIE);
        if (state === undefined || handoff.stateDigest === '' || !safeEqual(sha256hex(state), handoff.stateDigest)) throw new GatehouseError('ERR_LOGIN_EXPIRED', 'this browser did not start the sign-in');
        const alias = await c.sessions.createAlias(handoff.sessionHash, host);
        c.event(req, 'authentication.handoff', 'success', { 'gatehouse.host': host });
        return reply
          .header('set-cookie', [serializeCookie(SESSION_COOKIE, alias.id, { maxAge: c.sessionAbsoluteMs / 1000 }), clearCookie(STATE_COOKIE)])
          .redirect(handoff.path, 303);
      } catch (err) {
        if (!isGatehouseError(err)) throw err;
        c.event(req, 'authentication.handoff', 'failure', { 'gatehouse.host': host, 'gatehouse.error_code': err.code });
        return renderRefusal(reply, err, req.id);
      }
    });

    // ---- logout
    scope.get('/.gatehouse/logout', async (req, reply) => {
      const view = c.sessions.lookup(readCookie(req.headers, SESSION_COOKIE), c.hostOf(req));
      return sendHtml(reply, 200, logoutPage({ user: view instanceof GatehouseError ? undefined : view.userId }));
    });
    scope.post('/.gatehouse/logout', async (req, reply) => {
      c.checkOrigin(req);
      const primary = c.sessions.primaryOf(readCookie(req.headers, SESSION_COOKIE));
      const ended = primary !== undefined && (await c.sessions.end(primary));
      c.event(req, 'authentication.logout', 'success', { 'gatehouse.session_ended': ended });
      void reply.header('set-cookie', clearCookie(SESSION_COOKIE));
      if (wantsHtml(req)) return reply.redirect('/.gatehouse/logged-out', 303);
      return { ended };
    });
    scope.get('/.gatehouse/logged-out', async (_req, reply) => sendHtml(reply, 200, loggedOutPage()));

    // ---- who am I (for pages and tests): never the cookie, never the hash
    scope.get('/.gatehouse/session', async (req) => {
      const view = c.sessions.lookup(readCookie(req.headers, SESSION_COOKIE), c.hostOf(req));
      if (view instanceof GatehouseError) throw view;
      return { user: view.userId, roles: view.roles, amr: view.amr, acr: view.acr, sid: view.sid, createdAt: new Date(view.createdAt).toISOString(), lastWebAuthnAt: new Date(view.lastWebAuthnAt).toISOString() };
    });

    // ---- forward-auth (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth)
    scope.get(VERIFY_PATH, async (req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
      const peer = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
      const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v)?.split(',')[0]?.trim();
      const fwdHost = first(req.headers['x-forwarded-host']);
      const fwdUri = first(req.headers['x-forwarded-uri']);
      let verdict;
      if (c.trustedProxies === undefined || !c.trustedProxies.includes(peer) || fwdHost === undefined || fwdHost === '' || fwdUri === undefined || fwdUri === '') {
        verdict = { ok: false as const, error: new GatehouseError('ERR_FORWARD_AUTH_REFUSED') };
      } else {
        verdict = await c.verifyForwarded(req, { host: fwdHost, method: (first(req.headers['x-forwarded-method']) ?? 'GET').toUpperCase(), target: fwdUri });
      }
      void reply.header('cache-control', 'no-store');
      if (verdict.ok) return reply.status(200).headers(verdict.headers).send('');
      const e = verdict.error;
      // Traefik and Caddy pass the answer to the browser: with ?redirect=1 a browser is sent to sign in
      if (req.query.redirect === '1' && (e.code === 'ERR_SESSION_REQUIRED' || e.code === 'ERR_SESSION_EXPIRED') && fwdHost !== undefined && fwdUri?.startsWith('/') === true) {
        return beginLogin(reply, fwdHost.toLowerCase().replace(/:\d+$/, ''), fwdUri);
      }
      // nginx auth_request understands 401 and 403 only; anything else would be a 500 there
      return reply.status(e.status === 401 ? 401 : 403).send(errorBody(e, req.id));
    });
  });

  return {
    refuse(error, req, reply, target) {
      const browser = wantsHtml(req) && (req.method === 'GET' || req.method === 'HEAD');
      if (!browser) return undefined;
      const host = c.hostOf(req);
      switch (error.code) {
        case 'ERR_SESSION_REQUIRED':
        case 'ERR_SESSION_EXPIRED':
          return beginLogin(reply, host, target);
        case 'ERR_STEP_UP_REQUIRED':
          if (c.loginOrigin !== undefined && c.loginHost !== host) return reply.redirect(`${c.loginOrigin}/.gatehouse/step-up?rd=${encodeURIComponent(c.originOf(host) + target)}`, 303);
          return reply.redirect(`/.gatehouse/step-up?rd=${encodeURIComponent(target)}`, 303);
        case 'ERR_POLICY_DENIED':
        case 'ERR_USER_DISABLED':
        case 'ERR_ACR_INSUFFICIENT':
          return renderRefusal(reply, error, req.id);
        default:
          return undefined;
      }
    },
  };
}

export type { HumanRoutesOptions } from './context.js';
