// Time is injected so that every timer-driven behaviour (ARP expiry, retransmission,
// TIME_WAIT, reassembly timeouts) can be tested in virtual time without sleeping.

import { type HeapTimer, TimerHeap } from './timer-heap.ts';

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
  /** How late a timer may fire (ms): Node's at millisecond granularity; absent, exact (virtual time). */
  readonly timerSlackMs?: number;
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
  get timerSlackMs(): number | undefined {
    return this.inner.timerSlackMs;
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
  readonly timerSlackMs = 1;
  now(): number {
    return performance.now();
  }
  setTimer(ms: number, fn: () => void): Timer {
    return ms <= 0 ? new RealTimer(null, setImmediate(fn)) : new RealTimer(setTimeout(fn, ms), null);
  }
}

interface VirtualTimer extends Timer, HeapTimer {}

/**
 * Deterministic virtual time: timers fire only when the test advances the clock,
 * in order of deadline and then of creation.
 */
export class VirtualClock implements Clock {
  private time: number;
  private readonly heap = new TimerHeap<VirtualTimer>();

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const timer: VirtualTimer = {
      at: this.time + Math.max(0, ms),
      seq: 0,
      fn,
      cancelled: false,
      cancel() {
        timer.cancelled = true;
      },
    };
    this.heap.push(timer);
    return timer;
  }

  /** Number of timers still pending (cancelled ones excluded). */
  get pending(): number {
    return this.heap.live();
  }

  /** When the earliest pending timer is due, or null when none is pending. */
  nextTimerAt(): number | null {
    return this.heap.peekLive()?.at ?? null;
  }

  /** Moves time forward by ms, running every timer that falls due on the way. */
  advance(ms: number): void {
    this.runUntil(this.time + ms);
  }

  /** Runs timers due up to and including `until`, then sets the time to it. */
  runUntil(until: number): void {
    for (;;) {
      const next = this.heap.peek();
      if (!next || next.at > until) break;
      this.heap.pop();
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
      const next = this.heap.peek();
      if (!next || next.at > end) break;
      this.heap.pop();
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
      const next = this.heap.peek();
      if (!next || next.at > end) return done();
      this.heap.pop();
      if (next.cancelled) continue;
      this.time = Math.max(this.time, next.at);
      next.fn();
    }
    return true;
  }
}

/** A timer of a HeapClock: held in its heap, not in Node's timer lists. */
class HeapClockTimer implements Timer, HeapTimer {
  seq = 0;
  cancelled = false;
  refed = true;
  constructor(
    private readonly clock: HeapClock,
    readonly at: number,
    readonly fn: () => void,
  ) {}
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.clock.onCancel(this);
  }
  unref(): void {
    if (!this.refed) return;
    this.refed = false;
    if (!this.cancelled) this.clock.onUnref();
  }
}

/**
 * Wall-clock time with every timer in one heap and one Node timeout armed for the earliest:
 * a fleet of 10,000 stacks holds 10,000 small heap entries rather than 10,000 Node Timeout
 * objects in libuv's timer lists (the kernel, too, runs every socket's timers from one
 * timer wheel). The Node timeout holds the event loop only while a pending timer is ref'd.
 * Timers due now (ms <= 0) run as immediates, as RealClock's.
 */
export class HeapClock implements Clock {
  private readonly heap = new TimerHeap<HeapClockTimer>();
  private armed: NodeJS.Timeout | null = null;
  private armedAt = Infinity;
  private refed = 0;
  private cancelled = 0;

  now(): number {
    return performance.now();
  }

  setTimer(ms: number, fn: () => void): Timer {
    if (ms <= 0) return new RealTimer(null, setImmediate(fn));
    const timer = new HeapClockTimer(this, this.now() + ms, fn);
    this.heap.push(timer);
    this.refed++;
    if (timer.at < this.armedAt) this.arm(timer.at);
    else this.armed?.ref();
    return timer;
  }

  /** Timers pending (cancelled ones excluded). */
  get pending(): number {
    return this.heap.size - this.cancelled;
  }

  /** @internal */
  onCancel(timer: HeapClockTimer): void {
    if (timer.refed) this.unrefOne();
    // Cancelled timers stay in the heap until due; when they are most of it, drop them.
    if (++this.cancelled > 64 && this.cancelled > this.heap.size / 2) {
      this.heap.compact();
      this.cancelled = 0;
    }
  }

  /** @internal */
  onUnref(): void {
    this.unrefOne();
  }

  private unrefOne(): void {
    if (--this.refed === 0) this.armed?.unref();
  }

  private arm(at: number): void {
    if (this.armed !== null) clearTimeout(this.armed);
    this.armedAt = at;
    this.armed = setTimeout(() => this.fire(), Math.max(1, at - this.now()));
    if (this.refed === 0) this.armed.unref();
  }

  private fire(): void {
    this.armed = null;
    this.armedAt = Infinity;
    const now = this.now();
    // A callback that throws must not stop the others or leave the heap unarmed: its error
    // is thrown once every due timer has run and the next is armed, as Node's own would be.
    let failed = false;
    let error: unknown;
    // Only what is due now: a timer a callback sets for later waits for the next turn.
    for (;;) {
      const next = this.heap.peek();
      if (next === undefined || next.at > now) break;
      this.heap.pop();
      if (next.cancelled) {
        this.cancelled--;
        continue;
      }
      if (next.refed) this.refed--;
      next.cancelled = true;
      try {
        next.fn();
      } catch (err) {
        if (!failed) error = err;
        failed = true;
      }
    }
    this.armNext();
    if (failed) throw error;
  }

  private armNext(): void {
    for (;;) {
      const next = this.heap.peek();
      if (next === undefined) return;
      if (!next.cancelled) return this.arm(next.at);
      this.heap.pop();
      this.cancelled--;
    }
  }
}
