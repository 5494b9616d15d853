// Time is injected so that every timer-driven behaviour (ARP expiry, retransmission,
// TIME_WAIT, reassembly timeouts) can be tested in virtual time without sleeping.

export interface Timer {
  cancel(): void;
  /** Lets the process exit while it is pending (Node's timeout.unref()); real time only. */
  unref?(): void;
}

export interface Clock {
  /** Milliseconds since an arbitrary origin; may be fractional. */
  now(): number;
  /** Runs fn once after ms milliseconds (clamped to >= 0). */
  setTimer(ms: number, fn: () => void): Timer;
  /**
   * Where a callback run from a timer reports an error it caught (GuardedClock: the stack
   * counts it); absent, reportTimerError rethrows.
   */
  internalError?(err: unknown): void;
}

/**
 * A timer callback's error, caught by code that runs several callbacks from one timer
 * (TimerQueue, DeferredWork), so that the others still run.
 */
export function reportTimerError(clock: Clock, err: unknown): void {
  if (clock.internalError === undefined) throw err;
  clock.internalError(err);
}

/**
 * The clock the stack gives its layers: a timer callback that throws is handed to onError
 * (counted as an internal error) instead of escaping into the event loop as an uncaught
 * exception, as a kernel timer's bug does not stop the other timers.
 */
export class GuardedClock implements Clock {
  constructor(
    readonly inner: Clock,
    private readonly onError: (err: unknown) => void,
    /** The timers do not hold Node's event loop (the stack's LoopHold decides). */
    private readonly unrefTimers = false,
  ) {}
  now(): number {
    return this.inner.now();
  }
  setTimer(ms: number, fn: () => void): Timer {
    const timer = this.inner.setTimer(ms, () => {
      try {
        fn();
      } catch (err) {
        this.onError(err);
      }
    });
    if (this.unrefTimers) timer.unref?.();
    return timer;
  }
  internalError(err: unknown): void {
    this.onError(err);
  }
}

/** A Node timer or immediate (an object, not a closure: one is made for every timer set). */
class RealTimer implements Timer {
  constructor(
    private readonly timeout: NodeJS.Timeout | null,
    private readonly immediate: NodeJS.Immediate | null,
  ) {}
  cancel(): void {
    if (this.timeout !== null) clearTimeout(this.timeout);
    else if (this.immediate !== null) clearImmediate(this.immediate);
  }
  unref(): void {
    // Not an immediate: an unref'd one does not keep the poll phase from blocking, so it
    // would run only when something else wakes the loop. It is due at once anyway.
    this.timeout?.unref();
  }
}

/** Wall-clock time from performance.now() and Node's timers. */
export class RealClock implements Clock {
  now(): number {
    return performance.now();
  }
  setTimer(ms: number, fn: () => void): Timer {
    return ms <= 0 ? new RealTimer(null, setImmediate(fn)) : new RealTimer(setTimeout(fn, ms), null);
  }
}

interface VirtualTimer extends Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * Deterministic virtual time: timers fire only when the test advances the clock,
 * in order of deadline and then of creation.
 */
export class VirtualClock implements Clock {
  private time: number;
  private seq = 0;
  private heap: VirtualTimer[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const timer: VirtualTimer = {
      at: this.time + Math.max(0, ms),
      seq: this.seq++,
      fn,
      cancelled: false,
      cancel() {
        timer.cancelled = true;
      },
    };
    this.push(timer);
    return timer;
  }

  /** Number of timers still pending (cancelled ones excluded). */
  get pending(): number {
    return this.heap.filter((t) => !t.cancelled).length;
  }

  /** When the earliest pending timer is due, or null when none is pending. */
  nextTimerAt(): number | null {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0]?.at ?? null;
  }

  /** Moves time forward by ms, running every timer that falls due on the way. */
  advance(ms: number): void {
    this.runUntil(this.time + ms);
  }

  /** Runs timers due up to and including `until`, then sets the time to it. */
  runUntil(until: number): void {
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > until) break;
      this.pop();
      if (next.cancelled) continue;
      this.time = Math.max(this.time, next.at);
      next.fn();
    }
    this.time = Math.max(this.time, until);
  }

  /** Runs timers until none is left or `limitMs` of virtual time has passed. Returns the time spent. */
  runAll(limitMs = 3_600_000): number {
    const start = this.time;
    const end = start + limitMs;
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > end) break;
      this.pop();
      if (next.cancelled) continue;
      this.time = Math.max(this.time, next.at);
      next.fn();
    }
    return this.time - start;
  }

  /** Runs timers until `done()` is true or the limit passes; returns whether done() became true. */
  runUntilTrue(done: () => boolean, limitMs = 3_600_000): boolean {
    const end = this.time + limitMs;
    while (!done()) {
      const next = this.heap[0];
      if (!next || next.at > end) return done();
      this.pop();
      if (next.cancelled) continue;
      this.time = Math.max(this.time, next.at);
      next.fn();
    }
    return true;
  }

  private less(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(t: VirtualTimer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): VirtualTimer | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
