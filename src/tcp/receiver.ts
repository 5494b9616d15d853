// The receiver (RFC 9293 3.10.7.4 "seventh" and "eighth"): in-order text goes to the
// application, out-of-order text waits in the reassembly queue (bounded), and the FIN is
// taken once everything before it has arrived. When to acknowledge is the ACK policy's.

import { abort, enterTimeWait } from './closing.ts';
import { onInOrderData } from './receive-measure.ts';
import { seqAdd } from './seq.ts';
import { TCP_EVENTS, type TcpState } from './state.ts';
import type { Tcb } from './tcb.ts';
import type { TcpSegment } from './tcp-segment.ts';

/** Seventh and eighth steps: the segment's text [off, off+len) at seq, and its FIN. */
export function acceptData(c: Tcb, seg: TcpSegment, seq: number, off: number, len: number, fin: boolean): void {
  if (c.state !== 'ESTABLISHED' && c.state !== 'FIN-WAIT-1' && c.state !== 'FIN-WAIT-2') {
    // After the peer's FIN no text can follow; a duplicate FIN is only acknowledged.
    if (fin || len > 0) c.ack.ackNow();
    return;
  }
  const rcv = c.rcv;
  if (seq !== rcv.nxt) {
    // Out of order: keep it (bounded) and tell the sender at once with a duplicate ACK
    // (RFC 5681 4.2). Text held already is a duplicate: reported first, then the block
    // that holds it (RFC 2883 4.1.3 / 4.2).
    if (len > 0 && c.reassembly.holds(seq, seqAdd(seq, len))) noteDuplicate(c, seq, seqAdd(seq, len));
    const dropped = c.reassembly.insert(seq, seg.buf, off, len, fin);
    if (dropped !== null) c.ctx.counters.drop(dropped);
    c.ack.ackNow();
    // The segments after a hole are acknowledged at once too (quick-ACK mode).
    if (c.config.maxQuickAcks > 0) c.ack.enterQuickAck(c.config.maxQuickAcks, c.config.receiveBufferSize, rcv.mss);
    return;
  }
  // The first FIN fixes the end of the stream (RFC 9293 3.10.7.4): text beyond a FIN held is
  // not accepted, a FIN elsewhere is inconsistent; an in-order FIN drops what is held beyond
  // it (as Linux's tcp_fin purges the out-of-order queue).
  const q = c.reassembly;
  if (fin ? q.finElsewhere(seqAdd(seq, len)) : q.beforeFin(seq, len) < len) {
    if (fin) {
      c.ack.ackNow();
      return c.ctx.counters.drop('tcp-fin-inconsistent');
    }
    len = q.beforeFin(seq, len);
    c.ctx.counters.drop('tcp-data-past-fin');
  }
  if (fin && q.dropFrom(seqAdd(seq, len))) c.ctx.counters.drop('tcp-data-past-fin');
  const filledHole = !c.reassembly.isEmpty;
  if (len > 0) {
    const data = c.ctx.copyPayload(seg.buf, off, len);
    rcv.nxt = seqAdd(rcv.nxt, len);
    deliver(c, data);
    // The application may have destroyed the socket from its 'data' handler.
    if ((c.state as TcpState) === 'CLOSED') return;
    onInOrderData(c, seg);
    // Full-sized segments count one each (a coalesced super-frame from the kernel, several).
    c.ack.onInOrderData(len, rcv.mss - 40, c.config.maxQuickAcks, c.config.receiveBufferSize, rcv.mss);
  }
  let finNow = fin;
  if (filledHole) {
    // RFC 5681 4.2: ACK at once a segment that fills a gap.
    c.ack.ackNow();
    rcv.nxt = c.reassembly.drain(
      rcv.nxt,
      (d) => deliver(c, d),
      () => (finNow = true),
    );
    if ((c.state as TcpState) === 'CLOSED') return;
  }
  if (finNow) {
    receiveFin(c);
    return;
  }
  c.ack.afterInOrderData();
}

/** RFC 2883: duplicate text [start, end) is reported in the first SACK block of our next ACK (Linux tcp_dsack_set). */
export function noteDuplicate(c: Tcb, start: number, end: number): void {
  if (!c.sackPermitted || !c.config.dsack) return;
  c.dsackStart = start;
  c.dsackEnd = end;
}

function deliver(c: Tcb, data: Buffer): void {
  c.count('bytesReceived', data.length);
  if (c.user && !c.orphaned) c.user.onData(data);
  else if (c.orphaned) {
    // Data for a socket nobody reads any more: Linux answers with a reset (RFC 2525 2.17).
    abort(c, null);
  }
}

/** The FIN came in order (RFC 9293 3.10.7.4 "eighth"). */
function receiveFin(c: Tcb): void {
  c.rcv.nxt = seqAdd(c.rcv.nxt, 1);
  c.finReceived = true;
  c.ack.onFinReceived(c.state === 'ESTABLISHED');
  c.user?.onEnd();
  switch (c.state) {
    case 'ESTABLISHED':
      c.transition(TCP_EVENTS.finReceived);
      break;
    case 'FIN-WAIT-1':
      // Our FIN not yet acknowledged: simultaneous close (RFC 9293 3.6 figure 13).
      if (c.snd.una === seqAdd(c.finSeq(), 1)) enterTimeWait(c, TCP_EVENTS.finReceivedOurFinAcked);
      else c.transition(TCP_EVENTS.finReceived);
      break;
    case 'FIN-WAIT-2':
      enterTimeWait(c, TCP_EVENTS.finReceived);
      break;
    default:
      break;
  }
}
