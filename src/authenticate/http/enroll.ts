// Enrollment over HTTP: the one-time link's token (from the URL fragment, posted by the page)
// unlocks registering a security key, then confirming an OTP token with two consecutive codes
// (a token an administrator assigned, or, with totp.allowSoftware, a new seed shown as a QR
// code). The link is good only while the user record names it (a newer link voids it). Nothing
// is stored under webauthn/ or totp/ until every factor is done: then one transaction stores the
// key and the token, activates the user and consumes the link, voiding every other.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import QRCode from 'qrcode';
import { generateURI } from 'otplib';
import { GatehouseError } from '../../errors.js';
import type { TxnOp } from '../../store/index.js';
import { commit, readRecord, unchanged, type Versioned, type Writes } from '../lib/records.js';
import { isSecretShape, sha256hex } from '../lib/digest.js';
import { safeEqual } from '../../lib/safe-equal.js';
import { factorsFor } from '../factors.js';
import { startRegistration, finishRegistration } from '../webauthn/registration.js';
import { ENROLL_PARAMS, codeAt, matchStep, toBase32 } from '../totp/codes.js';
import { openSeed, sealSeed } from '../totp/seed.js';
import { CREDENTIALS_PREFIX, ENROLLMENTS_PREFIX, TOTP_PREFIX, USERS_PREFIX, otpKindOf, type CredentialRecord, type EnrollmentRecord, type TotpRecord, type UserRecord } from '../types.js';
import type { HumanContext } from './context.js';
import { ENROLL_BODY } from './bodies.js';

interface Enrollment {
  hash: string;
  enrollment: Versioned<EnrollmentRecord>;
  user: Versioned<UserRecord>;
  totpRequired: boolean;
  /** The user's OTP token (assigned by an administrator, or from an earlier enrollment). */
  assigned: Versioned<TotpRecord> | undefined;
}

export function enrollRoutes(app: FastifyInstance, c: HumanContext, limited: object): void {
  const { store, clock } = c;

  async function load(req: FastifyRequest): Promise<Enrollment> {
    c.checkOrigin(req);
    const { token } = ENROLL_BODY.read(req.body);
    // The link's token must name a live enrollment of a user who may still enroll
    if (!isSecretShape(token)) throw new GatehouseError('ERR_ENROLLMENT_INVALID', 'expected the token of an enrollment link');
    const hash = sha256hex(token);
    const enrollment = await readRecord<EnrollmentRecord>(store, ENROLLMENTS_PREFIX + hash);
    if (enrollment === undefined || clock.now() >= enrollment.value.expiresAt) throw new GatehouseError('ERR_ENROLLMENT_INVALID');
    const user = await readRecord<UserRecord>(store, USERS_PREFIX + enrollment.value.userId);
    if (user === undefined || user.value.status === 'disabled') throw new GatehouseError('ERR_ENROLLMENT_INVALID', 'the user of this link is disabled');
    // It must be the user's newest link: a newer one, or a finished enrollment, voids it
    if (user.value.enrollment === undefined || !safeEqual(user.value.enrollment, hash)) throw new GatehouseError('ERR_ENROLLMENT_INVALID', 'this link was replaced by a newer one or already used');
    const totpRequired = factorsFor(user.value.roles, c.mfa).includes('totp');
    const assigned = totpRequired ? await readRecord<TotpRecord>(store, TOTP_PREFIX + user.value.id) : undefined;
    // Without an assigned token the page would offer a phone-app seed: only with totp.allowSoftware
    if (totpRequired && assigned === undefined && c.allowSoftwareTotp !== true) {
      throw new GatehouseError('ERR_TOTP_TOKEN_REQUIRED', `no OTP token is assigned to ${user.value.id}: ask your administrator for a hardware token (gatehouse totp assign <serial> ${user.value.id}), then open this link again`);
    }
    return { hash, enrollment, user, totpRequired, assigned };
  }

  /**
   * One transaction: the key (and the OTP token's record) stored, the user active and listing
   * the key, the link consumed (the user names no link any more, so every older one is void).
   * Guarded by everything read: a change meanwhile refuses it.
   */
  async function finish(req: FastifyRequest, e: Enrollment, credential: CredentialRecord, otp: Writes): Promise<void> {
    const u = e.user.value;
    const { enrollment: _consumed, ...rest } = u;
    const active: UserRecord = { ...rest, status: 'active', enrolledAt: clock.now(), credentialIds: [...(u.credentialIds ?? []).filter((id) => id !== credential.id), credential.id] };
    const ops: TxnOp[] = [
      { op: 'delete', key: ENROLLMENTS_PREFIX + e.hash },
      { op: 'put', key: USERS_PREFIX + u.id, value: JSON.stringify(active) },
      { op: 'put', key: CREDENTIALS_PREFIX + credential.id, value: JSON.stringify(credential) },
    ];
    const guards = [unchanged(ENROLLMENTS_PREFIX + e.hash, e.enrollment), unchanged(USERS_PREFIX + u.id, e.user), unchanged(CREDENTIALS_PREFIX + credential.id, undefined)];
    if ((await commit(store, { compares: guards, ops }, otp)) === undefined) throw new GatehouseError('ERR_ENROLLMENT_INVALID', 'the enrollment changed meanwhile; reload the link');
    c.event(req, 'enrollment.complete', 'success', { 'user.id': u.id, 'gatehouse.credential_id': credential.id, 'gatehouse.attestation_verified': credential.attestationVerified === true });
  }

  app.post('/.gatehouse/enroll/start', limited, async (req) => {
    const e = await load(req);
    return { user: e.user.value.id, webauthnDone: e.enrollment.value.webauthnDone, totp: e.totpRequired ? 'required' : 'not-required', complete: false };
  });

  app.post('/.gatehouse/enroll/webauthn/options', limited, async (req) => {
    const e = await load(req);
    if (e.enrollment.value.webauthnDone) throw new GatehouseError('ERR_LOGIN_FACTOR_ORDER', 'the security key of this enrollment is registered: confirm the OTP token');
    const options = await startRegistration({ store, clock, rp: c.rp, userId: e.user.value.id, bound: e.hash, challengeTtlMs: c.challengeTtlMs, excludeCredentialIds: e.user.value.credentialIds ?? [] });
    return { options };
  });

  app.post('/.gatehouse/enroll/webauthn', limited, async (req) => {
    const e = await load(req);
    const userId = e.user.value.id;
    // One key per enrollment: a second would replace what the page showed as registered
    if (e.enrollment.value.webauthnDone) throw new GatehouseError('ERR_LOGIN_FACTOR_ORDER', 'the security key of this enrollment is registered: confirm the OTP token');
    let credential: CredentialRecord;
    try {
      credential = await finishRegistration({ store, clock, rp: c.rp, userId, bound: e.hash, challengeTtlMs: c.challengeTtlMs, policy: c.attestation, response: ENROLL_BODY.read(req.body).response });
    } catch (err) {
      c.event(req, 'enrollment.webauthn', 'failure', { 'user.id': userId, 'gatehouse.error_code': err instanceof GatehouseError ? err.code : 'ERR_INTERNAL', 'event.reason': (err as Error).message.slice(0, 300) });
      throw err;
    }
    const verified = { 'user.id': userId, 'gatehouse.credential_id': credential.id, 'gatehouse.aaguid': credential.aaguid, 'gatehouse.attestation_format': credential.fmt, 'gatehouse.attestation_verified': credential.attestationVerified === true };
    if (!e.totpRequired) {
      c.event(req, 'enrollment.webauthn', 'success', verified);
      await finish(req, e, credential, { compares: [], ops: [] });
      return { complete: true };
    }
    // the key waits in the enrollment until the OTP token is confirmed
    const next: EnrollmentRecord = { ...e.enrollment.value, webauthnDone: true, pendingCredential: credential };
    const r = await commit(store, { compares: [unchanged(ENROLLMENTS_PREFIX + e.hash, e.enrollment), unchanged(USERS_PREFIX + userId, e.user)], ops: [{ op: 'put', key: ENROLLMENTS_PREFIX + e.hash, value: JSON.stringify(next), ...(e.enrollment.lease !== undefined ? { lease: e.enrollment.lease } : {}) }] });
    if (r === undefined) throw new GatehouseError('ERR_ENROLLMENT_INVALID', 'the enrollment changed meanwhile; reload the link');
    c.event(req, 'enrollment.webauthn', 'success', verified);
    return { complete: false };
  });

  app.post('/.gatehouse/enroll/totp/options', limited, async (req) => {
    const e = await load(req);
    if (!e.enrollment.value.webauthnDone) throw new GatehouseError('ERR_LOGIN_FACTOR_ORDER', 'expected the security key first');
    if (e.assigned !== undefined) return { serial: e.assigned.value.serial, assigned: true, kind: otpKindOf(e.assigned.value) };
    // load() let through only with totp.allowSoftware: a seed for a phone app
    const seed = randomBytes(20);
    const serial = `enrolled-${e.user.value.id}-${randomBytes(4).toString('hex')}`;
    try {
      const sealedSeed = sealSeed(c.kek, serial, seed);
      const next: EnrollmentRecord = { ...e.enrollment.value, pendingSeed: { serial, sealedSeed } };
      const r = await commit(store, { compares: [unchanged(ENROLLMENTS_PREFIX + e.hash, e.enrollment)], ops: [{ op: 'put', key: ENROLLMENTS_PREFIX + e.hash, value: JSON.stringify(next), ...(e.enrollment.lease !== undefined ? { lease: e.enrollment.lease } : {}) }] });
      if (r === undefined) throw new GatehouseError('ERR_ENROLLMENT_INVALID', 'the enrollment changed meanwhile; reload the link');
      const secret = toBase32(seed);
      const uri = generateURI({ issuer: c.rp.name, label: e.user.value.id, secret, digits: 6, period: 30, algorithm: 'sha1' });
      const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      // the secret is in this body once; every response of this scope is Cache-Control: no-store
      return { serial, assigned: false, kind: 'software', secret, qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}` };
    } finally {
      seed.fill(0);
    }
  });

  app.post('/.gatehouse/enroll/totp', limited, async (req) => {
    const e = await load(req);
    const userId = e.user.value.id;
    const credential = e.enrollment.value.pendingCredential;
    if (!e.enrollment.value.webauthnDone || credential === undefined) throw new GatehouseError('ERR_LOGIN_FACTOR_ORDER', 'expected the security key first');
    const body = ENROLL_BODY.read(req.body);
    const [code1, code2] = [body.code1, body.code2].map((v) => (v ?? '').trim());
    const assigned = e.assigned;
    const pending = e.enrollment.value.pendingSeed;
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
    // Its step must come after the last one the token had accepted (an assigned token's codes are good once)
    if (step === undefined || (assigned !== undefined && step <= assigned.value.lastStep)) {
      const err = new GatehouseError('ERR_TOTP_INVALID', `expected two consecutive codes of token ${source.serial}, the second one current`);
      c.event(req, 'enrollment.totp', 'failure', { 'user.id': userId, 'gatehouse.error_code': err.code });
      if (await c.regulator.fail(userId)) c.event(req, 'authentication.lockout', 'failure', { 'user.id': userId, 'event.kind': 'alert', 'event.severity': 5 });
      throw err;
    }
    const key = TOTP_PREFIX + userId;
    const record: TotpRecord = assigned !== undefined
      ? { ...assigned.value, lastStep: step }
      : { format: 1, userId, serial: source.serial, sealedSeed: source.sealedSeed, ...ENROLL_PARAMS, lastStep: step, assignedAt: clock.now(), kind: 'software' };
    await finish(req, e, credential, { compares: [unchanged(key, assigned)], ops: [{ op: 'put', key, value: JSON.stringify(record) }] });
    c.event(req, 'enrollment.totp', 'success', { 'user.id': userId, 'gatehouse.totp_serial': source.serial, 'gatehouse.totp_kind': otpKindOf(record) });
    return { complete: true };
  });
}
