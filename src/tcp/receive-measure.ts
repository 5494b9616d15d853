// Measuring the receiver's estimates (receive-estimates.ts), as Linux's tcp_input.c does:
// tcp_initialize_rcv_mss and tcp_init_buffer_space at establishment, then per in-order data
// segment tcp_measure_rcv_mss, tcp_rcv_rtt_measure(_ts) and tcp_rcv_space_adjust.

import { type ReceiveEstimates, TCP_MSS_DEFAULT } from './receive-estimates.ts';
import { seqAdd, seqLt, seqSub } from './seq.ts';
import type { Tcb } from './tcb.ts';
import { FIN, PSH, SYN, type TcpSegment } from './tcp-segment.ts';

/** Linux TCP_MIN_MSS: the smallest segment size taken as a peer's full size. */
const TCP_MIN_MSS = 88;
/** Linux TCP_INIT_CWND: the first rcv_space is this many advertised MSS. */
const INITIAL_SPACE_SEGMENTS = 10;
/** Flags that mark a segment as possibly short on purpose (Linux TCP_REMNANT, without URG). */
const REMNANT = FIN | SYN | PSH;

/** The advertised MSS as Linux's tp->advmss: our MSS less the timestamp option every segment carries. */
export function advertisedMss(c: Tcb): number {
  return c.rcv.mss - (c.tsEnabled ? 12 : 0);
}

/** The bytes handed to the application and read by it (Linux copied_seq). */
function copiedSeq(c: Tcb): number {
  return seqSub(c.rcv.nxt, c.user !== null ? c.user.unreadBytes() : 0);
}

/**
 * At establishment (Linux tcp_initialize_rcv_mss, tcp_init_buffer_space): the first guess of
 * the peer's segment size and of the space per RTT.
 */
export function initReceiveEstimates(c: Tcb, window: number): void {
  const e = c.receiveEstimates;
  const advmss = advertisedMss(c);
  e.mss = Math.max(TCP_MIN_MSS, Math.min(advmss, c.snd.mss, window >> 1, TCP_MSS_DEFAULT));
  e.space = Math.min(window, INITIAL_SPACE_SEGMENTS * advmss);
  e.spaceSeq = copiedSeq(c);
  e.spaceTime = c.now();
}

/** Linux tcp_rcv_rtt_update: samples are kept x8; without timestamps only smaller ones count. */
function rttUpdate(e: ReceiveEstimates, sampleUs: number, windowBased: boolean): void {
  const old = e.rttUs8;
  const m = sampleUs * 8;
  if (old === 0 || m < old) e.rttUs8 = m;
  else if (!windowBased) e.rttUs8 = old - (old >> 3) + sampleUs;
}

/**
 * In-order data (Linux tcp_event_data_recv and tcp_rcv_rtt_measure_ts): measure the peer's
 * segment size, time the receive window, and note the arrival. Called after RCV.NXT moved.
 */
export function onInOrderData(c: Tcb, seg: TcpSegment): void {
  const e = c.receiveEstimates;
  const now = c.now();
  const len = seg.payloadLength;
  c.lastDataReceiveTime = now;
  e.dataSeen = true;
  // tcp_rcv_rtt_measure_ts (first, as Linux, with the estimate before this segment): a full
  // segment echoing a timestamp not used before measures from when we sent that timestamp
  // to now (in the millisecond units of the TS clock).
  if (c.tsEnabled && seg.hasTimestamp && seg.tsEcr !== 0 && seg.tsEcr !== e.rttLastTsecr) {
    e.rttLastTsecr = seg.tsEcr;
    if (len >= e.mss) {
      const delta = (c.ctx.timestampNow() - seg.tsEcr) | 0;
      if (delta >= 0) rttUpdate(e, Math.max(delta, 1) * 1000, false);
    }
  }
  // tcp_measure_rcv_mss: a segment at least as large as the estimate raises it (a coalesced
  // super-frame is clamped to what we advertised); a shorter one counts when two alike come.
  const advmss = advertisedMss(c);
  const lastShort = e.lastSegmentSize;
  e.lastSegmentSize = 0;
  if (len >= e.mss) e.mss = Math.min(len, advmss);
  else {
    const withHeader = len + seg.headerLength;
    if (withHeader >= TCP_MSS_DEFAULT + 20 || (withHeader >= TCP_MIN_MSS + 20 && !(seg.flags & REMNANT))) {
      const size = withHeader - (20 + (c.tsEnabled ? 12 : 0));
      e.lastSegmentSize = size;
      if (size === lastShort) e.mss = size;
    }
  }
  // tcp_rcv_rtt_measure: the time for a window's worth of data to arrive, a minimum.
  const rcv = c.rcv;
  if (e.rttTime >= 0) {
    if (seqLt(rcv.nxt, e.rttSeq)) return adjustSpace(c, now);
    rttUpdate(e, Math.max(1, Math.round((now - e.rttTime) * 1000)), true);
  }
  e.rttSeq = seqAdd(rcv.nxt, seqSub(rcv.adv, rcv.nxt));
  e.rttTime = now;
  adjustSpace(c, now);
}

/**
 * Linux tcp_rcv_space_adjust: once per receive RTT, the bytes the application took in it;
 * rcv_space is the most so far. (Linux runs it when the application reads; the stack
 * delivers as data arrives, so it runs then, counting what the application has read.)
 */
function adjustSpace(c: Tcb, now: number): void {
  const e = c.receiveEstimates;
  if (e.rttUs8 === 0 || (now - e.spaceTime) * 1000 < e.rttUs8 / 8) return;
  const copied = copiedSeq(c);
  const taken = seqSub(copied, e.spaceSeq);
  if (taken > e.space) e.space = taken;
  e.spaceSeq = copied;
  e.spaceTime = now;
}
