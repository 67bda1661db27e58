// When each lease falls due, with one clock timer for all of them. A timer per lease cost about
// half a kilobyte of heap (the timer, its closures and handle): 50 MB for 100,000 sessions.
// Here a lease costs a Map entry and a heap slot.
import type { Clock, TimerHandle } from '../../lib/clock.js';
import type { LeaseTimers } from './context.js';

/** setTimeout's longest delay; a later deadline is re-armed when this fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class LeaseDeadlines implements LeaseTimers {
  readonly #clock: Clock;
  readonly #onDue: (lease: number) => void;
  /** lease -> deadline. The heap may also hold stale entries (cancelled, or rescheduled): skipped when they surface. */
  readonly #deadlines = new Map<number, number>();
  /** A binary min-heap of (deadline, lease) in two parallel arrays, so deadlines stay unboxed doubles. */
  #at: number[] = [];
  #ids: number[] = [];
  #timer: TimerHandle | undefined;
  /** The deadline the timer is armed for. */
  #armedFor = Infinity;
  #stopped = false;

  constructor(clock: Clock, onDue: (lease: number) => void) {
    this.#clock = clock;
    this.#onDue = onDue;
  }

  schedule(lease: number, deadline: number): void {
    if (this.#stopped) return;
    this.#deadlines.set(lease, deadline);
    this.#push(deadline, lease);
    // keepalives leave stale entries behind; drop them before they outnumber the live ones
    if (this.#at.length > 2 * this.#deadlines.size + 1024) this.#rebuild();
    if (deadline < this.#armedFor) this.#arm();
  }

  cancel(lease: number): void {
    this.#deadlines.delete(lease);
  }

  /** Cancels the timer; nothing falls due any more. */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#deadlines.clear();
    this.#at = [];
    this.#ids = [];
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = this.#clock.now();
    const due: number[] = [];
    while (this.#at.length > 0 && this.#at[0]! <= now) {
      const at = this.#at[0]!;
      const id = this.#ids[0]!;
      this.#pop();
      if (this.#deadlines.get(id) !== at) continue;
      this.#deadlines.delete(id);
      due.push(id);
    }
    this.#arm();
    for (const id of due) this.#onDue(id);
  };

  /** Arms the timer for the earliest live deadline. */
  #arm(): void {
    while (this.#at.length > 0 && this.#deadlines.get(this.#ids[0]!) !== this.#at[0]) this.#pop();
    const next = this.#at[0];
    if (next === this.#armedFor && this.#timer !== undefined) return;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#armedFor = Infinity;
    if (next === undefined) return;
    this.#armedFor = next;
    this.#timer = this.#clock.setTimer(this.#fire, Math.min(MAX_TIMER_MS, Math.max(0, next - this.#clock.now())));
  }

  #rebuild(): void {
    const at: number[] = [];
    const ids: number[] = [];
    for (const [id, deadline] of this.#deadlines) {
      at.push(deadline);
      ids.push(id);
    }
    this.#at = at;
    this.#ids = ids;
    for (let i = (at.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #push(at: number, id: number): void {
    this.#at.push(at);
    this.#ids.push(id);
    let i = this.#at.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#at[parent]! <= at) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #pop(): void {
    const last = this.#at.length - 1;
    this.#swap(0, last);
    this.#at.pop();
    this.#ids.pop();
    this.#down(0);
  }

  #down(i: number): void {
    const n = this.#at.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < n && this.#at[l]! < this.#at[min]!) min = l;
      if (r < n && this.#at[r]! < this.#at[min]!) min = r;
      if (min === i) return;
      this.#swap(i, min);
      i = min;
    }
  }

  #swap(i: number, j: number): void {
    const at = this.#at[i]!;
    this.#at[i] = this.#at[j]!;
    this.#at[j] = at;
    const id = this.#ids[i]!;
    this.#ids[i] = this.#ids[j]!;
    this.#ids[j] = id;
  }
}
