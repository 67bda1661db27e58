// Which factors a user must present, in order: mfa.require for everyone, plus what per-role
// lists add (config validation guarantees they only add). Keys are "role" (in any namespace)
// or "namespace:role".
import type { Factor, RoleMap } from './types.js';

export interface MfaPolicy {
  require: readonly Factor[];
  roles?: Readonly<Record<string, readonly Factor[]>>;
}

export function factorsFor(roles: RoleMap, mfa: MfaPolicy): Factor[] {
  const out = [...mfa.require];
  for (const [key, factors] of Object.entries(mfa.roles ?? {})) {
    const colon = key.indexOf(':');
    const held = colon < 0 ? Object.values(roles).some((rs) => rs.includes(key)) : (roles[key.slice(0, colon)] ?? []).includes(key.slice(colon + 1));
    if (!held) continue;
    for (const f of factors) if (!out.includes(f)) out.push(f);
  }
  return out;
}
