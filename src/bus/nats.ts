// The NATS bus: one JetStream stream holds every message, so a replica that was away replays
// what it missed. Subscriptions are ordered consumers implemented here rather than with the
// client's own ordered consumer, because resuming must be exact: the loop tracks the next
// stream sequence the handler needs, checks the consumer's delivery sequence for gaps, and
// recreates the (ephemeral, in-memory) consumer from that sequence after any disconnect,
// server restart or gap, dropping anything it has already handed over.
//
// Works with nats-server >= 2.9: consumers use a single filter_subject (filter_subjects needs
// 2.10) and the 2.9 named-consumer create API.
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { Consumer, ConsumerConfig, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, StreamConfig } from '@nats-io/jetstream';
import { connect, errors as natsErrors, nanos, nuid } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { GatehouseError } from '../errors.js';
import { MAX_PAYLOAD_BYTES, checkFromSequence, parsePattern, parseSubject, reportTo, toPayload } from './subject.js';
import type { Bus, BusHandler, BusMessage, NatsBusOptions, SubscribeOptions, Subscription } from './types.js';

const DEFAULT_STREAM = 'GATEHOUSE';
const DEFAULT_TIMEOUT_MS = 2_000;

// Stream defaults (configurable later): revocations matter for at most a token lifetime and the
// store stays the authority, so a day of history is plenty for a replica to catch up.
//   max_age 24 h, max_bytes 1 GiB (oldest dropped first), max_msg_size 1 MiB (payload limit plus
//   headers), duplicate_window 2 min (covers publish retries), file storage, 1 replica
//   (a clustered deployment should raise num_replicas to 3).
const STREAM_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const STREAM_MAX_BYTES = 1024 * 1024 * 1024;
const STREAM_MAX_MSG_SIZE = 1024 * 1024;
const STREAM_DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

// A pull asks for up to FETCH_BATCH messages and waits up to FETCH_EXPIRES_MS; the server sends
// idle heartbeats every half of that, so a dead connection is noticed within ~5 s.
const FETCH_BATCH = 256;
const FETCH_EXPIRES_MS = 5_000;
// A consumer left behind by a crashed process is removed by the server after this long.
const CONSUMER_INACTIVE_MS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());
const backoff = (attempt: number): number => Math.min(100 * 2 ** attempt, 5_000) * (0.5 + Math.random() / 2);

function apiCode(err: unknown): number | undefined {
  return err instanceof JetStreamApiError ? err.code : undefined;
}

/** Maps client errors to bus errors; never includes server URLs (they may carry credentials). */
function toBusError(err: unknown, what: string): GatehouseError {
  if (err instanceof GatehouseError) return err;
  if (err instanceof natsErrors.ClosedConnectionError || err instanceof natsErrors.DrainingConnectionError) {
    return new GatehouseError('ERR_BUS_CLOSED', `${what}: the connection is closed`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  if (/maximum (payload|message size) exceeded|message size exceeds/i.test(message)) {
    return new GatehouseError('ERR_BUS_PAYLOAD_TOO_LARGE', `${what}: ${message}`, { cause: err });
  }
  // Timeouts, no responders (JetStream starting), disconnects: all worth retrying.
  return new GatehouseError('ERR_BUS_UNAVAILABLE', `${what}: ${message}`, { cause: err, retryable: true });
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GatehouseError('ERR_BUS_UNAVAILABLE', `${what}: no answer within ${ms} ms`, { retryable: true })), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function streamConfig(name: string, prefix: string): Partial<StreamConfig> & { name: string } {
  return {
    name,
    subjects: [`${prefix}>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(STREAM_MAX_AGE_MS),
    max_bytes: STREAM_MAX_BYTES,
    max_msg_size: STREAM_MAX_MSG_SIZE,
    duplicate_window: nanos(STREAM_DUPLICATE_WINDOW_MS),
    num_replicas: 1,
  };
}

/** Creates the stream unless it exists; several replicas may race here, all must succeed. */
async function ensureStream(jsm: JetStreamManager, name: string, prefix: string): Promise<void> {
  const wanted = streamConfig(name, prefix);
  const check = (subjects: readonly string[] | undefined): void => {
    // Limits may have been tuned by an operator; only the subjects must cover ours.
    if (!(subjects ?? []).includes(`${prefix}>`)) {
      throw new GatehouseError('ERR_CONFIG_INVALID', `JetStream stream ${name} exists but does not hold subjects ${prefix}>`);
    }
  };
  try {
    check((await jsm.streams.info(name)).config.subjects);
    return;
  } catch (err) {
    if (apiCode(err) !== JetStreamApiCodes.StreamNotFound) throw err;
  }
  try {
    await jsm.streams.add(wanted);
  } catch {
    // Lost a creation race, or the stream exists with other limits: accept it if it fits.
    check((await jsm.streams.info(name)).config.subjects);
  }
}

class NatsBus implements Bus {
  readonly kind = 'nats' as const;
  readonly stream: string;
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  #closed = false;
  readonly #subs = new Set<NatsSubscription>();

  constructor(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, stream: string, timeoutMs: number) {
    this.nc = nc;
    this.js = js;
    this.jsm = jsm;
    this.stream = stream;
    this.prefix = `${stream.toLowerCase()}.`;
    this.timeoutMs = timeoutMs;
  }

  get closed(): boolean {
    return this.#closed || this.nc.isClosed();
  }

  #assertOpen(): void {
    if (this.closed) throw new GatehouseError('ERR_BUS_CLOSED', 'the NATS bus is closed');
  }

  async publish(subject: string, payload: Uint8Array | string): Promise<number> {
    this.#assertOpen();
    parseSubject(subject);
    const data = toPayload(payload);
    // One id for every attempt: the stream drops a retry whose first attempt did land, and
    // answers it with the first attempt's sequence.
    const msgID = nuid.next();
    const deadline = Date.now() + this.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      // Leave room for a retry if an attempt is lost in a reconnect.
      const attemptMs = Math.max(1, Math.min(left, Math.max(250, this.timeoutMs / 4)));
      try {
        const ack = await this.js.publish(this.prefix + subject, data, { msgID, timeout: attemptMs });
        return ack.seq;
      } catch (err) {
        const mapped = toBusError(err, 'publish');
        if (this.closed) throw new GatehouseError('ERR_BUS_CLOSED', 'the NATS bus is closed', { cause: err });
        const wait = Math.min(backoff(attempt), 250);
        if (!mapped.retryable || Date.now() + wait >= deadline) throw mapped;
        await sleep(wait);
      }
    }
  }

  async subscribe(pattern: string, handler: BusHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    this.#assertOpen();
    const tokens = parsePattern(pattern);
    checkFromSequence(options.fromSequence);
    const sub = new NatsSubscription(this, this.prefix + tokens.join('.'), handler, options.onError);
    try {
      await withDeadline(sub.start(options.fromSequence), this.timeoutMs, 'subscribe');
    } catch (err) {
      await sub.close();
      throw toBusError(err, 'subscribe');
    }
    this.#subs.add(sub);
    return sub;
  }

  forget(sub: NatsSubscription): void {
    this.#subs.delete(sub);
  }

  async ping(): Promise<boolean> {
    if (this.closed) return false;
    try {
      await withDeadline(this.jsm.streams.info(this.stream), this.timeoutMs, 'ping');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#subs].map((s) => s.close()));
    await this.nc.close().catch(() => undefined);
  }
}

class NatsSubscription implements Subscription {
  #lastSequence = 0;
  // The next stream sequence the handler may need; everything below it was handed over
  // (or, for an idle subscription, is known not to match).
  #next = 1;
  #stopped = false;
  #consumer: Consumer | undefined;
  #deliveries = 0;
  #messages: ConsumerMessages | undefined;

  constructor(
    private readonly bus: NatsBus,
    private readonly filter: string,
    private readonly handler: BusHandler,
    private readonly onError: ((err: Error) => void) | undefined,
  ) {}

  get lastSequence(): number {
    return this.#lastSequence;
  }

  /** Creates the first consumer (so subscribe() reports GONE or UNAVAILABLE), then runs the loop. */
  async start(fromSequence: number | undefined): Promise<void> {
    const info = await this.bus.jsm.streams.info(this.bus.stream);
    this.#next = fromSequence === undefined ? info.state.last_seq + 1 : Math.max(fromSequence, 1);
    await this.#create();
    // subscribe() may have given up (deadline) and closed us meanwhile.
    if (this.#stopped) return this.#dropConsumer();
    void this.#loop();
  }

  async #create(): Promise<void> {
    const { jsm, js, stream } = this.bus;
    const { state } = await jsm.streams.info(stream);
    // first_seq is 0 for a stream never written to, last_seq + 1 once everything has aged out.
    // The check is stream-wide: if the lost messages were all on other subjects this errs on
    // the side of GONE, which sends the caller to the store (the authority) to catch up.
    if (this.#next < state.first_seq) {
      throw new GatehouseError('ERR_BUS_SEQUENCE_GONE', `sequence ${this.#next} is no longer retained; the oldest is ${state.first_seq}`, {
        details: { fromSequence: this.#next, oldestSequence: state.first_seq },
      });
    }
    const config: Partial<ConsumerConfig> = {
      name: `gh_${nuid.next()}`,
      filter_subject: this.filter,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.#next,
      ack_policy: AckPolicy.None,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(CONSUMER_INACTIVE_MS),
    };
    const info = await jsm.consumers.add(stream, config);
    this.#dropConsumer();
    this.#consumer = js.consumers.getConsumerFromInfo(info);
    this.#deliveries = 0;
  }

  #dropConsumer(): void {
    const old = this.#consumer;
    this.#consumer = undefined;
    if (old !== undefined && !this.bus.nc.isClosed()) old.delete().catch(() => undefined);
  }

  async #loop(): Promise<void> {
    let failures = 0;
    let streamMissing = 0;
    while (!this.#stopped) {
      try {
        if (this.#consumer === undefined) await withDeadline(this.#create(), this.bus.timeoutMs, 'recreate consumer');
        if (await this.#fetchOnce()) await this.#refreshFloor();
        failures = 0;
        streamMissing = 0;
      } catch (err) {
        if (this.#stopped) return;
        if (this.bus.closed) return this.#end(new GatehouseError('ERR_BUS_CLOSED', 'the NATS connection closed', { cause: err }));
        if (err instanceof GatehouseError && err.code === 'ERR_BUS_SEQUENCE_GONE') return this.#end(err);
        // A server still recovering may briefly not know the stream; several misses in a row mean it was deleted.
        if (apiCode(err) === JetStreamApiCodes.StreamNotFound && ++streamMissing >= 5) {
          return this.#end(new GatehouseError('ERR_BUS_UNAVAILABLE', `stream ${this.bus.stream} was deleted`, { cause: err }));
        }
        // Disconnect, restart, missed heartbeats, consumer gone: start over from #next.
        this.#dropConsumer();
        await sleep(backoff(failures++));
      }
    }
  }

  /** One pull; returns true when it ended with nothing delivered (the subscription is idle). */
  async #fetchOnce(): Promise<boolean> {
    const consumer = this.#consumer;
    if (consumer === undefined) return false;
    const messages = await consumer.fetch({ max_messages: FETCH_BATCH, expires: FETCH_EXPIRES_MS });
    this.#messages = messages;
    let received = 0;
    try {
      for await (const m of messages) {
        if (this.#stopped) break;
        received++;
        // A skipped delivery sequence means messages were lost in transit: resume from #next.
        if (m.info.deliverySequence !== this.#deliveries + 1) {
          this.#dropConsumer();
          break;
        }
        this.#deliveries++;
        await this.#deliver(m);
      }
    } finally {
      this.#messages = undefined;
    }
    return received === 0 && this.#consumer === consumer;
  }

  async #deliver(m: JsMsg): Promise<void> {
    // Already handed over before a consumer was recreated.
    if (m.seq < this.#next) return;
    this.#next = m.seq + 1;
    this.#lastSequence = m.seq;
    const message: BusMessage = {
      subject: m.subject.slice(this.bus.prefix.length),
      seq: m.seq,
      data: m.data,
      time: m.time.getTime(),
    };
    try {
      await this.handler(message);
    } catch (err) {
      this.#report(err);
    }
  }

  /**
   * After an empty pull (at most every FETCH_EXPIRES_MS), moves #next to the stream's end when
   * no matching message is pending, so an idle subscription does not look "too old" (GONE) on
   * its next reconnect once the stream has aged out other subjects' messages. Stream info is
   * read before consumer info: a message arriving in between shows up as pending.
   */
  async #refreshFloor(): Promise<void> {
    const consumer = this.#consumer;
    if (consumer === undefined) return;
    const { state } = await this.bus.jsm.streams.info(this.bus.stream);
    const info = await consumer.info();
    if (info.num_pending === 0 && info.delivered.consumer_seq === this.#deliveries && this.#consumer === consumer) {
      this.#next = Math.max(this.#next, state.last_seq + 1);
    }
  }

  #report(err: unknown): void {
    reportTo(this.onError, err);
  }

  #end(err: GatehouseError): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.bus.forget(this);
    this.#dropConsumer();
    this.#report(err);
  }

  /** No handler call starts after this resolves; one already running is not awaited (it may be the caller). */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.bus.forget(this);
    await this.#messages?.close()?.catch(() => undefined);
    this.#dropConsumer();
  }
}

export async function openNatsBus(options: NatsBusOptions): Promise<Bus> {
  const stream = options.stream ?? DEFAULT_STREAM;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(stream)) {
    throw new GatehouseError('ERR_CONFIG_INVALID', `bus stream name must be 1-64 letters, digits, "_" or "-"`);
  }
  if (options.servers.length === 0) throw new GatehouseError('ERR_CONFIG_INVALID', 'bus.nats.servers is empty');
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.servers,
      name: 'gatehouse-bus',
      timeout: timeoutMs,
      // Reconnect forever: a replica without the bus still works from the store, and catches up later.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      // a silently dropped connection (no FIN) is noticed within ~4-6 s, not 30: revocations ride on it
      pingInterval: 2_000,
      maxPingOut: 2,
    });
  } catch (err) {
    throw toBusError(err, 'connect');
  }
  try {
    const js = jetstream(nc, { timeout: timeoutMs });
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    await ensureStream(jsm, stream, `${stream.toLowerCase()}.`);
    const max = nc.info?.max_payload;
    if (max !== undefined && max < MAX_PAYLOAD_BYTES) {
      throw new GatehouseError('ERR_CONFIG_INVALID', `nats-server max_payload (${max}) is below the bus limit (${MAX_PAYLOAD_BYTES})`);
    }
    return new NatsBus(nc, js, jsm, stream, timeoutMs);
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw toBusError(err, 'open');
  }
}
