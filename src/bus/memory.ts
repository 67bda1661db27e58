// The in-process bus: one sequence counter and one retained log shared by every subscriber.
// Each subscription is a cursor into that log rather than a queue of its own, so a slow
// subscriber costs no memory beyond the log; if it falls so far behind that a message it
// still had to see is evicted, it ends with ERR_BUS_SEQUENCE_GONE (resume from the store).
import { GatehouseError } from '../errors.js';
import { checkFromSequence, matches, parsePattern, parseSubject, reportTo, toPayload } from './subject.js';
import type { Bus, BusHandler, BusMessage, MemoryBusOptions, SubscribeOptions, Subscription } from './types.js';

const DEFAULT_RETAIN = 100_000;
// Sync handlers never yield; give the event loop a turn every so many deliveries.
const YIELD_EVERY = 256;

interface Stored {
  readonly subject: string;
  readonly tokens: readonly string[];
  readonly seq: number;
  readonly data: Uint8Array;
  readonly time: number;
}

const closedError = (): GatehouseError => new GatehouseError('ERR_BUS_CLOSED', 'the memory bus is closed');

class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly #retain: number;
  // Retained messages are #log[#head..]; #head moves forward on eviction and the array is
  // compacted now and then, so eviction is O(1) amortised.
  #log: Stored[] = [];
  #head = 0;
  #nextSeq = 1;
  #closed = false;
  readonly #subs = new Set<MemorySubscription>();

  constructor(retain: number) {
    this.#retain = retain;
  }

  get nextSeq(): number {
    return this.#nextSeq;
  }

  /** Sequence of the oldest retained message (nextSeq when nothing is retained). */
  get oldestSeq(): number {
    return this.#nextSeq - (this.#log.length - this.#head);
  }

  at(seq: number): Stored | undefined {
    return this.#log[this.#head + (seq - this.oldestSeq)];
  }

  async publish(subject: string, payload: Uint8Array | string): Promise<number> {
    if (this.#closed) throw closedError();
    const tokens = parseSubject(subject);
    const bytes = toPayload(payload);
    // Copy so the caller may reuse its buffer.
    const stored: Stored = { subject, tokens, seq: this.#nextSeq++, data: bytes.slice(), time: Date.now() };
    this.#log.push(stored);
    while (this.#log.length - this.#head > this.#retain) this.#evict();
    for (const sub of this.#subs) {
      if (matches(sub.pattern, tokens)) sub.kick();
    }
    return stored.seq;
  }

  #evict(): void {
    const gone = this.#log[this.#head];
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#log.length) {
      this.#log = this.#log.slice(this.#head);
      this.#head = 0;
    }
    if (gone !== undefined) for (const sub of this.#subs) sub.evicted(gone);
  }

  async subscribe(pattern: string, handler: BusHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    if (this.#closed) throw closedError();
    const tokens = parsePattern(pattern);
    checkFromSequence(options.fromSequence);
    let cursor = this.#nextSeq;
    if (options.fromSequence !== undefined) {
      cursor = Math.max(options.fromSequence, 1);
      if (cursor < this.oldestSeq) {
        throw new GatehouseError('ERR_BUS_SEQUENCE_GONE', `sequence ${cursor} is no longer retained; the oldest is ${this.oldestSeq}`, {
          details: { fromSequence: cursor, oldestSequence: this.oldestSeq },
        });
      }
    }
    const sub = new MemorySubscription(this, tokens, handler, options.onError, cursor);
    this.#subs.add(sub);
    sub.kick();
    return sub;
  }

  remove(sub: MemorySubscription): void {
    this.#subs.delete(sub);
  }

  async ping(): Promise<boolean> {
    return !this.#closed;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const sub of [...this.#subs]) await sub.close();
    this.#log = [];
    this.#head = 0;
  }
}

class MemorySubscription implements Subscription {
  #lastSequence = 0;
  #cursor: number;
  #running = false;
  #stopped = false;

  constructor(
    private readonly bus: MemoryBus,
    readonly pattern: readonly string[],
    private readonly handler: BusHandler,
    private readonly onError: ((err: Error) => void) | undefined,
    cursor: number,
  ) {
    this.#cursor = cursor;
  }

  get lastSequence(): number {
    return this.#lastSequence;
  }

  /** Starts the delivery loop if it is idle; it runs until caught up with the log. */
  kick(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    void this.#drain();
  }

  /** Called for each message leaving the log: losing one this subscriber still had to see ends it. */
  evicted(message: Stored): void {
    if (this.#stopped || this.#cursor > message.seq || !matches(this.pattern, message.tokens)) return;
    this.#end(new GatehouseError('ERR_BUS_SEQUENCE_GONE', `subscriber fell behind: sequence ${message.seq} was evicted before delivery`, {
      details: { sequence: message.seq },
    }));
  }

  async #drain(): Promise<void> {
    try {
      // Never deliver inside publish(): the publisher must not wait for handlers.
      await Promise.resolve();
      let sinceYield = 0;
      while (!this.#stopped && this.#cursor < this.bus.nextSeq) {
        // Non-matching messages may have been evicted under an idle cursor; skipping them is safe.
        if (this.#cursor < this.bus.oldestSeq) this.#cursor = this.bus.oldestSeq;
        const message = this.bus.at(this.#cursor);
        this.#cursor++;
        if (message === undefined || !matches(this.pattern, message.tokens)) continue;
        this.#lastSequence = message.seq;
        const delivered: BusMessage = { subject: message.subject, seq: message.seq, data: message.data.slice(), time: message.time };
        try {
          await this.handler(delivered);
        } catch (err) {
          this.#report(err);
        }
        if (++sinceYield >= YIELD_EVERY) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    } finally {
      this.#running = false;
    }
  }

  #report(err: unknown): void {
    reportTo(this.onError, err);
  }

  #end(err: GatehouseError): void {
    this.#stopped = true;
    this.bus.remove(this);
    this.#report(err);
  }

  /** No handler call starts after this resolves; one already running is not awaited (it may be the caller). */
  async close(): Promise<void> {
    this.#stopped = true;
    this.bus.remove(this);
  }
}

export async function openMemoryBus(options: MemoryBusOptions): Promise<Bus> {
  const retain = options.retain ?? DEFAULT_RETAIN;
  if (!Number.isSafeInteger(retain) || retain < 1) {
    throw new GatehouseError('ERR_CONFIG_INVALID', `bus retain must be a positive integer, got ${String(retain)}`);
  }
  return new MemoryBus(retain);
}
