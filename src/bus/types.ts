// The bus: ordered, durable broadcast (DESIGN.md, "The bus"). The store stays the authority;
// the bus makes replicas hear of revocations in milliseconds.

export interface BusMessage {
  /** The subject as published (relative to the bus's namespace, e.g. "revocation.session"). */
  subject: string;
  /** Sequence number assigned by the bus; strictly increasing per bus. */
  seq: number;
  data: Uint8Array;
  /** Publish time, ms since the epoch, as recorded by the bus. */
  time: number;
}

export type BusHandler = (message: BusMessage) => void | Promise<void>;

export interface SubscribeOptions {
  /** Deliver every retained message with seq >= fromSequence, then live ones; default: only new ones. */
  fromSequence?: number;
  /**
   * Called when the handler throws (delivery goes on with the next message) and when the
   * subscription ends on its own (e.g. ERR_BUS_SEQUENCE_GONE); closing it or the bus is not reported.
   */
  onError?: (err: Error) => void;
}

export interface Subscription {
  /** The last sequence handed to the handler (0 when none yet): resume from lastSequence + 1. */
  readonly lastSequence: number;
  close(): Promise<void>;
}

export interface Bus {
  readonly kind: 'memory' | 'nats';
  /** Resolves with the message's sequence once the bus has stored it durably. */
  publish(subject: string, payload: Uint8Array | string): Promise<number>;
  /**
   * Subjects are dot-separated tokens; in a pattern `*` matches one token and a final `>`
   * matches one or more. Messages reach the handler in sequence order, one at a time
   * (an async handler is awaited before the next message).
   */
  subscribe(pattern: string, handler: BusHandler, options?: SubscribeOptions): Promise<Subscription>;
  /** True when the bus answers (used by /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface MemoryBusOptions {
  kind: 'memory';
  /** How many messages to retain for resume (default 100,000). */
  retain?: number;
}

export interface NatsBusOptions {
  kind: 'nats';
  servers: string[];
  /** JetStream stream name (default GATEHOUSE); subjects live under "<stream lowercased>.". */
  stream?: string;
  /** Per-call deadline in ms (default 2,000). */
  timeoutMs?: number;
}

export type BusOptions = MemoryBusOptions | NatsBusOptions;
