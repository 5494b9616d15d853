// RACK (RFC 8985 6), the loss detection with SACK, as Linux's tcp_recovery.c: a segment is
// lost when a segment sent at least a reordering window after it has been delivered. Time
// replaces DupThresh's count of SACKed segments, so that a lost retransmission, a lost tail
// (with the probe of tlp.ts) and a short flight are found as fast as a long one. Each ACK
// tells the state what it delivered (SentSegments calls `delivered`), then rackDetectLoss
// marks what is lost and says when to look again (the reordering timer).

import { seqGe } from '../seq.ts';
import type { Tcb } from '../tcb.ts';
import { Deadline } from '../timers/deadlines.ts';
import { DUP_THRESH } from './scoreboard.ts';
import { sentAfter } from './rack-state.ts';
import { EVER_RETRANSMITTED, LOST, RETRANS_IN_FLIGHT, SACKED } from './sent-log.ts';

/** RFC 8985 6.2 step 4: a D-SACK widens the window for this many recoveries. */
const REO_WND_PERSIST = 16;
/** Linux caps the multiplier (tcp_rack_update_reo_wnd: reo_wnd_steps up to 0xff). */
const MAX_REO_WND_MULT = 255;

/** RFC 8985 6.2 step 4 (RACK_update_reo_wnd), for an ACK with a D-SACK. */
export function rackOnDsack(c: Tcb): void {
  const rack = c.rack;
  if (rack.dsackRoundSet && seqGe(c.snd.una, rack.dsackRound)) rack.dsackRoundSet = false;
  if (rack.dsackRoundSet) return;
  rack.dsackRoundSet = true;
  rack.dsackRound = c.snd.max;
  if (rack.reoWndMult < MAX_REO_WND_MULT) rack.reoWndMult++;
  rack.reoWndPersist = REO_WND_PERSIST;
}

/** RFC 8985 6.2 step 4: a recovery ended; the widened window lasts REO_WND_PERSIST of them. */
export function rackOnRecoveryEnd(c: Tcb): void {
  const rack = c.rack;
  if (rack.reoWndPersist > 0 && --rack.reoWndPersist === 0) rack.reoWndMult = 1;
}

/**
 * RFC 8985 6.2 step 4, RACK_reo_wnd: none until reordering has been seen, once in recovery or
 * DupThresh segments are SACKed (so that, without reordering, RACK is as fast as DupThresh);
 * otherwise a quarter of the minimum RTT per D-SACK round, at most SRTT.
 */
export function rackReorderWindow(c: Tcb): number {
  const rack = c.rack;
  if (!rack.reorderingSeen) {
    if (c.recovery.inRecovery) return 0;
    if (c.sent.sackedBytes >= DUP_THRESH * c.snd.mss) return 0;
  }
  return Math.min((rack.reoWndMult * rack.minRtt) / 4, c.rtt.srtt);
}

/**
 * RFC 8985 6.2 step 5, RACK_detect_loss: marks lost every segment sent a reordering window
 * before the most recently sent delivered one; returns how long until the next segment would
 * be (0: none waits). The records are in sequence order, not send order: originals were sent
 * in sequence order, so the walk stops at the first original sent after RACK's segment, and
 * passes over retransmissions, which were sent later than their place says.
 */
export function rackDetectLoss(c: Tcb): number {
  const rack = c.rack;
  if (!rack.hasDelivery) return 0;
  const log = c.sent;
  const reoWnd = rackReorderWindow(c);
  const now = c.now();
  let wait = 0;
  for (let i = 0; i < log.count; i++) {
    const f = log.flagsOf(i);
    // Delivered, or lost and not yet sent again: nothing to decide.
    if (f & SACKED || (f & (LOST | RETRANS_IN_FLIGHT)) === LOST) continue;
    const sentAt = log.sentAtOf(i);
    if (f & EVER_RETRANSMITTED) {
      // A retransmission sent at the same instant as RACK's segment went after it (the
      // sequence tie-break is for originals, which go in sequence order).
      if (!(rack.xmitTs > sentAt)) continue;
    } else if (!sentAfter(rack.xmitTs, rack.endSeq, sentAt, log.endOf(i))) break;
    const remaining = sentAt + rack.rtt + reoWnd - now;
    if (remaining <= 0) {
      if (f & RETRANS_IN_FLIGHT) c.count('lostRetransmissions');
      log.markLost(i);
    } else if (remaining > wait) wait = remaining;
  }
  return wait;
}

/**
 * RFC 8985 6.2 and 6.3 after an ACK (or when the reordering timer fires): count reordering,
 * detect losses, and arm the timer for segments still inside the window. Linux runs this on
 * ACKs that SACK, duplicate, or come during recovery (tcp_ack's FLAG_*_DUBIOUS).
 */
export function rackOnAck(c: Tcb): void {
  const rack = c.rack;
  if (rack.reorderedNow) {
    rack.reorderedNow = false;
    if (!rack.reorderingSeen) rack.reorderingSeen = true;
    c.count('reorderingSeen');
  }
  const log = c.sent;
  if (log.count === 0 || (log.sackedBytes === 0 && log.lostBytes === 0 && log.retransInFlightBytes === 0 && !c.recovery.inRecovery)) {
    c.timers.clear(Deadline.ReorderTimeout);
    return;
  }
  const wait = rackDetectLoss(c);
  if (wait > 0) c.setDeadline(Deadline.ReorderTimeout, c.now() + wait);
  else c.timers.clear(Deadline.ReorderTimeout);
}
