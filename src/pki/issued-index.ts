// The issued-certificates index: /gatehouse/ca/issued/<serial> -> {serial, spiffeId, notBefore, notAfter, issuedAt}.
// `cert revoke <serial>` reads the notAfter here to bound the revocation's lease, so an operator
// needs only the serial. Each entry lives (by lease) until its certificate could no longer be
// revoked usefully, so the index never grows beyond the certificates still valid.
import { GatehouseError } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/index.js';
import { canonicalSerial } from './lib/serial.js';
import { REVOCATION_GRACE_MS } from './revoke-certificate.js';
import { decodeOrThrow, jsonCodec, storeKeys } from '../store/keys.js';
import type { IssuedCertificate, IssuedRecord } from './types.js';

const issuedJson = jsonCodec<IssuedRecord>('issued certificate');

export function issuedKey(serial: string): string {
  return storeKeys.caIssued(serial);
}

export async function recordIssued(store: Store, issued: IssuedCertificate, options: { clock: Clock }): Promise<IssuedRecord> {
  const now = options.clock.now();
  const record: IssuedRecord = {
    serial: issued.serial,
    spiffeId: issued.spiffeId,
    notBefore: issued.notBefore.toISOString(),
    notAfter: issued.notAfter.toISOString(),
    issuedAt: new Date(now).toISOString(),
  };
  const lease = await store.grant(Math.max(1, Math.ceil((issued.notAfter.getTime() + REVOCATION_GRACE_MS - now) / 1000)));
  try {
    await store.put(issuedKey(issued.serial), JSON.stringify(record), { lease: lease.id, ifAbsent: true });
  } catch (err) {
    await store.revoke(lease.id).catch(() => undefined);
    throw err;
  }
  return record;
}

export async function lookupIssued(store: Store, serial: string): Promise<IssuedRecord | undefined> {
  const s = canonicalSerial(serial);
  if (s === undefined) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', `not a certificate serial: ${JSON.stringify(String(serial).slice(0, 80))}`);
  const kv = await store.get(issuedKey(s));
  return kv === undefined ? undefined : decodeOrThrow(issuedJson, kv);
}
