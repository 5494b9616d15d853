// The recovery episode (RFC 5681 3.2, RFC 6582, RFC 6675 5, RFC 8985): when a loss is
// declared (RACK with SACK, rack.ts; DupThresh without), which algorithm recovers (SACK when
// the peer gives SACK information, NewReno otherwise), what each ACK does during recovery,
// when it ends, and what a timeout does to it.

import { retransmitFirst } from '../emit.ts';
import { output } from '../output.ts';
import { seqGe, seqGt, seqSub } from '../seq.ts';
import type { Tcb } from '../tcb.ts';
import { Deadline } from '../timers/deadlines.ts';
import { enterNewRenoRecovery, newRenoDuplicateAck, newRenoPartialAck } from './newreno.ts';
import { prrOnAck, startPrr } from './prr.ts';
import { rackOnRecoveryEnd } from './rack.ts';
import { enterSackRecovery, retransmitNextLost, sackRecoveryStep } from './sack.ts';
import { armUndo, tryUndo } from './undo.ts';
import { frtoOnAck, startFrto } from './frto.ts';
import { DUP_THRESH } from './scoreboard.ts';

/**
 * Recovery starts when a loss is known: with SACK, when RACK has marked a segment lost
 * (rack.ts, RFC 8985); without, on DupThresh duplicate ACKs (RFC 5681 3.2), and then only if
 * the ACK covers more than "recover" (RFC 6582 3.2 step 2; with SACK a loss is a loss of
 * data sent after the last reduction began, as Linux's tcp_time_to_recover).
 */
export function maybeEnterRecovery(c: Tcb): void {
  const snd = c.snd;
  const r = c.recovery;
  if (r.inRecovery) return;
  const sack = c.sackPermitted && c.sent.sackedBytes > 0;
  if (sack ? c.sent.lostBytes === 0 : r.dupAcks < DUP_THRESH || !seqGt(snd.una, r.recover)) return;
  armUndo(c);
  r.recover = snd.max;
  r.inRecovery = true;
  r.sackRecovery = sack;
  c.timers.clear(Deadline.TailLossProbe);
  r.tlpOutstanding = false;
  c.count('fastRetransmits');
  c.cc.onCongestionEvent(seqSub(snd.max, snd.una), c.now());
  c.rtt.stopTiming();
  r.highRxt = snd.una;
  if (sack) {
    startPrr(c);
    enterSackRecovery(c);
    if (c.ctx.probe !== null) c.reportCongestion('loss: SACK recovery (RACK, RFC 8985 6; RFC 6675 5)');
    // The first lost segment goes whatever the window (RFC 6937: at least one on entry); the
    // rest follow from this ACK's step (continueRecovery), sized by PRR.
    retransmitNextLost(c, 'fast-retransmit');
    return;
  }
  enterNewRenoRecovery(c);
  if (c.ctx.probe !== null) c.reportCongestion('loss: fast retransmit (RFC 5681 3.2)');
  retransmitFirst(c, 'fast-retransmit');
  output(c);
}

/**
 * Before the ACK moves cwnd: was the episode spurious? Eifel and D-SACK undo (undo.ts),
 * F-RTO after a timeout (frto.ts). As Linux's tcp_fastretrans_alert, this runs before the
 * state's exit conditions, so that the ACK which ends a recovery may still undo it.
 */
export function checkSpurious(c: Tcb, tsEcr: number, advanced: boolean, dsack: boolean, sackedData: boolean): void {
  const r = c.recovery;
  if (r.undoArmed && (dsack || (advanced && r.inRecovery)) && tryUndo(c, tsEcr, advanced)) return;
  if (r.frto) frtoOnAck(c, advanced, sackedData, !advanced);
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
      r.frto = false;
      rackOnRecoveryEnd(c);
      if (r.afterTimeout) r.afterTimeout = false;
      else c.cc.cwnd = c.cc.cwndAfterRecovery(seqSub(c.snd.max, c.snd.una));
      if (c.ctx.probe !== null) c.reportCongestion('recovery ends: all lost data acknowledged (RFC 6582 3.2 step 6)');
    } else if (r.afterTimeout) {
      // RFC 5681 3.1: after the loss window, slow start while the holes are repaired.
      if (!c.cc.control) c.cc.onAck(bytesAcked, c.now(), c.rtt.srtt);
      if (c.ctx.probe !== null) c.reportCongestion('slow start after a timeout (RFC 5681 3.1)');
    } else if (!r.sackRecovery) {
      newRenoPartialAck(c, bytesAcked);
    }
  } else if (!c.cc.control) {
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
  if (!r.afterTimeout && !c.cc.control) {
    prrOnAck(c, r.delivered);
    if (c.ctx.probe !== null) c.reportCongestion('proportional rate reduction (RFC 6937)');
  }
  sackRecoveryStep(c);
}

/**
 * A retransmission timeout with SACK (RFC 6675 5.1, Linux's tcp_enter_loss): the SACKed data
 * is kept, as Linux keeps its SACK marks unless the receiver reneged (see onReneging), and
 * every byte not SACKed counts as lost (tcp_timeout_mark_lost). The holes are then
 * retransmitted by SACK recovery from SND.UNA, without resending what the peer holds, while
 * cwnd grows from the loss window by slow start, and F-RTO watches whether it was spurious.
 */
export function enterLossAfterTimeout(c: Tcb): void {
  const r = c.recovery;
  const snd = c.snd;
  // Linux: F-RTO for a timeout outside recovery, or for a repeated one (icsk_retransmits).
  const frtoAllowed = !r.inRecovery || c.retries > 1;
  r.inRecovery = true;
  r.sackRecovery = true;
  r.afterTimeout = true;
  r.recover = snd.max;
  r.highRxt = snd.una;
  r.dupAcks = 0;
  r.tlpOutstanding = false;
  c.timers.clear(Deadline.TailLossProbe);
  c.timers.clear(Deadline.ReorderTimeout);
  c.sent.markAllLost();
  c.sent.retransmissionLost = false;
  startFrto(c, !frtoAllowed);
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
  c.sent.forgetSacks();
  // What RACK learnt from those SACKs goes too: as Linux, nothing is marked lost on this
  // ACK, and the timeout resends from SND.UNA.
  c.rack.forgetDelivery();
  c.timers.clear(Deadline.ReorderTimeout);
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
  r.frto = false;
  c.scoreboard.clear();
  c.sent.forgetSacks();
  c.sent.forgetLosses();
  r.highRxt = c.snd.una;
  c.timers.clear(Deadline.TailLossProbe);
  c.timers.clear(Deadline.ReorderTimeout);
  r.tlpOutstanding = false;
  r.dupAcks = 0;
  r.recover = c.snd.max;
}
