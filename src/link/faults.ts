// A fault-injecting link: wraps any Link and, from a seed, drops, duplicates, reorders,
// delays and corrupts frames in both directions. The same seed gives the same faults.
// Everything else (offloads, batched receive) is the inner link's (LinkDecorator).

import type { Clock } from '../util/clock.ts';
import { seededRandom } from '../util/random.ts';
import { LinkDecorator } from './decorator.ts';
import { type FrameReceiver, type Link, LINK_HEADROOM } from './link.ts';
import type { RxFrameInfo } from './vnet.ts';

export interface FaultOptions {
  seed: number;
  /** Probabilities in [0, 1], applied per frame and per direction. */
  drop?: number;
  duplicate?: number;
  reorder?: number;
  corrupt?: number;
  /** Extra delay (ms) drawn uniformly from [0, maxDelayMs] for delayed or reordered frames. */
  maxDelayMs?: number;
  delay?: number;
  /** Which directions suffer: 'both' (default), 'tx' (frames we send) or 'rx'. */
  direction?: 'both' | 'tx' | 'rx';
}

export interface FaultCounters {
  dropped: number;
  duplicated: number;
  reordered: number;
  delayed: number;
  corrupted: number;
}

export class FaultyLink extends LinkDecorator {
  readonly counters: FaultCounters = { dropped: 0, duplicated: 0, reordered: 0, delayed: 0, corrupted: 0 };
  private readonly random: () => number;
  /** Faults can be switched off at run time, e.g. to let a test finish cleanly. */
  enabled = true;
  private readonly passUp: FrameReceiver = (b, o, l, info) => this.receiver(b, o, l, info);
  private readonly passUpLater: FrameReceiver = (b, o, l, info) => this.receiveAlone(b, o, l, info);
  private readonly passDown: FrameReceiver = (b, o, l) => this.inner.send(b, o, l);

  constructor(
    inner: Link,
    private readonly clock: Clock,
    private readonly options: FaultOptions,
  ) {
    super(inner);
    this.random = seededRandom(options.seed);
  }

  override send(buf: Buffer, off: number, len: number): void {
    if (this.applies('tx')) this.perturb(buf, off, len, null, this.passDown, this.passDown);
    else this.inner.send(buf, off, len);
  }

  protected override receive(buf: Buffer, off: number, len: number, info: RxFrameInfo | null): void {
    if (this.applies('rx')) this.perturb(buf, off, len, info, this.passUp, this.passUpLater);
    else this.receiver(buf, off, len, info);
  }

  private applies(dir: 'tx' | 'rx'): boolean {
    const d = this.options.direction ?? 'both';
    return this.enabled && (d === 'both' || d === dir);
  }

  /**
   * Passes the frame on (or not) with its faults. A frame passed as it came keeps its offload
   * facts; a corrupted or delayed copy gets none, since they no longer hold for it. A delayed
   * frame is passed on later, by `passLater` (received: a batch of its own).
   */
  private perturb(buf: Buffer, off: number, len: number, info: RxFrameInfo | null, pass: FrameReceiver, passLater: FrameReceiver): void {
    const o = this.options;
    const r = this.random;
    if (o.drop && r() < o.drop) {
      this.counters.dropped++;
      return;
    }
    let copies = 1;
    if (o.duplicate && r() < o.duplicate) {
      this.counters.duplicated++;
      copies = 2;
    }
    for (let c = 0; c < copies; c++) {
      let frame = buf;
      let frameOff = off;
      if (o.corrupt && r() < o.corrupt) {
        this.counters.corrupted++;
        frame = withHeadroom(buf, off, len);
        frameOff = LINK_HEADROOM;
        // Flip one bit anywhere after the Ethernet header, so checksums must catch it.
        const at = len > 14 ? 14 + Math.floor(r() * (len - 14)) : Math.floor(r() * len);
        frame[frameOff + at]! ^= 1 << Math.floor(r() * 8);
      }
      const reorder = o.reorder !== undefined && r() < o.reorder;
      const delay = o.delay !== undefined && r() < o.delay;
      if (reorder || delay) {
        if (reorder) this.counters.reordered++;
        else this.counters.delayed++;
        const copy = frame === buf ? withHeadroom(buf, off, len) : frame;
        const ms = 1 + r() * (o.maxDelayMs ?? 10);
        this.clock.setTimer(ms, () => passLater(copy, LINK_HEADROOM, len, null));
      } else {
        pass(frame, frameOff, len, frame === buf ? info : null);
      }
    }
  }
}

/** A copy of a frame that keeps LINK_HEADROOM free bytes before it, as Link.send expects. */
function withHeadroom(buf: Buffer, off: number, len: number): Buffer {
  const copy = Buffer.alloc(LINK_HEADROOM + len);
  buf.copy(copy, LINK_HEADROOM, off, off + len);
  return copy;
}
