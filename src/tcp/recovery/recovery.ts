// Loss detection and the recovery episode (RFC 5681 3.2, RFC 6582, RFC 6675 5): when a loss
// is declared, which algorithm recovers (SACK when the peer gives SACK information, NewReno
// otherwise), what each ACK does during recovery, and when it ends. One reduction per window
// of losses: recovery starts only above "recover" (RFC 6582 3.2 step 2).

import { retransmitFirst } from '../emit.ts';
import { output } from '../output.ts';
import { seqGe, seqGt, seqSub } from '../seq.ts';
import type { Tcb } from '../tcb.ts';
import { Deadline } from '../timers/deadlines.ts';
import { enterNewRenoRecovery, newRenoDuplicateAck, newRenoPartialAck } from './newreno.ts';
import { prrOnAck, startPrr } from './prr.ts';
import { enterSackRecovery, sackRecoveryStep } from './sack.ts';
import { DUP_THRESH } from './scoreboard.ts';

/**
 * Fast retransmit on DupThresh duplicate ACKs, or as soon as SACK blocks show the first
 * segment lost (RFC 6675 5), and only if the ACK covers more than "recover".
 */
export function maybeEnterRecovery(c: Tcb): void {
  const snd = c.snd;
  const r = c.recovery;
  const sack = c.sackPermitted && !c.scoreboard.isEmpty;
  const lost = r.dupAcks >= DUP_THRESH || (sack && c.scoreboard.lostBoundary(snd.una, snd.mss) !== snd.una);
  if (!lost || !seqGt(snd.una, r.recover)) return;
  r.recover = snd.max;
  r.inRecovery = true;
  r.sackRecovery = sack;
  c.timers.clear(Deadline.TailLossProbe);
  c.count('fastRetransmits');
  c.cc.onCongestionEvent(seqSub(snd.max, snd.una), c.now());
  if (sack) {
    startPrr(c);
    enterSackRecovery(c);
  } else {
    enterNewRenoRecovery(c);
  }
  if (c.ctx.probe !== null) c.reportCongestion(sack ? 'loss: SACK recovery (RFC 6675 5)' : 'loss: fast retransmit (RFC 5681 3.2)');
  c.rtt.stopTiming();
  r.highRxt = snd.una;
  // The fast retransmit goes whatever the window (RFC 6937: at least one segment on entry).
  retransmitFirst(c, 'fast-retransmit');
  // With SACK the rest follows from this ACK's step (continueRecovery), sized by PRR.
  if (!sack) output(c);
}

/** RFC 5681 2 DUPLICATE ACKNOWLEDGMENT. */
export function onDuplicateAck(c: Tcb): void {
  const r = c.recovery;
  r.dupAcks++;
  if (r.inRecovery) {
    // NewReno inflates the window per duplicate; SACK recovery counts the network's
    // contents instead (pipe, RFC 6675).
    if (!r.sackRecovery) newRenoDuplicateAck(c);
    return;
  }
  maybeEnterRecovery(c);
}

/** An ACK that advanced SND.UNA by bytesAcked of data (synchronized states). */
export function onAckOfNewData(c: Tcb, ack: number, bytesAcked: number): void {
  const r = c.recovery;
  if (r.inRecovery) {
    if (seqGe(ack, r.recover)) {
      // RFC 6582 3.2 step 6: a full ACK ends recovery. After a timeout cwnd is what slow
      // start made of it (Linux leaves CA_Loss without a further reduction).
      r.inRecovery = false;
      r.sackRecovery = false;
      if (r.afterTimeout) r.afterTimeout = false;
      else c.cc.cwnd = c.cc.cwndAfterRecovery(seqSub(c.snd.max, c.snd.una));
      if (c.ctx.probe !== null) c.reportCongestion('recovery ends: all lost data acknowledged (RFC 6582 3.2 step 6)');
    } else if (r.afterTimeout) {
      // RFC 5681 3.1: after the loss window, slow start while the holes are repaired.
      c.cc.onAck(bytesAcked, c.now(), c.rtt.srtt);
      if (c.ctx.probe !== null) c.reportCongestion('slow start after a timeout (RFC 5681 3.1)');
    } else if (!r.sackRecovery) {
      newRenoPartialAck(c, bytesAcked);
    }
  } else {
    c.cc.onAck(bytesAcked, c.now(), c.rtt.srtt);
    if (c.ctx.probe !== null) c.reportCongestion(c.cc.cwnd <= c.cc.ssthresh ? 'slow start (RFC 5681 3.1)' : 'congestion avoidance');
  }
}

/**
 * During SACK recovery every ACK is a step (RFC 6675 5 (C)), as much as PRR lets out
 * (RFC 6937); after a timeout cwnd follows slow start instead.
 */
export function continueRecovery(c: Tcb): void {
  const r = c.recovery;
  if (!r.inRecovery || !r.sackRecovery) return;
  if (!r.afterTimeout) {
    prrOnAck(c, r.delivered);
    if (c.ctx.probe !== null) c.reportCongestion('proportional rate reduction (RFC 6937)');
  }
  sackRecoveryStep(c);
}

/**
 * A retransmission timeout with SACK information (RFC 6675 5.1, Linux's tcp_enter_loss):
 * the SACKed data is kept, as Linux keeps its SACK marks unless the receiver reneged (see
 * onReneging), and every byte not SACKed counts as lost. The holes are then retransmitted by
 * SACK recovery from SND.UNA, without resending what the peer holds, while cwnd grows from
 * the loss window by slow start.
 */
export function enterLossAfterTimeout(c: Tcb): void {
  const r = c.recovery;
  const snd = c.snd;
  r.inRecovery = true;
  r.sackRecovery = true;
  r.afterTimeout = true;
  r.recover = snd.max;
  r.highRxt = snd.una;
  r.retransmitMark = snd.max;
  r.dupAcks = 0;
  r.tlpOutstanding = false;
  c.timers.clear(Deadline.TailLossProbe);
  // Linux tcp_timeout_mark_lost: everything not SACKed is lost.
  c.scoreboard.lostBelow = snd.max;
  c.scoreboard.hasLostBelow = true;
}

/**
 * The receiver reneged (Linux tcp_check_sack_reneging: the cumulative ACK stops at SACKed
 * data): the SACK information is not to be trusted. It is forgotten, and the retransmission
 * timer is set to fire soon (half an SRTT, at least 10 ms, as Linux), so that everything from
 * SND.UNA goes again.
 */
export function onReneging(c: Tcb): void {
  c.count('sackRenegings');
  c.scoreboard.clear();
  c.timers.set(Deadline.Retransmit, c.now() + Math.max(c.rtt.srtt / 2, 10));
}

/**
 * A retransmission timeout without SACK information: recovery is over and everything from
 * SND.UNA goes again (go-back-N, as BSD and Linux do).
 */
export function resetOnTimeout(c: Tcb): void {
  const r = c.recovery;
  r.inRecovery = false;
  r.sackRecovery = false;
  r.afterTimeout = false;
  c.scoreboard.clear();
  r.highRxt = c.snd.una;
  c.timers.clear(Deadline.TailLossProbe);
  r.tlpOutstanding = false;
  r.dupAcks = 0;
  r.recover = c.snd.max;
}
