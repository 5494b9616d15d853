// The TCP layer's timers: every connection has one deadline at most (its earliest one, see
// Tcb.armTimer), and all deadlines wait in one binary min-heap driven by a single
// clock timer. Creating and cancelling a Node timer for each change of a connection's
// deadline (a SYN-ACK sent, the handshake done, a FIN sent, the connection closed) costs
// more than the rest of a short connection's bookkeeping; moving an entry in the heap costs
// a few comparisons, and the clock timer is re-armed only when the earliest deadline moves.

import { type Clock, reportTimerError, type Timer } from '../../util/clock.ts';

/** What the queue holds: an object with a deadline and its place in the heap. */
export interface TimerEntry {
  /** Absolute deadline in clock milliseconds (meaningful while queued). */
  timerAt: number;
  /** Index in the heap; -1 when not queued. */
  timerIndex: number;
  /** Ties between equal deadlines go to the entry queued first, as the clock's own timers do. */
  timerSeq: number;
  onTimer(): void;
}

export class TimerQueue<T extends TimerEntry> {
  private readonly heap: T[] = [];
  private clockTimer: Timer | null = null;
  /** Deadline the clock timer is set for (Infinity when none). */
  private clockTimerAt = Infinity;
  private seq = 0;
  private running = false;

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.heap.length;
  }

  /** Queues entry for `at`, or moves it there if it is queued already. */
  schedule(entry: T, at: number): void {
    if (entry.timerIndex >= 0 && entry.timerAt === at) return;
    entry.timerAt = at;
    entry.timerSeq = this.seq++;
    if (entry.timerIndex < 0) {
      entry.timerIndex = this.heap.length;
      this.heap.push(entry);
      this.up(entry.timerIndex);
    } else {
      // The new deadline may be earlier or later than the old: the entry goes up or down.
      this.up(entry.timerIndex);
      this.down(entry.timerIndex);
    }
    this.armClockTimer();
  }

  /** Takes entry out of the queue (no-op when it is not queued). */
  cancel(entry: T): void {
    const i = entry.timerIndex;
    if (i < 0) return;
    const last = this.heap.pop()!;
    entry.timerIndex = -1;
    if (last !== entry) {
      this.heap[i] = last;
      last.timerIndex = i;
      this.up(i);
      this.down(i);
    }
    // The clock timer stays: when it fires early it finds nothing due and re-arms.
  }

  /** Stops the clock timer; entries stay queued but never fire (the layer is closing). */
  stop(): void {
    this.clockTimer?.cancel();
    this.clockTimer = null;
    this.clockTimerAt = Infinity;
  }

  private armClockTimer(): void {
    if (this.running) return; // run() re-arms when it is done
    const first = this.heap[0];
    if (first === undefined || first.timerAt >= this.clockTimerAt) return;
    this.clockTimer?.cancel();
    this.clockTimerAt = first.timerAt;
    this.clockTimer = this.clock.setTimer(first.timerAt - this.clock.now(), (this.onClockTimer ??= () => this.run()));
  }

  /** The clock timer's callback, made at the first timer (an idle stack of a fleet never arms one). */
  private onClockTimer: (() => void) | null = null;

  /** The clock timer fired: every entry due runs, in deadline order. */
  private run(): void {
    this.clockTimer = null;
    this.clockTimerAt = Infinity;
    this.running = true;
    try {
      const now = this.clock.now();
      // Entries queued while this runs wait for the next fire, even if already due: a timer
      // that keeps re-arming itself for "now" cannot hold the loop.
      const queuedBefore = this.seq;
      for (;;) {
        const first = this.heap[0];
        if (first === undefined || first.timerAt > now || first.timerSeq >= queuedBefore) break;
        this.cancel(first);
        // One entry's bug must not keep the later ones from running.
        try {
          first.onTimer();
        } catch (err) {
          reportTimerError(this.clock, err);
        }
      }
    } finally {
      this.running = false;
      this.armClockTimer();
    }
  }

  private less(a: T, b: T): boolean {
    return a.timerAt < b.timerAt || (a.timerAt === b.timerAt && a.timerSeq < b.timerSeq);
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    const a = h[i]!;
    const b = h[j]!;
    h[i] = b;
    h[j] = a;
    a.timerIndex = j;
    b.timerIndex = i;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(this.heap[i]!, this.heap[parent]!)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < h.length && this.less(h[left]!, h[least]!)) least = left;
      if (right < h.length && this.less(h[right]!, h[least]!)) least = right;
      if (least === i) return;
      this.swap(i, least);
      i = least;
    }
  }
}
