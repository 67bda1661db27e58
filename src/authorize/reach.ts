// "May this caller call that service at all?": token exchange issues a token for an audience
// only when some allow rule admits the caller to it (any method, any path). A scan over the
// namespace's rules: exchange is rare, the request path never calls this.
import type { Principal } from '../contracts/authz.js';
import type { PolicyState } from './types.js';

export function canReach(state: PolicyState | undefined, principal: Principal, namespace: string, service: string): boolean {
  const policy = state?.namespaces.get(namespace);
  if (policy === undefined) return false;
  const roles = principal.kind === 'user' ? (principal.roles[namespace] ?? []) : [];
  return policy.rules.some(
    (rule) =>
      rule.effect === 'allow' &&
      (rule.service === '*' || rule.service === service) &&
      rule.from.some((peer) =>
        peer.kind === 'role'
          ? roles.includes(peer.role)
          : principal.kind === 'service' && peer.namespace === principal.namespace && (peer.service === '*' || peer.service === principal.service),
      ),
  );
}
