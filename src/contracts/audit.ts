// ECS-shaped audit events (Elastic Common Schema field names, flattened with dots): the contract
// every part that records events shares; the audit part stores them.

export type Outcome = 'success' | 'failure' | 'unknown';

export interface AuditEvent {
  '@timestamp': string;
  'event.action': string;
  'event.outcome': Outcome;
  'event.kind'?: 'event' | 'alert';
  'event.severity'?: number;
  'event.reason'?: string;
  'source.ip'?: string;
  'user.id'?: string;
  'service.name'?: string;
  'http.request.method'?: string;
  'http.response.status_code'?: number;
  'url.path'?: string;
  'tls.client.x509.serial_number'?: string;
  'gatehouse.subject'?: string;
  'gatehouse.namespace'?: string;
  'gatehouse.service'?: string;
  'gatehouse.rule'?: string;
  'gatehouse.reasons'?: string[];
  'gatehouse.request_id'?: string;
  'gatehouse.mode'?: 'enforce' | 'dry-run';
  'gatehouse.policy_version'?: number;
  'gatehouse.error_code'?: string;
  [extra: `gatehouse.${string}`]: string | number | boolean | string[] | undefined;
}

/** Where parts send events; the store-backed writer batches them off the request path. */
export interface AuditSink {
  append(event: AuditEvent): void;
}

/**
 * Every `event.action` there is: a closed list, so an alert or a query can name them all and
 * nobody — least of all an unauthenticated caller — can choose one. A new event adds its action
 * here (test/admin/actions.test.ts checks the sources against it).
 */
export const OPERATOR_ACTIONS = [
  // the CLI (straight on the store or through the gateway's local API) and the admin API
  'admin.policy.apply',
  'admin.cert.issue',
  'admin.cert.revoke',
  'admin.user.add',
  'admin.user.enroll',
  'admin.user.list',
  'admin.user.disable',
  'admin.user.enable',
  'admin.user.delete',
  'admin.user.roles',
  'admin.user.keys',
  'admin.user.key.remove',
  'admin.totp.import',
  'admin.totp.assign',
  'admin.totp.unassign',
  'admin.revoke',
  'admin.revoke.lift',
  'admin.revoke.list',
  'admin.store.compact',
  /** The local API refused a call before any operation ran (no token, or no such operation). */
  'admin.op.refused',
  // the security console's reads
  'admin.console.open',
  /** A console or admin API path asked for on another host than the console's. */
  'admin.console.wrong_host',
  'admin.sessions.list',
  'admin.policy.graph',
  'admin.policy.explain',
  'admin.audit.query',
] as const;

export const AUDIT_ACTIONS = [
  // the request pipeline
  'proxy.request',
  'proxy.upgrade',
  'proxy.connection',
  'proxy.request.aborted',
  'tls.handshake',
  'tls.certificate.expired',
  'http.request.aborted',
  'http.rate_limited',
  // sign-in and enrollment
  'authentication.start',
  'authentication.webauthn',
  'authentication.totp',
  'authentication.session',
  'authentication.step_up',
  'authentication.lockout',
  'authentication.locked',
  'authentication.counter_regression',
  'authentication.logout',
  'authentication.handoff',
  'enrollment.complete',
  'enrollment.webauthn',
  'enrollment.totp',
  // tokens, policy, the store
  'token.exchange',
  'policy.reload',
  'store.record.invalid',
  // a revocation applied on a replica
  'revocation.applied',
  // the audit chain about itself
  'audit.event.invalid',
  'audit.events.dropped',
  'audit.chain.forked',
  'audit.chain.restarted',
  ...OPERATOR_ACTIONS,
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];

const ACTIONS: ReadonlySet<string> = new Set(AUDIT_ACTIONS);

export function isAuditAction(v: unknown): v is AuditAction {
  return typeof v === 'string' && ACTIONS.has(v);
}

/** Who asked for an operator action. */
export interface Actor {
  /** cli: an OS user on a host (`alice@bastion-1`); session: a signed-in person (their user id). */
  kind: 'cli' | 'session';
  id: string;
  /** A session's public sid (never its cookie or hash). */
  sid?: string;
}

/** How an operator action arrived: the CLI on the store, the CLI through the gateway, the admin API, the console. */
export type OperatorChannel = 'store' | 'local-api' | 'admin-api' | 'console';

/** What an operator action acted on: the person (the event's user.id), a readable name and its parameters. */
export interface OperatorTarget {
  user?: string;
  target: string;
  /** Parameters and results worth keeping (never a secret: no seed, token, cookie or session hash). */
  fields?: Partial<AuditEvent>;
}

export interface OperatorEventInput {
  at: number;
  action: OperatorAction;
  outcome: Outcome;
  /** Undefined: refused before anyone was identified (no session, no token). */
  actor: Actor | undefined;
  channel: OperatorChannel;
  sourceIp?: string | undefined;
  requestId?: string | undefined;
  target?: OperatorTarget | undefined;
  /** A failure's code and message. */
  error?: { code: string; message: string } | undefined;
}

/** The one shape of an operator action's event, whichever way it arrived (CLI, local API, admin API). */
export function operatorEvent(o: OperatorEventInput): AuditEvent {
  return {
    '@timestamp': new Date(o.at).toISOString(),
    'event.action': o.action,
    'event.outcome': o.outcome,
    ...(o.actor !== undefined ? { 'gatehouse.actor': o.actor.id, 'gatehouse.actor_kind': o.actor.kind } : {}),
    ...(o.actor?.sid !== undefined ? { 'gatehouse.sid': o.actor.sid } : {}),
    'gatehouse.channel': o.channel,
    ...(o.sourceIp !== undefined ? { 'source.ip': o.sourceIp } : {}),
    ...(o.requestId !== undefined ? { 'gatehouse.request_id': o.requestId } : {}),
    ...(o.target?.user !== undefined ? { 'user.id': o.target.user } : {}),
    ...(o.target !== undefined ? { 'gatehouse.target': o.target.target, ...o.target.fields } : {}),
    ...(o.error !== undefined ? { 'gatehouse.error_code': o.error.code, 'event.reason': o.error.message.slice(0, 300) } : {}),
  };
}
