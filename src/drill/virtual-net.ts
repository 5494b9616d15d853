// What the runner puts under the stack for `--target stack`: a virtual clock that can say
// when its next timer falls due (so the runner steps from event to event without polling),
// and a link that records what the stack sends and lets the runner inject what the remote
// sends. Nothing here allocates unless a frame is sent or injected.

import type { FrameReceiver, Link } from '../link/link.ts';
import { type Timer, VirtualClock } from '../util/clock.ts';

interface DueTimer extends Timer {
  at: number;
  cancelled: boolean;
}

export class SteppingClock extends VirtualClock {
  private readonly live = new Set<DueTimer>();

  override setTimer(ms: number, fn: () => void): Timer {
    let timer: DueTimer | null = null;
    timer = super.setTimer(ms, () => {
      this.live.delete(timer!);
      fn();
    }) as DueTimer;
    this.live.add(timer);
    return timer;
  }

  /** When the earliest pending timer falls due (ms), or null when none is pending. */
  nextDue(): number | null {
    let next: number | null = null;
    for (const t of this.live) {
      if (t.cancelled) {
        this.live.delete(t);
        continue;
      }
      if (next === null || t.at < next) next = t.at;
    }
    return next;
  }
}

/** A sent frame and the virtual time (ms) it left at. */
export interface SentFrame {
  at: number;
  frame: Buffer;
}

export class ScriptLink implements Link {
  readonly mtu: number;
  private receiver: FrameReceiver = () => {};
  private batchEnd: (() => void) | null = null;
  private sent: SentFrame[] = [];

  constructor(
    private readonly clock: VirtualClock,
    mtu = 1500,
  ) {
    this.mtu = mtu;
  }

  send(buf: Buffer, off: number, len: number): void {
    this.sent.push({ at: this.clock.now(), frame: Buffer.from(buf.subarray(off, off + len)) });
  }
  setReceiver(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }
  setBatchEndHandler(handler: () => void): void {
    this.batchEnd = handler;
  }
  /** Delivers one frame to the stack, a receive batch of its own (as one TAP read). */
  inject(frame: Buffer): void {
    this.receiver(frame, 0, frame.length, null);
    this.batchEnd?.();
  }
  /** The frames sent since the last call. */
  take(): SentFrame[] {
    const out = this.sent;
    this.sent = [];
    return out;
  }
  close(): void {}
}
