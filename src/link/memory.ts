// In-memory links: two stacks (or many, through a switch) talk with no device and no root.
// Delivery goes through the injected clock, so tests in virtual time are deterministic and
// a send never re-enters the receiver on the sender's stack.

import type { Clock } from '../util/clock.ts';
import type { FrameReceiver, Link } from './link.ts';

export interface MemoryLinkOptions {
  mtu?: number;
  /** One-way delay in milliseconds (default 0: delivered on the next clock turn). */
  latencyMs?: number;
}

export class MemoryLink implements Link {
  readonly mtu: number;
  peer: MemoryLink | null = null;
  private receiver: FrameReceiver = () => {};
  private batchEnd: (() => void) | null = null;
  private inBatch = false;
  private closed = false;
  private readonly latencyMs: number;
  private readonly queue: Buffer[] = [];
  private flushScheduled = false;

  constructor(
    private readonly clock: Clock,
    options: MemoryLinkOptions = {},
  ) {
    this.mtu = options.mtu ?? 1500;
    this.latencyMs = options.latencyMs ?? 0;
  }

  send(buf: Buffer, off: number, len: number): void {
    const peer = this.peer;
    if (this.closed || !peer) return;
    const copy = Buffer.allocUnsafe(len);
    buf.copy(copy, 0, off, off + len);
    if (this.latencyMs > 0) {
      this.clock.setTimer(this.latencyMs, () => peer.deliver(copy));
      return;
    }
    // Frames sent in one turn are delivered together, in order, on the next turn.
    this.queue.push(copy);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.clock.setTimer(0, () => {
        this.flushScheduled = false;
        peer.deliverBatch(this.queue.splice(0));
      });
    }
  }

  /** Hands a frame to this end's receiver (used by peers, switches and tests): a batch of one. */
  deliver(frame: Buffer): void {
    if (this.closed) return;
    this.receiver(frame, 0, frame.length, null);
    if (!this.inBatch && this.batchEnd !== null) this.batchEnd();
  }

  /** Frames sent in one turn arrive as one batch, like frames read in one wake-up of a TAP. */
  deliverBatch(frames: Buffer[]): void {
    this.inBatch = true;
    try {
      for (const f of frames) this.deliver(f);
    } finally {
      this.inBatch = false;
    }
    if (!this.closed && this.batchEnd !== null) this.batchEnd();
  }

  setReceiver(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }

  setBatchEndHandler(handler: () => void): void {
    this.batchEnd = handler;
  }

  close(): void {
    this.closed = true;
  }
}

/** Two links joined back to back, like the two ends of a cable. */
export function createLinkPair(clock: Clock, options: MemoryLinkOptions = {}): [MemoryLink, MemoryLink] {
  const a = new MemoryLink(clock, options);
  const b = new MemoryLink(clock, options);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/**
 * A learning-free hub: every frame sent by one port is delivered to all the others.
 * Enough for simulating many small devices on one segment.
 */
export class MemoryHub {
  private readonly ports: MemoryLink[] = [];
  constructor(
    private readonly clock: Clock,
    private readonly options: MemoryLinkOptions = {},
  ) {}

  /** Creates a port; give the returned link to a stack. */
  connect(): Link {
    const [stackSide, hubSide] = createLinkPair(this.clock, this.options);
    hubSide.setReceiver((buf, off, len) => {
      for (const p of this.ports) if (p !== hubSide) p.send(buf, off, len);
    });
    this.ports.push(hubSide);
    return stackSide;
  }
}
