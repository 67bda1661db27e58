// Enrollment over HTTP: the one-time link's token (from the URL fragment, posted by the page)
// unlocks registering a security key, then confirming an OTP token with two consecutive codes
// (a new seed shown as a QR code, or a token an administrator assigned). Finishing consumes the
// link and activates the user in one transaction.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import QRCode from 'qrcode';
import { generateURI } from 'otplib';
import { GatehouseError } from '../../errors.js';
import { readRecord, updateRecord } from '../lib/records.js';
import { isSecretShape, sha256hex } from '../lib/digest.js';
import { safeEqual } from '../../lib/safe-equal.js';
import { factorsFor } from '../factors.js';
import { startRegistration, finishRegistration } from '../webauthn/registration.js';
import { ENROLL_PARAMS, codeAt, matchStep, toBase32 } from '../totp/codes.js';
import { openSeed, sealSeed } from '../totp/seed.js';
import { ENROLLMENTS_PREFIX, TOTP_PREFIX, USERS_PREFIX, type EnrollmentRecord, type TotpRecord, type UserRecord } from '../types.js';
import type { HumanContext } from './context.js';
import { ENROLL_BODY } from './bodies.js';

export function enrollRoutes(app: FastifyInstance, c: HumanContext, limited: object): void {
  const { store, clock } = c;

  async function load(req: FastifyRequest): Promise<{ hash: string; enrollment: EnrollmentRecord; modRevision: number; user: UserRecord; totpRequired: boolean }> {
    c.checkOrigin(req);
    const { token } = ENROLL_BODY.read(req.body);
    // The link's token must name a live enrollment of a user who may still enroll
    if (!isSecretShape(token)) throw new GatehouseError('ERR_ENROLLMENT_INVALID', 'expected the token of an enrollment link');
    const hash = sha256hex(token);
    const rec = await readRecord<EnrollmentRecord>(store, ENROLLMENTS_PREFIX + hash);
    if (rec === undefined || clock.now() >= rec.value.expiresAt) throw new GatehouseError('ERR_ENROLLMENT_INVALID');
    const user = await readRecord<UserRecord>(store, USERS_PREFIX + rec.value.userId);
    if (user === undefined || user.value.status === 'disabled') throw new GatehouseError('ERR_ENROLLMENT_INVALID', 'the user of this link is disabled');
    return { hash, enrollment: rec.value, modRevision: rec.modRevision, user: user.value, totpRequired: factorsFor(user.value.roles, c.mfa).includes('totp') };
  }

  /** Consumes the link and activates the user, atomically. */
  async function finish(req: FastifyRequest, hash: string, userId: string): Promise<void> {
    const [e, u] = await Promise.all([store.get(ENROLLMENTS_PREFIX + hash), readRecord<UserRecord>(store, USERS_PREFIX + userId)]);
    if (e === undefined || u === undefined || u.value.status === 'disabled') throw new GatehouseError('ERR_ENROLLMENT_INVALID');
    const active: UserRecord = { ...u.value, status: 'active', enrolledAt: clock.now() };
    const r = await store.txn(
      [
        { key: ENROLLMENTS_PREFIX + hash, target: 'modRevision', op: '==', value: e.modRevision },
        { key: USERS_PREFIX + userId, target: 'modRevision', op: '==', value: u.modRevision },
      ],
      [
        { op: 'delete', key: ENROLLMENTS_PREFIX + hash },
        { op: 'put', key: USERS_PREFIX + userId, value: JSON.stringify(active) },
      ],
    );
    if (!r.succeeded) throw new GatehouseError('ERR_ENROLLMENT_INVALID', 'the enrollment changed meanwhile; reload the link');
    c.event(req, 'enrollment.complete', 'success', { 'user.id': userId });
  }

  app.post('/.gatehouse/enroll/start', limited, async (req) => {
    const e = await load(req);
    return { user: e.user.id, webauthnDone: e.enrollment.webauthnDone, totp: e.totpRequired ? 'required' : 'not-required', complete: false };
  });

  app.post('/.gatehouse/enroll/webauthn/options', limited, async (req) => {
    const e = await load(req);
    const options = await startRegistration({ store, clock, rp: c.rp, userId: e.user.id, bound: e.hash, challengeTtlMs: c.challengeTtlMs, excludeCredentialIds: e.user.credentialIds ?? [] });
    return { options };
  });

  app.post('/.gatehouse/enroll/webauthn', limited, async (req) => {
    const e = await load(req);
    let credential;
    try {
      credential = await finishRegistration({ store, clock, rp: c.rp, userId: e.user.id, bound: e.hash, challengeTtlMs: c.challengeTtlMs, policy: c.attestation, response: ENROLL_BODY.read(req.body).response });
    } catch (err) {
      c.event(req, 'enrollment.webauthn', 'failure', { 'user.id': e.user.id, 'gatehouse.error_code': err instanceof GatehouseError ? err.code : 'ERR_INTERNAL', 'event.reason': (err as Error).message.slice(0, 300) });
      throw err;
    }
    await updateRecord<UserRecord>(store, USERS_PREFIX + e.user.id, (u) => ({ ...u, credentialIds: [...(u.credentialIds ?? []), credential.id] }));
    await updateRecord<EnrollmentRecord>(store, ENROLLMENTS_PREFIX + e.hash, (r) => ({ ...r, webauthnDone: true }));
    c.event(req, 'enrollment.webauthn', 'success', { 'user.id': e.user.id, 'gatehouse.credential_id': credential.id, 'gatehouse.aaguid': credential.aaguid, 'gatehouse.attestation_format': credential.fmt });
    if (!e.totpRequired) {
      await finish(req, e.hash, e.user.id);
      return { complete: true };
    }
    return { complete: false };
  });

  app.post('/.gatehouse/enroll/totp/options', limited, async (req) => {
    const e = await load(req);
    if (!e.enrollment.webauthnDone) throw new GatehouseError('ERR_LOGIN_FACTOR_ORDER', 'expected the security key first');
    const assigned = await readRecord<TotpRecord>(store, TOTP_PREFIX + e.user.id);
    if (assigned !== undefined) return { serial: assigned.value.serial, assigned: true };
    const seed = randomBytes(20);
    const serial = `enrolled-${e.user.id}-${randomBytes(4).toString('hex')}`;
    try {
      const sealedSeed = sealSeed(c.kek, serial, seed);
      await updateRecord<EnrollmentRecord>(store, ENROLLMENTS_PREFIX + e.hash, (r) => ({ ...r, pendingSeed: { serial, sealedSeed } }));
      const secret = toBase32(seed);
      const uri = generateURI({ issuer: c.rp.name, label: e.user.id, secret, digits: 6, period: 30, algorithm: 'sha1' });
      const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      // the secret is in this body once; every response of this scope is Cache-Control: no-store
      return { serial, assigned: false, secret, qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
    } finally {
      seed.fill(0);
    }
  });

  app.post('/.gatehouse/enroll/totp', limited, async (req) => {
    const e = await load(req);
    if (!e.enrollment.webauthnDone) throw new GatehouseError('ERR_LOGIN_FACTOR_ORDER', 'expected the security key first');
    const body = ENROLL_BODY.read(req.body);
    const [code1, code2] = [body.code1, body.code2].map((v) => (v ?? '').trim());
    const assigned = await readRecord<TotpRecord>(store, TOTP_PREFIX + e.user.id);
    const pending = e.enrollment.pendingSeed;
    const source = assigned !== undefined ? { serial: assigned.value.serial, sealedSeed: assigned.value.sealedSeed, params: assigned.value } : pending !== undefined ? { ...pending, params: ENROLL_PARAMS } : undefined;
    if (source === undefined) throw new GatehouseError('ERR_TOTP_NOT_ENROLLED', 'expected a token: ask for the QR code first');
    const seed = openSeed(c.kek, source.serial, source.sealedSeed);
    let step: number | undefined;
    try {
      // The second code must be the token's code for now ±1 step, and the first the code of the step before it
      const second = matchStep(seed, code2!, clock.now(), source.params);
      step = second !== undefined && safeEqual(codeAt(seed, second - 1, source.params), code1!) ? second : undefined;
    } finally {
      seed.fill(0);
    }
    if (step === undefined) {
      const err = new GatehouseError('ERR_TOTP_INVALID', `expected two consecutive codes of token ${source.serial}, the second one current`);
      c.event(req, 'enrollment.totp', 'failure', { 'user.id': e.user.id, 'gatehouse.error_code': err.code });
      if (await c.regulator.fail(e.user.id)) c.event(req, 'authentication.lockout', 'failure', { 'user.id': e.user.id, 'event.kind': 'alert', 'event.severity': 5 });
      throw err;
    }
    if (assigned !== undefined) {
      await updateRecord<TotpRecord>(store, TOTP_PREFIX + e.user.id, (t) => ({ ...t, lastStep: Math.max(t.lastStep, step) }));
    } else {
      const record: TotpRecord = { format: 1, userId: e.user.id, serial: source.serial, sealedSeed: source.sealedSeed, ...ENROLL_PARAMS, lastStep: step, assignedAt: clock.now() };
      await store.put(TOTP_PREFIX + e.user.id, JSON.stringify(record));
    }
    c.event(req, 'enrollment.totp', 'success', { 'user.id': e.user.id, 'gatehouse.totp_serial': source.serial });
    await finish(req, e.hash, e.user.id);
    return { complete: true };
  });
}
