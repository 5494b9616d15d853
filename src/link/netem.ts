// A network emulator for any Link, in the shapes of Linux's netem (net/sched/sch_netem.c,
// tc-netem(8)): delay with jitter (uniform or normal, optionally correlated), rate with a
// per-packet overhead and a queue of `limit` frames with tail drop, random loss (optionally
// correlated), Gilbert-Elliott and 4-state (GI) burst loss, duplication, corruption of one
// bit, and reordering with a gap. Each direction (tx: frames we send, rx: frames we receive)
// has its own shape, its own seeded random stream, its own queue and at most one timer; all
// time is the injected Clock's (virtual time in tests). The same seed gives the same frames
// at the same times.
//
// Order of decisions per frame, as netem_enqueue: duplicate?, lost? (a duplicate and a loss
// cancel out: one copy goes on), queue full? (tail drop), corrupt?, then reorder (sent at
// once, ahead of the delayed ones) or delay (held until its time to send). The duplicate is
// handled first, like a fresh frame with duplication off (its own loss, corruption, delay).
//
// Time to send, as netem's tfifo: now + delay. With a rate, delay counts from the later of
// now and the time to send of the last frame in the queue, plus the frame's serialization
// time, so a rate keeps frames in order and jitter only adds to queueing; without a rate the
// queue is sorted by time to send (ties in arrival order), so jitter larger than the gap
// between frames reorders them, as netem does.

import type { Clock, Timer } from '../util/clock.ts';
import { seededRandom } from '../util/random.ts';
import { LinkDecorator } from './decorator.ts';
import { type Link, LINK_HEADROOM } from './link.ts';
import type { RxFrameInfo, TxOffload } from './vnet.ts';

/** Burst loss models; probabilities in [0, 1]. */
export type NetemLoss =
  /** Independent loss (netem `loss random P [CORR]`). */
  | { model: 'random'; probability: number; correlation?: number }
  /**
   * Gilbert-Elliott (netem `loss gemodel p [r [1-h [1-k]]]`): p good to bad, r bad to good
   * (default 1 - p), oneMinusH the loss probability in the bad state (default 1), oneMinusK
   * in the good state (default 0). A frame's fate is drawn in the state it finds, then the
   * state moves: bursts are as long as the bad state lasts, 1/r frames on average.
   */
  | { model: 'gemodel'; p: number; r?: number; oneMinusH?: number; oneMinusK?: number }
  /**
   * The 4-state Markov model of GI loss (netem `loss state p13 [p31 [p32 [p23 [p14]]]]`):
   * 1 received in a gap, 2 received in a burst, 3 lost in a burst, 4 isolated loss. Defaults
   * as tc's: p31 = 1 - p13, p32 = 0, p23 = 1, p14 = 0. A frame is lost when it enters 3 or 4.
   */
  | { model: 'state'; p13: number; p31?: number; p32?: number; p23?: number; p14?: number };

/** One direction's shape. Times in milliseconds, probabilities and correlations in [0, 1]. */
export interface NetemShape {
  /** Delay every frame by this much (netem `delay`). */
  delayMs?: number;
  /** Spread of the delay: uniform in [delay - jitter, delay + jitter), or the standard deviation with 'normal'. */
  jitterMs?: number;
  /** Correlation of successive delays. */
  delayCorrelation?: number;
  /** 'uniform' (default) or 'normal' (clipped at 4 standard deviations, as netem's table). */
  distribution?: 'uniform' | 'normal';
  /** A probability (random loss) or a loss model. */
  loss?: number | NetemLoss;
  duplicate?: number;
  duplicateCorrelation?: number;
  /** Flip one random bit after the Ethernet header. */
  corrupt?: number;
  corruptCorrelation?: number;
  /**
   * Send a frame at once, ahead of the delayed ones (netem `reorder P [CORR] gap N`): after a
   * reordered frame the next gap - 1 frames are always delayed, then each one is reordered
   * with probability `reorder`. `reorder` alone means gap 1; `gap` alone means reorder 1.
   * Needs a delay to have any effect.
   */
  reorder?: number;
  reorderCorrelation?: number;
  gap?: number;
  /** Bandwidth in bits per second (netem `rate`); frames queue behind each other. */
  rateBps?: number;
  /** Bytes added to each frame's length for the rate (may be negative; netem's packet overhead). */
  overheadBytes?: number;
  /** With the rate: the link carries cells of this many bytes (ATM: 48), each with cellOverhead more. */
  cellSize?: number;
  cellOverhead?: number;
  /** Frames held at most (netem `limit`, default 1000); a frame that finds it full is dropped. */
  limit?: number;
}

export interface NetemOptions {
  seed: number;
  /** The shape of frames we send, of frames we receive, and of a direction given none of its own. */
  tx?: NetemShape;
  rx?: NetemShape;
  both?: NetemShape;
  /**
   * Which frames meet netem (as a tc filter puts traffic into a netem class): the others
   * pass untouched. Default: every frame.
   */
  filter?: (buf: Buffer, off: number, len: number) => boolean;
}

export interface NetemCounters {
  /** Frames offered; offered + duplicated = sent + lost + queueDrops + frames still queued. */
  offered: number;
  /** Frames passed on. */
  sent: number;
  /** Dropped by the loss model. */
  lost: number;
  /** Tail-dropped because `limit` frames were queued. */
  queueDrops: number;
  duplicated: number;
  corrupted: number;
  /** Sent at once by the reorder rule, ahead of the delayed frames. */
  reordered: number;
  /** Held in the queue for their time to send. */
  delayed: number;
}

/** A frame waiting for its time to send: a copy with LINK_HEADROOM free bytes before it. */
interface Held {
  at: number;
  frame: Buffer;
  len: number;
}

/** Pass a frame on: (bytes, offset, length, offload facts or null, whether it left later). */
type Pass = (buf: Buffer, off: number, len: number, info: RxFrameInfo | null, later: boolean) => void;

/** Uniform draws in [0, 1) repeating the last one with probability `rho`: correlation rho, same marginal. */
function correlated(random: () => number, rho: number | undefined): () => number {
  if (!rho) return random;
  let last = random();
  return () => (random() < rho ? last : (last = random()));
}

function lossModel(loss: number | NetemLoss | undefined, random: () => number): (() => boolean) | null {
  if (loss === undefined || loss === 0) return null;
  const m: NetemLoss = typeof loss === 'number' ? { model: 'random', probability: loss } : loss;
  switch (m.model) {
    case 'random': {
      const u = correlated(random, m.correlation);
      const p = m.probability;
      return () => u() < p;
    }
    case 'gemodel': {
      const r = m.r ?? 1 - m.p;
      const lossBad = m.oneMinusH ?? 1;
      const lossGood = m.oneMinusK ?? 0;
      let bad = false;
      return () => {
        if (!bad) {
          if (random() < m.p) bad = true;
          return random() < lossGood;
        }
        if (random() < r) bad = false;
        return random() < lossBad;
      };
    }
    case 'state': {
      const p13 = m.p13;
      const p31 = m.p31 ?? 1 - p13;
      const p32 = m.p32 ?? 0;
      const p23 = m.p23 ?? 1;
      const p14 = m.p14 ?? 0;
      let state = 1;
      return () => {
        const u = random();
        switch (state) {
          case 1:
            if (u < p14) state = 4;
            else if (u < p14 + p13) state = 3;
            break;
          case 2:
            if (u < p23) state = 3;
            break;
          case 3:
            if (u < p32) state = 2;
            else if (u < p32 + p31) state = 1;
            break;
          default:
            state = 1;
        }
        return state === 3 || state === 4;
      };
    }
  }
}

/** The inverse of the standard normal distribution function (Acklam's approximation). */
function normalQuantile(p: number): number {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) => (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p <= 0) return -Infinity;
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

function checkProbability(name: string, p: number | undefined): void {
  if (p !== undefined && !(p >= 0 && p <= 1)) throw new RangeError(`netem: ${name} must be in [0, 1], not ${p}`);
}

function validate(s: NetemShape): void {
  for (const k of ['duplicate', 'corrupt', 'reorder', 'delayCorrelation', 'duplicateCorrelation', 'corruptCorrelation', 'reorderCorrelation'] as const) checkProbability(k, s[k]);
  const loss = s.loss;
  if (typeof loss === 'number') checkProbability('loss', loss);
  else if (loss !== undefined) for (const [k, v] of Object.entries(loss)) if (k !== 'model') checkProbability(`loss.${k}`, v as number);
  for (const k of ['delayMs', 'jitterMs'] as const) if (s[k] !== undefined && !(s[k]! >= 0 && Number.isFinite(s[k]))) throw new RangeError(`netem: ${k} must be a finite number >= 0`);
  if (s.rateBps !== undefined && !(s.rateBps > 0 && Number.isFinite(s.rateBps))) throw new RangeError('netem: rateBps must be > 0');
  if (s.limit !== undefined && !(Number.isInteger(s.limit) && s.limit >= 1)) throw new RangeError('netem: limit must be an integer >= 1');
  if (s.gap !== undefined && !(Number.isInteger(s.gap) && s.gap >= 0)) throw new RangeError('netem: gap must be an integer >= 0');
  if (s.cellSize !== undefined && !(Number.isInteger(s.cellSize) && s.cellSize >= 1)) throw new RangeError('netem: cellSize must be an integer >= 1');
}

/** One direction: its shape, random stream, queue (sorted by time to send) and one timer. */
class NetemQueue {
  readonly counters: NetemCounters = { offered: 0, sent: 0, lost: 0, queueDrops: 0, duplicated: 0, corrupted: 0, reordered: 0, delayed: 0 };
  private readonly random: () => number;
  private readonly lost: (() => boolean) | null;
  private readonly delayDraw: () => number;
  private readonly duplicateDraw: () => number;
  private readonly corruptDraw: () => number;
  private readonly reorderDraw: () => number;
  private readonly limit: number;
  private readonly gap: number;
  private readonly reorder: number;
  /** Frames delayed since the last reordered one (netem's counter). */
  private sinceReorder = 0;
  private queue: Held[] = [];
  private head = 0;
  private timer: Timer | null = null;
  private timerAt = 0;

  constructor(
    private readonly shape: NetemShape,
    seed: number,
    private readonly clock: Clock,
    private readonly pass: Pass,
  ) {
    validate(shape);
    const random = seededRandom(seed);
    this.random = random;
    this.lost = lossModel(shape.loss, random);
    this.delayDraw = correlated(random, shape.delayCorrelation);
    this.duplicateDraw = correlated(random, shape.duplicateCorrelation);
    this.corruptDraw = correlated(random, shape.corruptCorrelation);
    this.reorderDraw = correlated(random, shape.reorderCorrelation);
    this.limit = shape.limit ?? 1000;
    this.gap = shape.gap ?? (shape.reorder ? 1 : 0);
    this.reorder = shape.reorder ?? (shape.gap ? 1 : 0);
  }

  /** Frames held now. */
  get length(): number {
    return this.queue.length - this.head;
  }

  offer(buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void {
    this.counters.offered++;
    this.enqueue(buf, off, len, info, true);
  }

  private enqueue(buf: Buffer, off: number, len: number, info: RxFrameInfo | null, mayDuplicate: boolean): void {
    const s = this.shape;
    const c = this.counters;
    let copies = 1;
    if (mayDuplicate && s.duplicate && this.duplicateDraw() < s.duplicate) {
      c.duplicated++;
      copies++;
    }
    if (this.lost !== null && this.lost()) {
      c.lost++;
      copies--;
    }
    if (copies === 0) return;
    // The duplicate goes first, as netem's clone re-enqueued at the root: a frame of its own.
    if (copies === 2) this.enqueue(buf, off, len, info, false);
    if (this.length >= this.limit) {
      c.queueDrops++;
      return;
    }
    let frame: Buffer | null = null;
    if (s.corrupt && this.corruptDraw() < s.corrupt) {
      c.corrupted++;
      frame = copyWithHeadroom(buf, off, len);
      // One bit anywhere after the Ethernet header, so that checksums must catch it.
      const at = len > 14 ? 14 + Math.floor(this.random() * (len - 14)) : Math.floor(this.random() * len);
      frame[LINK_HEADROOM + at]! ^= 1 << Math.floor(this.random() * 8);
    }
    const now = this.clock.now();
    if (this.gap === 0 || this.sinceReorder < this.gap - 1 || this.reorderDraw() >= this.reorder) {
      this.sinceReorder++;
      const at = this.timeToSend(now, len);
      if (at <= now && this.length === 0) this.sendNow(buf, off, len, info, frame);
      else this.hold(at, frame ?? copyWithHeadroom(buf, off, len), len);
    } else {
      this.sinceReorder = 0;
      c.reordered++;
      this.sendNow(buf, off, len, info, frame);
    }
  }

  /** netem's time_to_send: now + delay, or with a rate, after the last queued frame plus serialization. */
  private timeToSend(now: number, len: number): number {
    const s = this.shape;
    let delay = s.delayMs ?? 0;
    const jitter = s.jitterMs ?? 0;
    if (jitter > 0) {
      const u = this.delayDraw();
      delay += s.distribution === 'normal' ? jitter * Math.max(-4, Math.min(4, normalQuantile(u))) : jitter * (2 * u - 1);
    }
    // A negative draw is no delay: netem sends such a frame at once.
    delay = Math.max(0, delay);
    if (s.rateBps === undefined) return now + delay;
    let start = now + delay;
    if (this.length > 0) start = Math.max(start, this.queue[this.queue.length - 1]!.at);
    return start + this.serializationMs(len);
  }

  private serializationMs(len: number): number {
    const s = this.shape;
    let bytes = Math.max(0, len + (s.overheadBytes ?? 0));
    if (s.cellSize !== undefined) bytes = Math.ceil(bytes / s.cellSize) * (s.cellSize + (s.cellOverhead ?? 0));
    return (bytes * 8 * 1000) / s.rateBps!;
  }

  private sendNow(buf: Buffer, off: number, len: number, info: RxFrameInfo | null, corrupted: Buffer | null): void {
    this.counters.sent++;
    if (corrupted === null) this.pass(buf, off, len, info, false);
    else this.pass(corrupted, LINK_HEADROOM, len, null, false);
  }

  /** Inserts in order of time to send, after every frame due at the same time or earlier. */
  private hold(at: number, frame: Buffer, len: number): void {
    this.counters.delayed++;
    const q = this.queue;
    let i = q.length;
    while (i > this.head && q[i - 1]!.at > at) i--;
    const entry: Held = { at, frame, len };
    if (i === q.length) q.push(entry);
    else q.splice(i, 0, entry);
    if (i === this.head) this.arm();
  }

  /** Keeps the one timer set for the earliest frame. */
  private arm(): void {
    if (this.length === 0) {
      this.timer?.cancel();
      this.timer = null;
      return;
    }
    const at = this.queue[this.head]!.at;
    if (this.timer !== null) {
      if (this.timerAt <= at) return; // fires first; dequeue re-arms
      this.timer.cancel();
    }
    this.timerAt = at;
    this.timer = this.clock.setTimer(at - this.clock.now(), () => this.dequeue());
  }

  private dequeue(): void {
    // Frames due at the time the timer was set for (not later than the clock, bar rounding).
    const due = Math.max(this.clock.now(), this.timerAt);
    this.timer = null;
    while (this.length > 0 && this.queue[this.head]!.at <= due) {
      const h = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as Held;
      this.counters.sent++;
      this.pass(h.frame, LINK_HEADROOM, h.len, null, true);
    }
    if (this.head > 64 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.arm();
  }

  /** Drops every held frame and the timer. */
  clear(): void {
    this.timer?.cancel();
    this.timer = null;
    this.queue = [];
    this.head = 0;
  }
}

const ZERO_COUNTERS: NetemCounters = Object.freeze({ offered: 0, sent: 0, lost: 0, queueDrops: 0, duplicated: 0, corrupted: 0, reordered: 0, delayed: 0 });

export class NetemLink extends LinkDecorator {
  /** Switch the emulation off (frames pass untouched; held ones still leave at their time) and on. */
  enabled = true;
  private readonly txQueue: NetemQueue | null;
  private readonly rxQueue: NetemQueue | null;
  private readonly filter: ((buf: Buffer, off: number, len: number) => boolean) | null;

  constructor(inner: Link, clock: Clock, options: NetemOptions) {
    super(inner);
    this.filter = options.filter ?? null;
    const tx = options.tx ?? options.both;
    const rx = options.rx ?? options.both;
    this.txQueue = tx ? new NetemQueue(tx, options.seed, clock, (b, o, l) => this.inner.send(b, o, l)) : null;
    this.rxQueue = rx
      ? new NetemQueue(rx, (Math.imul(options.seed, 0x9e3779b1) ^ 0x5bd1e995) >>> 0, clock, (b, o, l, info, later) =>
          later ? this.receiveAlone(b, o, l, info) : this.receiver(b, o, l, info),
        )
      : null;
  }

  /** What each direction did (zeros for a direction without a shape). */
  get counters(): { tx: NetemCounters; rx: NetemCounters } {
    return { tx: this.txQueue?.counters ?? ZERO_COUNTERS, rx: this.rxQueue?.counters ?? ZERO_COUNTERS };
  }

  /** Frames held now in each direction. */
  get queued(): { tx: number; rx: number } {
    return { tx: this.txQueue?.length ?? 0, rx: this.rxQueue?.length ?? 0 };
  }

  // A transmit offload request holds for one send() only: a frame sent later would leave
  // without it. So a shaped transmit direction offers no offloads (the stack then builds
  // ordinary frames with complete checksums).
  override get gsoMaxSize(): number | undefined {
    return this.txQueue === null ? this.inner.gsoMaxSize : undefined;
  }

  override get txOffload(): TxOffload | undefined {
    return this.txQueue === null ? this.inner.txOffload : undefined;
  }

  override send(buf: Buffer, off: number, len: number): void {
    if (this.enabled && this.txQueue !== null && (this.filter === null || this.filter(buf, off, len))) this.txQueue.offer(buf, off, len, null);
    else this.inner.send(buf, off, len);
  }

  protected override receive(buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void {
    if (this.enabled && this.rxQueue !== null && (this.filter === null || this.filter(buf, off, len))) this.rxQueue.offer(buf, off, len, info);
    else this.receiver(buf, off, len, info);
  }

  /** Drops the held frames and their timers; frames after this pass untouched (to a closed link). */
  override close(): Promise<void> | void {
    this.enabled = false;
    this.txQueue?.clear();
    this.rxQueue?.clear();
    return super.close();
  }
}

/** A copy of a frame that keeps LINK_HEADROOM free bytes before it, as Link.send expects. */
function copyWithHeadroom(buf: Buffer, off: number, len: number): Buffer {
  const copy = Buffer.allocUnsafe(LINK_HEADROOM + len);
  buf.copy(copy, LINK_HEADROOM, off, off + len);
  return copy;
}
