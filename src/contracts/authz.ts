// Contracts between the service parts (authenticate, authorize, proxy, audit, revocation).
// They import only these types from each other, never each other's internals.

/** Who is calling, as established by authenticate. */
export type Principal =
  | {
      kind: 'service';
      /** spiffe://<trust-domain>/ns/<namespace>/sa/<service> */
      spiffeId: string;
      namespace: string;
      service: string;
      /** Serial (hex, lowercase) of the client certificate that proved it. */
      certSerial: string;
    }
  | {
      kind: 'user';
      userId: string;
      /** Roles per namespace, e.g. { payments: ['ops-admin'] }. */
      roles: Readonly<Record<string, readonly string[]>>;
    };

/** What is being asked, in the words policy uses. */
export interface AccessRequest {
  principal: Principal;
  /** Target namespace and service (from the route the Host header selected). */
  namespace: string;
  service: string;
  method: string;
  /** The exact path the upstream will get (validated, never normalised differently). */
  path: string;
  /**
   * How the route's upstream compares paths (its `paths`; default exact): on a case-insensitive
   * route allow rules match the folded path too. Deny rules always do.
   */
  pathCase?: PathCase;
}

export type PathCase = 'exact' | 'case-insensitive';

/** How the deciding rule's pattern matched the path: byte for byte, or only decoded and case-folded. */
export type PathComparison = 'exact' | 'case-folded';

/** Closed list of reasons, so every denial explains itself and audit can say why. */
export const DECISION_REASONS = [
  'allowed-by-rule',
  'no-matching-rule',
  'denied-by-rule',
  'unknown-route',
  'bad-certificate',
  'unauthenticated',
  'bad-path',
  'dry-run',
  'policy-unavailable',
  'bad-header',
  'rate-limited',
  'connection-limit',
] as const;
export type DecisionReason = (typeof DECISION_REASONS)[number];

export interface Decision {
  /** The verdict the policy reached. */
  allow: boolean;
  /** True when the request may pass: allow, or the namespace runs in dry-run. */
  pass: boolean;
  reasons: DecisionReason[];
  /** Name of the deciding rule (the first matching deny, or the first matching allow). */
  rule?: string;
  /** With a rule: whether one of its patterns matched the path exactly, or only folded. */
  comparison?: PathComparison;
  mode: 'enforce' | 'dry-run';
  /** Version of the policy state that decided (changes on every reload). */
  policyVersion: number;
}

export interface Authorizer {
  decide(request: AccessRequest): Decision;
  /** True when some allow rule admits the principal to the service (any method or path): token exchange asks this. */
  canReach(principal: Principal, namespace: string, service: string): boolean;
}
