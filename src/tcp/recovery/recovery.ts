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
  c.ctx.counters.fastRetransmits++;
  c.cc.onCongestionEvent(seqSub(snd.max, snd.una), c.now());
  if (sack) enterSackRecovery(c);
  else enterNewRenoRecovery(c);
  if (c.ctx.probe !== null) c.reportCongestion(sack ? 'loss: SACK recovery (RFC 6675 5)' : 'loss: fast retransmit (RFC 5681 3.2)');
  c.rtt.stopTiming();
  r.highRxt = snd.una;
  retransmitFirst(c, 'fast-retransmit');
  if (sack) sackRecoveryStep(c);
  else output(c);
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
      // RFC 6582 3.2 step 6: a full ACK ends recovery.
      r.inRecovery = false;
      r.sackRecovery = false;
      c.cc.cwnd = c.cc.cwndAfterRecovery(seqSub(c.snd.max, c.snd.una));
      if (c.ctx.probe !== null) c.reportCongestion('recovery ends: all lost data acknowledged (RFC 6582 3.2 step 6)');
    } else if (!r.sackRecovery) {
      newRenoPartialAck(c, bytesAcked);
    }
  } else {
    c.cc.onAck(bytesAcked, c.now(), c.rtt.srtt);
    if (c.ctx.probe !== null) c.reportCongestion(c.cc.cwnd <= c.cc.ssthresh ? 'slow start (RFC 5681 3.1)' : 'congestion avoidance');
  }
}

/** During SACK recovery every ACK is a step (RFC 6675 5 (C)). */
export function continueRecovery(c: Tcb): void {
  if (c.recovery.inRecovery && c.recovery.sackRecovery) sackRecoveryStep(c);
}

/**
 * After a retransmission timeout recovery is over, and, as RFC 6675 5.1 says, SACK
 * information is not trusted (the receiver may have reneged): everything from SND.UNA goes
 * again.
 */
export function resetOnTimeout(c: Tcb): void {
  const r = c.recovery;
  r.inRecovery = false;
  r.sackRecovery = false;
  c.scoreboard.clear();
  r.highRxt = c.snd.una;
  c.timers.clear(Deadline.TailLossProbe);
  r.tlpOutstanding = false;
  r.dupAcks = 0;
  r.recover = c.snd.max;
}
