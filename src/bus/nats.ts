// The NATS bus: one JetStream stream holds every message, so a replica that was away replays
// what it missed. Each subscription is the client's ordered consumer (@nats-io/jetstream: an
// ephemeral, in-memory, no-ack consumer that the client checks for delivery gaps and missed
// heartbeats and recreates from the last stream sequence it delivered when the consumer is
// gone or a delivery sequence is skipped; after a reconnect it only pulls again). Around it the
// bus keeps what the client does not:
// - a resume point (#next) that also moves past other subjects' messages while the
//   subscription is idle, so their aging out is not mistaken for a gap;
// - the retention check: before the first consumer and again after every recreation (the
//   client's `reset` notification, before the new consumer's first message is handed over), a
//   resume point older than the stream's first sequence ends the subscription with
//   ERR_BUS_SEQUENCE_GONE; the client alone would skip what was lost without a word;
// - losses the client sees only when a later message arrives (a message delivered into a dying
//   connection, then silence): after a reconnect, or an idle heartbeat counting more deliveries
//   than were taken, the subscription reopens from #next.
//
// Works with nats-server >= 2.9.4: the ordered consumer is created with a single
// filter_subject (filter_subjects needs 2.10).
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { Consumer, ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, StreamConfig } from '@nats-io/jetstream';
import { connect, errors as natsErrors, nanos, nuid } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { GatehouseError } from '../errors.js';
import { Delays, sleep, systemRandom, type BackoffPolicy, type RandomSource } from '../lib/backoff.js';
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.js';
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

// Pulls ask for up to FETCH_BATCH messages and last up to FETCH_EXPIRES_MS; the server sends
// idle heartbeats every half of that, so a dead connection is noticed within ~5 s. An idle
// subscription moves its resume point as often.
const FETCH_BATCH = 256;
const FETCH_EXPIRES_MS = 5_000;
// A consumer left behind by a crashed process is removed by the server after this long.
const CONSUMER_INACTIVE_MS = 60_000;

// Retries: publish attempts within the call's deadline, and recreating a subscription's consumer.
const PUBLISH_RETRY = { minMs: 100, maxMs: 250, jitterFraction: 0.5 };
const RESUBSCRIBE_RETRY = { minMs: 100, maxMs: 5_000, jitterFraction: 0.5 };

function policy(p: { minMs: number; maxMs: number; jitterFraction: number }, random: RandomSource): BackoffPolicy {
  return { minMs: p.minMs, maxMs: p.maxMs, jitter: { fraction: p.jitterFraction, random } };
}

/** Time and randomness for the bus's retries (tests may inject them; the default is the system's). */
export interface NatsBusRuntime {
  clock?: Clock;
  random?: RandomSource;
}

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
  readonly clock: Clock;
  readonly random: RandomSource;
  #closed = false;
  readonly #subs = new Set<NatsSubscription>();

  constructor(nc: NatsConnection, js: JetStreamClient, jsm: JetStreamManager, stream: string, timeoutMs: number, runtime: NatsBusRuntime) {
    this.nc = nc;
    this.js = js;
    this.jsm = jsm;
    this.stream = stream;
    this.prefix = `${stream.toLowerCase()}.`;
    this.timeoutMs = timeoutMs;
    this.clock = runtime.clock ?? systemClock;
    this.random = runtime.random ?? systemRandom;
    void this.#watchConnection();
  }

  /** What the server delivered while the connection was down may be lost: each subscription starts over from its resume point. */
  async #watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) if (s.type === 'reconnect') for (const sub of this.#subs) sub.reconnected();
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
    const deadline = this.clock.now() + this.timeoutMs;
    const delays = new Delays(policy(PUBLISH_RETRY, this.random));
    for (;;) {
      const left = deadline - this.clock.now();
      // Leave room for a retry if an attempt is lost in a reconnect.
      const attemptMs = Math.max(1, Math.min(left, Math.max(250, this.timeoutMs / 4)));
      try {
        const ack = await this.js.publish(this.prefix + subject, data, { msgID, timeout: attemptMs });
        return ack.seq;
      } catch (err) {
        const mapped = toBusError(err, 'publish');
        if (this.closed) throw new GatehouseError('ERR_BUS_CLOSED', 'the NATS bus is closed', { cause: err });
        const wait = delays.next();
        if (!mapped.retryable || this.clock.now() + wait >= deadline) throw mapped;
        await sleep(this.clock, wait);
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
  #messages: ConsumerMessages | undefined;
  /** The client is recreating its consumer: check retention before the next hand-over. */
  #recreated = false;
  /** No handler call running and nothing taken from the consumer: the resume point may move. */
  #idle = true;
  /** The consumer (the client's current one, by name) and delivery sequence of the last message taken. */
  #taken = { consumer: '', delivery: 0 };
  #floorTimer: TimerHandle | undefined;
  readonly #retry: Delays;

  constructor(
    private readonly bus: NatsBus,
    private readonly filter: string,
    private readonly handler: BusHandler,
    private readonly onError: ((err: Error) => void) | undefined,
  ) {
    this.#retry = new Delays(policy(RESUBSCRIBE_RETRY, bus.random));
  }

  get lastSequence(): number {
    return this.#lastSequence;
  }

  /** Opens the first consumer (so subscribe() reports GONE or UNAVAILABLE), then runs the loop. */
  async start(fromSequence: number | undefined): Promise<void> {
    const info = await this.bus.jsm.streams.info(this.bus.stream);
    this.#next = fromSequence === undefined ? info.state.last_seq + 1 : Math.max(fromSequence, 1);
    await this.#open();
    // subscribe() may have given up (deadline) and closed us meanwhile.
    if (this.#stopped) return this.#drop();
    void this.#loop();
    this.#armFloor();
  }

  /**
   * Throws ERR_BUS_SEQUENCE_GONE when the stream no longer holds #next. first_seq is 0 for a
   * stream never written to, last_seq + 1 once everything has aged out. The check is
   * stream-wide: if the lost messages were all on other subjects this errs on the side of GONE,
   * which sends the caller to the store (the authority) to catch up.
   */
  async #checkRetained(): Promise<void> {
    const { state } = await this.bus.jsm.streams.info(this.bus.stream);
    if (this.#next < state.first_seq) {
      throw new GatehouseError('ERR_BUS_SEQUENCE_GONE', `sequence ${this.#next} is no longer retained; the oldest is ${state.first_seq}`, {
        details: { fromSequence: this.#next, oldestSequence: state.first_seq },
      });
    }
  }

  async #open(): Promise<void> {
    await this.#checkRetained();
    const consumer = await this.bus.js.consumers.get(this.bus.stream, {
      filter_subjects: this.filter,
      opt_start_seq: this.#next,
      inactive_threshold: CONSUMER_INACTIVE_MS,
    });
    const messages = await consumer.consume({ max_messages: FETCH_BATCH, expires: FETCH_EXPIRES_MS });
    this.#drop();
    this.#consumer = consumer;
    this.#messages = messages;
    this.#recreated = false;
    void this.#watchStatus(messages);
  }

  /** After a reconnect: reopen from #next rather than wait for a heartbeat to show what was lost. */
  reconnected(): void {
    if (!this.#stopped && this.#messages !== undefined) this.#drop();
  }

  /** Never awaits: it must see a reset before the new consumer's first message. */
  async #watchStatus(messages: ConsumerMessages): Promise<void> {
    for await (const n of messages.status()) {
      if (this.#messages !== messages) continue;
      if (n.type === 'reset') this.#recreated = true;
      // a turn of the event loop, not time: by then the loop has taken what arrived before the heartbeat
      else if (n.type === 'heartbeat') setImmediate(() => void this.#checkDelivered(messages, n.lastConsumerSequence));
    }
  }

  /**
   * The client notices a lost message only when a later one arrives with a skipped delivery
   * sequence. One delivered while the connection was going down (it still counts as delivered
   * on the server) followed by silence would wait for the next publication. The server's idle
   * heartbeat says how many it delivered on the current consumer: ahead of what the loop took,
   * with the loop waiting on an empty queue, is such a loss, so start over from #next.
   */
  async #checkDelivered(messages: ConsumerMessages, delivered: number): Promise<void> {
    const consumer = this.#consumer;
    // #idle at a turn of the event loop: the loop waits on the client's queue, which is empty
    const quiet = (): boolean => !this.#stopped && this.#idle && this.#messages === messages && this.#consumer === consumer;
    if (consumer === undefined || !quiet()) return;
    // the client's cached name: the consumer the heartbeat came from (heartbeats to an older one's inbox are dropped)
    const { name } = await consumer.info(true);
    const taken = this.#taken.consumer === name ? this.#taken.delivery : 0;
    if (delivered <= taken || !quiet()) return;
    // ends the loop's iteration; it reopens from #next (the retention check included)
    this.#drop();
  }

  #drop(): void {
    const messages = this.#messages;
    const consumer = this.#consumer;
    this.#messages = undefined;
    this.#consumer = undefined;
    messages?.stop();
    if (consumer !== undefined && !this.bus.nc.isClosed()) consumer.delete().catch(() => undefined);
  }

  async #loop(): Promise<void> {
    let streamMissing = 0;
    while (!this.#stopped) {
      try {
        if (this.#messages === undefined) await withDeadline(this.#open(), this.bus.timeoutMs, 'recreate consumer');
        const messages = this.#messages;
        if (messages === undefined) continue;
        for await (const m of messages) {
          if (this.#stopped) return;
          this.#idle = false;
          this.#taken = { consumer: m.info.consumer, delivery: m.info.deliverySequence };
          if (this.#recreated) {
            this.#recreated = false;
            await this.#checkRetained();
          }
          await this.#deliver(m);
          this.#retry.reset();
          streamMissing = 0;
          this.#idle = true;
        }
        if (this.#stopped) return;
        // Dropped here (a reconnect, a loss the client did not see): reopen from #next now.
        if (this.#messages !== messages) continue;
        // The client stopped its consumer on its own (e.g. it could not recreate it): start over from #next.
        throw new GatehouseError('ERR_BUS_UNAVAILABLE', 'the ordered consumer stopped', { retryable: true });
      } catch (err) {
        this.#idle = true;
        if (this.#stopped) return;
        if (this.bus.closed) return this.#end(new GatehouseError('ERR_BUS_CLOSED', 'the NATS connection closed', { cause: err }));
        if (err instanceof GatehouseError && err.code === 'ERR_BUS_SEQUENCE_GONE') return this.#end(err);
        // A server still recovering may briefly not know the stream; several misses in a row mean it was deleted.
        if (apiCode(err) === JetStreamApiCodes.StreamNotFound && ++streamMissing >= 5) {
          return this.#end(new GatehouseError('ERR_BUS_UNAVAILABLE', `stream ${this.bus.stream} was deleted`, { cause: err }));
        }
        this.#drop();
        await sleep(this.bus.clock, this.#retry.next());
      }
    }
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

  #armFloor(): void {
    if (this.#stopped) return;
    this.#floorTimer = this.bus.clock.setTimer(() => {
      void this.#refreshFloor()
        .catch(() => undefined)
        .finally(() => this.#armFloor());
    }, FETCH_EXPIRES_MS);
  }

  /**
   * Every FETCH_EXPIRES_MS: when no matching message is pending and everything the consumer
   * delivered was taken (its delivery count is that of the last message taken from it), moves
   * #next to the stream's end, so an idle subscription does not look "too old" (GONE) after a
   * recreation once the stream has aged out other subjects' messages. Stream info is read
   * before consumer info: a message arriving in between shows up as pending or delivered.
   */
  async #refreshFloor(): Promise<void> {
    const consumer = this.#consumer;
    // #idle at a timer's turn: the loop is waiting on the client's queue, which is empty (it
    // hands queued messages over within microtasks)
    const quiet = (): boolean => this.#idle && !this.#recreated && this.#consumer === consumer;
    if (consumer === undefined || !quiet()) return;
    const { state } = await this.bus.jsm.streams.info(this.bus.stream);
    // the client's cached name (its own info() call could race a recreation and restore a stale name)
    const { name } = await consumer.info(true);
    const info = await this.bus.jsm.consumers.info(this.bus.stream, name);
    const taken = this.#taken.consumer === name ? this.#taken.delivery : 0;
    if (info.num_pending === 0 && info.delivered.consumer_seq === taken && quiet()) {
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
    this.#floorTimer?.cancel();
    this.#drop();
    this.#report(err);
  }

  /** No handler call starts after this resolves; one already running is not awaited (it may be the caller). */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.bus.forget(this);
    this.#floorTimer?.cancel();
    const messages = this.#messages;
    this.#drop();
    await messages?.close().catch(() => undefined);
  }
}

export async function openNatsBus(options: NatsBusOptions, runtime: NatsBusRuntime = {}): Promise<Bus> {
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
    return new NatsBus(nc, js, jsm, stream, timeoutMs, runtime);
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw toBusError(err, 'open');
  }
}
