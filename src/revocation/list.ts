// What is revoked now, read from the store (the authority), for `gatehouse revoke list` and the
// admin API. A record that cannot be read is listed as such: it counts as revoked everywhere
// (fail closed), and lifting it is how an operator clears it.
import { GatehouseError } from '../errors.js';
import { rangePages, text, type KeyValue, type Store } from '../store/index.js';
import { REVOCATION_GRACE_MS } from '../pki/index.js';
import { decodeStoredRevocation, parseRevokedKey } from './revocation-set.js';
import { REVOKED_PREFIX, type RevocationKind, type RevocationRecord } from './types.js';

export interface ListedRevocation extends Omit<RevocationRecord, 'format'> {
  /** The record's value could not be read; kind and id come from its key. */
  unreadable?: true;
}

export interface RevocationList {
  revocations: ListedRevocation[];
  /** More records than `limit` exist. */
  truncated: boolean;
}

const PAGE = 1_000;

/** Every stored revocation (of one kind), in key order: kind, then id. */
export async function listRevocations(store: Store, o: { kind?: RevocationKind | undefined; limit?: number; now: number }): Promise<RevocationList> {
  const prefix = o.kind === undefined ? REVOKED_PREFIX : `${REVOKED_PREFIX}${o.kind}/`;
  const limit = o.limit ?? 10_000;
  const out: ListedRevocation[] = [];
  const revision = await store.revision();
  for await (const page of rangePages(store, { prefix }, { limit: PAGE, revision })) {
    for (const kv of page) {
      if (out.length === limit) return { revocations: out, truncated: true };
      const row = listed(kv, text(kv.key).slice(REVOKED_PREFIX.length), o.now);
      if (row !== undefined) out.push(row);
    }
  }
  return { revocations: out, truncated: false };
}

function listed(kv: KeyValue, name: string, now: number): ListedRevocation | undefined {
  try {
    const { format: _format, ...r } = decodeStoredRevocation(kv, name, now);
    // a certificate's record keeps notAfter; its lease ends a grace period after it
    return r.kind === 'cert' ? { ...r, expiresAt: certExpiry(kv.value) } : r;
  } catch (err) {
    if (!(err instanceof GatehouseError)) throw err;
    // a key that names no kind and id is ignored by every replica too
    const named = parseRevokedKey(REVOKED_PREFIX + name);
    return named === undefined ? undefined : { ...named, reason: 'unspecified', revokedAt: '', by: 'unknown', expiresAt: null, unreadable: true };
  }
}

function certExpiry(value: Uint8Array): string | null {
  try {
    const v = JSON.parse(text(value)) as { notAfter?: unknown };
    const t = typeof v.notAfter === 'string' ? Date.parse(v.notAfter) : NaN;
    return Number.isNaN(t) ? null : new Date(t + REVOCATION_GRACE_MS).toISOString();
  } catch {
    return null;
  }
}
