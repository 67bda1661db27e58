// A retry loop with exponential backoff on the injected clock: schedule() runs `attempt` after
// the current delay (doubling up to max); a failed attempt schedules the next; reset() after a
// success. Used by the watchers that reload a store prefix after losing their watch.
import type { Clock, TimerHandle } from './clock.js';

export class Backoff {
  #delay: number;
  #timer: TimerHandle | undefined;
  #stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly attempt: () => Promise<void>,
    private readonly onError: (err: Error) => void,
  ) {
    this.#delay = minMs;
  }

  schedule(): void {
    if (this.#stopped) return;
    const delay = this.#delay;
    this.#delay = Math.min(this.maxMs, delay * 2);
    this.#timer?.cancel();
    this.#timer = this.clock.setTimer(() => {
      this.attempt().catch((err: unknown) => {
        this.onError(err instanceof Error ? err : new Error(String(err)));
        this.schedule();
      });
    }, delay);
  }

  reset(): void {
    this.#delay = this.minMs;
  }

  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
  }
}
