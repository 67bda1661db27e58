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
