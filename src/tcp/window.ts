// The receive window we offer (RFC 9293 3.8.6.2.2, receiver silly window syndrome
// avoidance): what is free in the receive buffer, how far the right edge may move, and when
// a grown window is worth a segment of its own.

import { seqAdd, seqGe, seqGt, seqLt, seqSub } from './seq.ts';
import type { Tcb } from './tcb.ts';

/** Free space in the receive buffer: what we can offer as window. */
export function freeReceiveSpace(c: Tcb): number {
  const unread = c.user ? c.user.unreadBytes() : 0;
  const free = Math.max(0, c.config.receiveBufferSize - unread - c.reassembly.bytes);
  // Under memory pressure Linux clamps rcv_ssthresh to 4 MSS (tcp_adjust_rcv_ssthresh): no
  // connection is offered more than that beyond what it was offered already.
  return c.ctx.memory.underPressure ? Math.min(free, 4 * c.rcv.mss) : free;
}

/**
 * What we may offer: the free space, but no more than the window field can say (65535 << the
 * window scale, RFC 7323 2.2): without scaling a 1 MiB buffer still offers 65535, and RCV.WND,
 * by which segments are accepted (RFC 9293 3.10.7.4), is what was advertised.
 */
export function offerableSpace(c: Tcb): number {
  return Math.min(freeReceiveSpace(c), 0xffff * 2 ** c.rcv.wscale);
}

/** The right edge moves by at least min(half the buffer, one MSS) (RFC 9293 3.8.6.2.2). */
function edgeThreshold(c: Tcb): number {
  return Math.min(c.config.receiveBufferSize >> 1, c.rcv.mss);
}

/**
 * The window to advertise: the right edge moves only by at least the threshold, and never
 * left. Returns the field value (scaled, RFC 7323 2.3).
 */
export function advertiseWindow(c: Tcb): number {
  const rcv = c.rcv;
  const free = offerableSpace(c);
  const right = seqAdd(rcv.nxt, free);
  const threshold = edgeThreshold(c);
  if (seqGe(right, seqAdd(rcv.adv, threshold)) || (free >= threshold && seqGt(right, rcv.adv))) rcv.adv = right;
  if (seqLt(rcv.adv, rcv.nxt)) rcv.adv = rcv.nxt;
  // RFC 7323 2.4 (and Linux tcp_select_window's ALIGN): the scaled field is rounded up, not
  // down, else the right edge the peer sees would move left by up to 2^wscale - 1 bytes
  // (RFC 9293 3.8.6); the edge we accept up to becomes the one advertised.
  const unit = 2 ** rcv.wscale;
  const window = Math.min(Math.ceil(seqSub(rcv.adv, rcv.nxt) / unit), 0xffff);
  const advertised = seqAdd(rcv.nxt, window * unit);
  if (seqGt(advertised, rcv.adv)) rcv.adv = advertised;
  return window;
}

/**
 * The application read data: is the grown window worth announcing now? As Linux
 * (tcp_cleanup_rbuf), only once the window left to the peer has fallen to half the buffer
 * and would at least double: reads that keep up with the data need no window updates of
 * their own, the next ACK carries the window.
 */
export function windowUpdateDue(c: Tcb): boolean {
  const rcv = c.rcv;
  const free = offerableSpace(c);
  const right = seqAdd(rcv.nxt, free);
  const current = seqSub(rcv.adv, rcv.nxt);
  const size = c.config.receiveBufferSize;
  return 2 * current <= size && free >= 2 * current && seqGe(right, seqAdd(rcv.adv, edgeThreshold(c)));
}

/** The window scale we offer for a receive buffer: the smallest shift that fits 16 bits (RFC 7323 2.3). */
export function windowScaleFor(receiveBufferSize: number): number {
  let shift = 0;
  while (shift < 14 && receiveBufferSize >> shift > 0xffff) shift++;
  return shift;
}
