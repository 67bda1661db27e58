// Record a certificate revocation in the store, where every replica's CertRevocationList sees it.
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';
import { canonicalSerial } from './lib/serial.js';
import { decodeOrThrow, jsonCodec, storeKeys } from '../store/keys.js';
import { REVOCATION_REASONS, type CertRevocation, type RevocationReason } from './types.js';

const revocationJson = jsonCodec<CertRevocation>('certificate revocation');

export interface RevokeCertificateOptions {
  serial: string;
  /** The certificate's notAfter: after it (plus a grace period) the record is no longer needed. */
  notAfter: Date;
  reason?: RevocationReason;
  clock: Clock;
}

export interface RevokeCertificateResult {
  record: CertRevocation;
  /** False when the serial was already revoked; the first record stands. */
  created: boolean;
  /** When the store will drop the record (its lease's end). */
  expiresAt: Date;
}

/**
 * How long a record outlives its certificate. A replica whose clock runs behind still
 * accepts the certificate for a while after notAfter by our clock; the record must cover it.
 * This also means a certificate that has just expired is still recorded (briefly), so
 * revoking is always the same one path and never a silent no-op.
 */
export const REVOCATION_GRACE_MS = 5 * 60_000;

export function revokedCertKey(serial: string): string {
  return storeKeys.revokedCert(serial);
}

function bad(message: string): GatehouseError {
  return new GatehouseError('ERR_CERT_REVOCATION_INVALID', message);
}

/** Idempotent: revoking a revoked serial returns the existing record and changes nothing. */
export async function revokeCertificate(store: Store, options: RevokeCertificateOptions): Promise<RevokeCertificateResult> {
  const serial = canonicalSerial(options.serial);
  if (serial === undefined) throw bad(`not a certificate serial (hex, at most 20 bytes): ${JSON.stringify(String(options.serial).slice(0, 80))}`);
  const reason = options.reason ?? 'unspecified';
  if (!Object.hasOwn(REVOCATION_REASONS, reason)) throw bad(`unknown revocation reason ${JSON.stringify(reason)} (one of ${Object.keys(REVOCATION_REASONS).join(', ')})`);
  if (!(options.notAfter instanceof Date) || Number.isNaN(options.notAfter.getTime())) throw bad('notAfter must be a valid date');

  const key = revokedCertKey(serial);
  const kv = await store.get(key);
  const existing = kv === undefined ? undefined : decodeOrThrow(revocationJson, kv);
  if (existing !== undefined) return { record: existing, created: false, expiresAt: new Date(Date.parse(existing.notAfter) + REVOCATION_GRACE_MS) };

  const now = options.clock.now();
  const ttlSeconds = Math.max(1, Math.ceil((options.notAfter.getTime() + REVOCATION_GRACE_MS - now) / 1000));

  const record: CertRevocation = { serial, revokedAt: new Date(now).toISOString(), reason, notAfter: options.notAfter.toISOString() };
  const lease = await store.grant(ttlSeconds);
  // Create only if absent: a concurrent revoke of the same serial (another replica, another operator) wins once.
  const txn = await store.txn(
    [{ key, target: 'createRevision', op: '==', value: 0 }],
    [{ op: 'put', key, value: JSON.stringify(record), lease: lease.id }],
    [{ op: 'get', key }],
  );
  if (txn.succeeded) return { record, created: true, expiresAt: new Date(now + ttlSeconds * 1000) };
  await store.revoke(lease.id).catch(() => undefined);
  const got = txn.results[0];
  const winner = got?.op === 'get' && got.kv !== undefined ? decodeOrThrow(revocationJson, got.kv) : undefined;
  if (winner === undefined) throw new GatehouseError('ERR_STORE_CONFLICT', `the revocation of ${serial} changed while it was written; retry`, { retryable: true });
  return { record: winner, created: false, expiresAt: new Date(Date.parse(winner.notAfter) + REVOCATION_GRACE_MS) };
}
