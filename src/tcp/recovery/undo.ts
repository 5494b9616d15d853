// Undoing a congestion response that was not needed, as Linux's tcp_try_undo_* do: a loss
// that was reordering, or a timeout that was a delay, shows itself when the ACK for an
// original transmission comes after we retransmitted it. Two signs prove it: the ACK echoes
// a timestamp older than our first retransmission (Eifel detection, RFC 3522, Linux's
// tcp_packet_delayed), or every retransmission is reported back as a duplicate by a D-SACK
// (RFC 3708, Linux's undo_retrans). Then cwnd and ssthresh go back to what they were before
// (Linux's tcp_undo_cwnd_reduction), the loss marks are forgotten, and the episode ends.
// F-RTO (frto.ts) is the third sign, for timeouts.

import { seqGt, seqLt, seqSub } from '../seq.ts';
import type { Tcb } from '../tcb.ts';
import { Deadline } from '../timers/deadlines.ts';
import type { TcpEventName } from '../counters.ts';
import { rackOnRecoveryEnd } from './rack.ts';

/**
 * A recovery or a timeout begins (call before the controller's reduction): remember what
 * to restore. A timeout inside an episode keeps the episode's values (Linux keeps
 * prior_cwnd from the first reduction and retrans_stamp from the first retransmission).
 */
export function armUndo(c: Tcb): void {
  const r = c.recovery;
  if (r.undoArmed && r.inRecovery) return;
  r.undoArmed = true;
  r.undoMarker = c.snd.una;
  r.priorCwnd = c.cc.cwnd;
  // Linux tcp_current_ssthresh: outside recovery, at least three quarters of cwnd.
  r.priorSsthresh = Math.max(c.cc.ssthresh, (c.cc.cwnd >> 1) + (c.cc.cwnd >> 2));
  r.undoRetransmissions = 0;
  r.retransmitStamp = 0;
}

/** A retransmission of `len` bytes went out: one more that a D-SACK must show spurious. */
export function noteRetransmission(c: Tcb, len: number): void {
  const r = c.recovery;
  if (!r.undoArmed) return;
  r.undoRetransmissions += Math.max(1, Math.ceil(len / c.snd.mss));
  if (r.retransmitStamp === 0) r.retransmitStamp = c.ctx.timestampNow() || 1;
}

/** A D-SACK reported [start, end) received twice (Linux tcp_check_dsack). */
export function undoOnDsack(c: Tcb, start: number, end: number): void {
  const r = c.recovery;
  if (!r.undoArmed || r.undoRetransmissions === 0 || !seqGt(end, r.undoMarker)) return;
  r.undoRetransmissions = Math.max(0, r.undoRetransmissions - Math.max(1, Math.ceil(seqSub(end, start) / c.snd.mss)));
}

/**
 * Called for each ACK while an undo is armed: undoes the response when Eifel (in recovery,
 * an ACK that advanced SND.UNA echoing a TSval from before the first retransmission) or the
 * D-SACKs (every retransmission reported duplicate, also after the recovery ended, as
 * Linux's tcp_try_undo_dsack) prove the retransmissions spurious.
 */
export function tryUndo(c: Tcb, tsEcr: number, advanced: boolean): boolean {
  const r = c.recovery;
  if (!r.undoArmed || r.retransmitStamp === 0) return false;
  const delayed = r.inRecovery && advanced && tsEcr !== 0 && seqLt(tsEcr, r.retransmitStamp);
  if (!delayed && r.undoRetransmissions > 0) return false;
  const counter: TcpEventName = r.afterTimeout ? 'lossUndos' : delayed ? 'recoveryUndos' : 'dsackUndos';
  undoCongestionResponse(c, counter, delayed ? 'undo: an original was acknowledged (Eifel, RFC 3522)' : 'undo: every retransmission was a duplicate (D-SACK, RFC 3708)');
  return true;
}

/**
 * Linux's tcp_undo_cwnd_reduction with its loss marks cleared: cwnd and ssthresh back to at
 * least what they were, the recovery ended, and the segments deemed lost not lost any more
 * (a retransmission still in flight stays counted in the pipe).
 */
export function undoCongestionResponse(c: Tcb, counter: TcpEventName, cause: string): void {
  const r = c.recovery;
  const cc = c.cc;
  cc.cwnd = cc.undoCwnd ? cc.undoCwnd(r.priorCwnd) : Math.max(cc.cwnd, r.priorCwnd);
  if (r.priorSsthresh > cc.ssthresh) cc.ssthresh = r.priorSsthresh;
  c.sent.forgetLosses();
  c.timers.clear(Deadline.ReorderTimeout);
  r.undoArmed = false;
  if (r.inRecovery) rackOnRecoveryEnd(c);
  r.inRecovery = false;
  r.sackRecovery = false;
  r.afterTimeout = false;
  r.frto = false;
  r.frtoNewData = false;
  r.dupAcks = 0;
  // The timeouts were not real: the retry count starts over (Linux icsk_retransmits = 0).
  c.retries = 0;
  c.count(counter);
  if (c.ctx.probe !== null) c.reportCongestion(cause);
}
