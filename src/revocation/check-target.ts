// Before an operator's revocation is written: does it name something that can ever be refused?
// A typo (`nosuchuser`, `spiffe://exmple.org/...`) would otherwise store a permanent record that
// protects nothing while the operator believes the real one revoked. `force` revokes ahead of
// time (a user about to be created, a service of a federated domain); the event says so.
import { GatehouseError } from '../errors.js';
import type { Store } from '../store/index.js';
import { storeKeys } from '../store/keys.js';
import { parseSpiffeId } from '../pki/index.js';
import type { RevocationKind } from './types.js';

export interface TargetCheckOptions {
  /** This gateway's trust domain; undefined: a service ID is checked for its form only. */
  trustDomain?: string | undefined;
  force?: boolean | undefined;
  /** How the caller forces it, for the message: `--force` (CLI) or `force: true` (API). */
  forceHint?: string;
}

/** What a forced revocation skipped (recorded in its event), or undefined when nothing was skipped. */
export interface TargetCheckResult {
  skipped?: 'user-not-found' | 'foreign-trust-domain';
}

/** Checks a canonical id (see canonicalId) of an operator's revocation; throws ERR_USER_NOT_FOUND or ERR_REVOCATION_INVALID. */
export async function checkRevocationTarget(store: Store, kind: RevocationKind, id: string, o: TargetCheckOptions = {}): Promise<TargetCheckResult> {
  const hint = o.forceHint ?? '--force';
  switch (kind) {
    case 'user': {
      // the user record is authenticate's; its key layout is the store's (DESIGN.md, "Keys in the store")
      if ((await store.get(storeKeys.user(id))) !== undefined) return {};
      if (o.force === true) return { skipped: 'user-not-found' };
      throw new GatehouseError('ERR_USER_NOT_FOUND', `no user ${id}; to revoke a user before they exist, pass ${hint}`);
    }
    case 'service': {
      const td = parseSpiffeId(id).trustDomain;
      if (o.trustDomain === undefined || td === o.trustDomain) return {};
      if (o.force === true) return { skipped: 'foreign-trust-domain' };
      throw new GatehouseError('ERR_REVOCATION_INVALID', `service: ${id} is of trust domain ${td}, not this gateway's ${o.trustDomain}; to revoke it anyway, pass ${hint}`);
    }
    default:
      return {};
  }
}
