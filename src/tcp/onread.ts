// Node's onread option (net.Socket { onread: { buffer, callback } }): received bytes are
// copied into the application's buffer, as much as it holds at a time, and handed to its
// callback instead of 'data'. A callback that returns false stops reading (net.js
// onStreamRead: the handle's readStop; the stream itself is not paused) until resume():
// meanwhile the bytes wait here, unread, as they would in the kernel's queue, and so does
// the FIN.

import type { OnRead } from './connect.ts';

export class OnreadDelivery {
  private stopped = false;
  private readonly queue: Buffer[] = [];
  /** Bytes waiting for resume(): unread (the window shrinks by them; destroy() resets). */
  queued = 0;
  /** The peer's FIN came behind queued bytes. */
  endPending = false;

  constructor(
    private readonly buffer: OnRead['buffer'],
    private readonly callback: OnRead['callback'],
  ) {}

  get holding(): boolean {
    return this.queued > 0;
  }

  deliver(socket: object, data: Buffer): void {
    if (this.stopped) {
      this.queue.push(data);
      this.queued += data.length;
      return;
    }
    this.copyOut(socket, data);
  }

  /** Delivers what waited; returns whether everything did (then a pending FIN may go on). */
  resume(socket: object): boolean {
    this.stopped = false;
    while (!this.stopped && this.queue.length > 0) {
      const d = this.queue.shift()!;
      this.queued -= d.length;
      this.copyOut(socket, d);
    }
    return this.queue.length === 0;
  }

  private copyOut(socket: object, data: Buffer): void {
    for (let off = 0; off < data.length; ) {
      const buf = typeof this.buffer === 'function' ? this.buffer() : this.buffer;
      const n = Math.min(buf.length, data.length - off);
      if (n === 0) break;
      data.copy(buf, 0, off, off + n);
      off += n;
      if (this.callback.call(socket, n, buf) === false) {
        this.stopped = true;
        if (off < data.length) {
          const rest = data.subarray(off);
          this.queue.unshift(rest);
          this.queued += rest.length;
        }
        return;
      }
    }
  }
}
