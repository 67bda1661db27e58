// The one backoff: delays that grow by a factor from min to max, optionally jittered by an
// injected random source, waited out on an injected clock. Every retry in Gatehouse (store
// followers, the bus, revocation broadcasts, the audit writer, the etcd client) uses it, so tests
// drive retries with a ManualClock and a seeded random instead of sleeping.
import { GatehouseError } from '../errors.js';
import type { Clock, TimerHandle } from './clock.js';

/** A number in [0, 1), like Math.random. */
export type RandomSource = () => number;

/** The default random source where no seeded one is injected (jitter only needs to differ between replicas). */
export const systemRandom: RandomSource = Math.random;

export interface BackoffPolicy {
  /** The first delay, ms. */
  minMs: number;
  /** No delay is longer, ms. */
  maxMs: number;
  /** Growth after each failure (default 2). */
  factor?: number;
  /**
   * Spread replicas apart: each delay is shortened by up to `fraction` of itself, drawn from
   * `random`. A source is required so tests can seed it.
   */
  jitter?: { fraction: number; random: RandomSource };
}

function check(p: BackoffPolicy): void {
  const factor = p.factor ?? 2;
  const fraction = p.jitter?.fraction ?? 0;
  if (!(p.minMs >= 0) || !(p.maxMs >= p.minMs) || !(factor >= 1) || !(fraction >= 0 && fraction <= 1)) {
    throw new GatehouseError('ERR_CONFIG_INVALID', `backoff: need 0 <= minMs <= maxMs, factor >= 1, 0 <= jitter <= 1 (got ${p.minMs}, ${p.maxMs}, ${factor}, ${fraction})`);
  }
}

/** The delay before retry number `attempt` (0 = the first retry): min × factor^attempt, capped, then jittered. */
export function backoffDelay(p: BackoffPolicy, attempt: number): number {
  const base = Math.min(p.maxMs, p.minMs * (p.factor ?? 2) ** Math.max(0, attempt));
  if (p.jitter === undefined || p.jitter.fraction === 0) return base;
  return base * (1 - p.jitter.fraction * p.jitter.random());
}

/** A sequence of delays: next() gives the next one, reset() after a success starts again at min. */
export class Delays {
  readonly #policy: BackoffPolicy;
  #attempt = 0;

  constructor(policy: BackoffPolicy) {
    check(policy);
    this.#policy = policy;
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  next(): number {
    return backoffDelay(this.#policy, this.#attempt++);
  }

  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolves after ms as the clock counts time (a ManualClock: when advanced past it). */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.setTimer(resolve, ms);
  });
}

/**
 * A retry loop on the clock: schedule() runs `attempt` after the next delay; an attempt that
 * fails is reported and schedules the next; reset() after a success, stop() for good.
 */
export class Backoff {
  readonly #clock: Clock;
  readonly #delays: Delays;
  readonly #attempt: () => Promise<void>;
  readonly #onError: (err: Error) => void;
  #timer: TimerHandle | undefined;
  #stopped = false;

  constructor(clock: Clock, policy: BackoffPolicy, attempt: () => Promise<void>, onError: (err: Error) => void) {
    this.#clock = clock;
    this.#delays = new Delays(policy);
    this.#attempt = attempt;
    this.#onError = onError;
  }

  /** True while a retry is waiting for its time. */
  get pending(): boolean {
    return this.#timer !== undefined;
  }

  schedule(): void {
    if (this.#stopped) return;
    this.#timer?.cancel();
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      if (this.#stopped) return;
      this.#attempt().catch((err: unknown) => {
        if (this.#stopped) return;
        this.#onError(err instanceof Error ? err : new Error(String(err)));
        this.schedule();
      });
    }, this.#delays.next());
  }

  reset(): void {
    this.#delays.reset();
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}
