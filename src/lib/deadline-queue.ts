// Many deadlines on one clock timer (the connection stage's handshake, idle, expiry and close
// grace deadlines of every connection).
// A min-heap holds at most one live entry per item, at its earliest deadline: a deadline that
// moves later (the idle deadline after each request) costs nothing until its old entry comes
// up, is found early and re-queued once. So a request costs O(1), a connection O(log n) a few
// times, and there is one timer however many connections are open.
import type { Clock, TimerHandle } from './clock.js';

const MAX_DELAY_MS = 2 ** 31 - 1;

export interface Deadlined {
  /** When this item's live heap entry is due (undefined: not queued). Owned by the queue. */
  queuedAt: number | undefined;
}

interface Entry<T> {
  at: number;
  item: T;
}

export class DeadlineQueue<T extends Deadlined> {
  readonly #clock: Clock;
  readonly #next: (item: T) => number | undefined;
  readonly #due: (item: T, now: number) => void;
  #heap: Entry<T>[] = [];
  #live = 0;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #firing = false;

  /** next: the item's earliest deadline now (undefined: none); due: called when it has passed. */
  constructor(clock: Clock, next: (item: T) => number | undefined, due: (item: T, now: number) => void) {
    this.#clock = clock;
    this.#next = next;
    this.#due = due;
  }

  get size(): number {
    return this.#live;
  }

  /** Call when the item's earliest deadline may have moved earlier (a later one needs no call). */
  update(item: T): void {
    const at = this.#next(item);
    if (at === undefined) return; // an entry it may have is dropped when it comes up
    if (item.queuedAt !== undefined && item.queuedAt <= at) return;
    if (item.queuedAt === undefined) this.#live++;
    item.queuedAt = at;
    this.#push({ at, item });
    this.#arm();
  }

  /** Forgets the item (its entry stays in the heap, stale, until it comes up or a compaction). */
  delete(item: T): void {
    if (item.queuedAt === undefined) return;
    item.queuedAt = undefined;
    this.#live--;
    // stale entries hold closed connections: rebuild when they outnumber live ones
    if (this.#heap.length > 2 * this.#live + 1024) this.#compact();
  }

  clear(): void {
    for (const e of this.#heap) e.item.queuedAt = undefined;
    this.#heap = [];
    this.#live = 0;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#firing = true;
    try {
      const now = this.#clock.now();
      for (let top = this.#heap[0]; top !== undefined && top.at <= now; top = this.#heap[0]) {
        this.#pop();
        const item = top.item;
        if (item.queuedAt !== top.at) continue; // stale: deleted, or re-queued earlier
        item.queuedAt = undefined;
        this.#live--;
        const at = this.#next(item);
        if (at === undefined) continue;
        if (at > now) {
          item.queuedAt = at;
          this.#live++;
          this.#push({ at, item });
          continue;
        }
        try {
          this.#due(item, now);
        } catch {
          // one connection's failure must not stop the others' deadlines
        }
      }
    } finally {
      this.#firing = false;
      this.#arm();
    }
  }

  #arm(): void {
    if (this.#firing) return;
    const top = this.#heap[0];
    if (top === undefined || top.at >= this.#timerAt) return;
    this.#timer?.cancel();
    this.#timerAt = top.at;
    // setTimeout turns a delay past 2^31-1 ms (a certificate's notAfter a month away) into 1 ms:
    // wake up early instead, find nothing due, and sleep again
    this.#timer = this.#clock.setTimer(() => this.#fire(), Math.min(MAX_DELAY_MS, Math.max(0, top.at - this.#clock.now())));
  }

  #compact(): void {
    this.#heap = this.#heap.filter((e) => e.item.queuedAt === e.at);
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #push(e: Entry<T>): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= e.at) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    h[0] = last;
    this.#down(0);
  }

  #down(start: number): void {
    const h = this.#heap;
    const e = h[start]!;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.at < h[l]!.at ? r : l;
      if (h[c]!.at >= e.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = e;
  }
}
