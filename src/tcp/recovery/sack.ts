// SACK-based loss recovery (RFC 6675, with RACK's loss marks, RFC 8985): the pipe estimate
// replaces NewReno's window inflation, and each step retransmits the next segment marked
// lost (NextSeg rule 1) while cwnd - pipe allows a segment, then lets new data out through
// output(), limited by the same pipe. The marks and the pipe live in SentSegments.

import { emit } from '../emit.ts';
import { output } from '../output.ts';
import { pacingHolds } from '../pacing.ts';
import { seqAdd, seqGt, seqSub } from '../seq.ts';
import type { SendReason, Tcb } from '../tcb.ts';
import { ACK, FIN, PSH } from '../tcp-segment.ts';
import { Deadline } from '../timers/deadlines.ts';

/** At most this many retransmissions per step (a bound, never reached with sane windows). */
const MAX_RETRANSMISSIONS_PER_STEP = 1000;

/**
 * RFC 6675 5 step (4.2): cwnd = ssthresh, without NewReno's inflation; PRR (prr.ts) then
 * sets it on every ACK of the recovery.
 */
export function enterSackRecovery(c: Tcb): void {
  // A controller with its own cwnd (BBR) sets it on this ACK instead (control()).
  if (!c.cc.control) c.cc.cwnd = c.cc.ssthresh;
}

/** RFC 6675 5 step (C). */
export function sackRecoveryStep(c: Tcb): void {
  const snd = c.snd;
  const r = c.recovery;
  const log = c.sent;
  // RACK found a retransmission lost (rack.ts): the search starts over from SND.UNA.
  if (log.retransmissionLost) {
    log.retransmissionLost = false;
    r.highRxt = snd.una;
  }
  // F-RTO step 2b (frto.ts): this ACK lets out new data instead.
  if (!r.frtoNewData) {
    for (let i = 0; i < MAX_RETRANSMISSIONS_PER_STEP; i++) {
      if (c.cc.cwnd - log.inFlight < snd.mss) return;
      if (log.lostBytes > log.retransInFlightBytes && pacingHolds(c)) return;
      if (!retransmitNextLost(c, 'sack-retransmit')) break;
    }
  }
  output(c);
}

/**
 * NextSeg rule 1: retransmits the first segment marked lost and not being retransmitted,
 * from HighRxt on; false when there is none. With segmentation offload the lost segments
 * that follow it go in the same frame, as far as the window has room (at least the first):
 * a super-frame lost whole is resent as one, not as 44 frames each of which may be lost.
 * The last segment carries our FIN again if the FIN was sent.
 */
export function retransmitNextLost(c: Tcb, reason: SendReason): boolean {
  const snd = c.snd;
  const r = c.recovery;
  const log = c.sent;
  const i = log.nextLost(r.highRxt);
  if (i < 0) return false;
  const start = log.startOf(i);
  const offset = seqSub(start, snd.una);
  const frameMax = c.ctx.maxSegmentPayload(snd.mss);
  const room = Math.max(snd.mss, c.cc.cwnd - log.inFlight);
  const end = frameMax > snd.mss ? log.lostRunEnd(i, snd.mss, Math.min(frameMax, room)) : log.endOf(i);
  const n = Math.min(seqSub(end, start), frameMax, c.sendBuffer.length - offset);
  if (n <= 0) return false;
  const last = offset + n === c.sendBuffer.length;
  const fin = c.finQueued && last && seqGt(snd.max, c.finSeq());
  // Counted in segments, as Linux's total_retrans.
  c.count('retransmits', Math.ceil(n / snd.mss));
  c.stats.bytesRetransmitted += n;
  c.rtt.onRetransmit(c.ctx.timestampNow());
  emit(c, ACK | (fin ? FIN : 0) | (last ? PSH : 0), start, offset, n, reason);
  r.highRxt = seqAdd(start, n);
  // The head went again: its ACK is an RTT away, so the timer restarts (Linux's
  // tcp_xmit_retransmit_queue rearms the RTO when it resends the head).
  if (start === snd.una) c.setDeadline(Deadline.Retransmit, c.now() + c.rtt.rto);
  return true;
}
