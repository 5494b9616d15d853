// The sender (RFC 9293 3.8.6.2.1, RFC 1122 4.2.3.4, RFC 5681): what the windows and the send
// rules let out now. In order: the usable window (the peer's window, and cwnd or, in SACK
// recovery, cwnd less the pipe), limited transmit, super-frame sizing with segmentation
// offload, Nagle, sender SWS avoidance; then our FIN; then the persist timer when data
// waits with nothing in flight; then any ACK owed.

import { flushAck, sendData } from './emit.ts';
import { pacingHolds } from './pacing.ts';
import { canSendData, finAllowed } from './state.ts';
import { seqSub } from './seq.ts';
import type { Tcb } from './tcb.ts';
import { Deadline } from './timers/deadlines.ts';

export function output(c: Tcb): void {
  if (!canSendData(c.state)) {
    flushAck(c);
    return;
  }
  const snd = c.snd;
  const now = c.now();
  // RFC 5681 4.1: after an idle period longer than the RTO, restart from the initial window.
  if (snd.una === snd.max && c.lastSendTime > 0 && now - c.lastSendTime > c.rtt.rto) {
    c.cc.onIdleRestart();
    if (c.ctx.probe !== null) c.reportCongestion('idle restart (RFC 5681 4.1)');
  }
  const finSeq = c.finSeq();
  const goal = sizeGoal(c);
  const recovery = c.recovery;
  for (;;) {
    const inFlight = seqSub(snd.nxt, snd.una);
    const offset = inFlight - (snd.una === snd.iss ? 1 : 0);
    const unsent = c.sendBuffer.length - offset;
    // The log of segments in flight is full (recovery/sent-log.ts): new data waits for ACKs
    // (data going again after a timeout has its records already).
    if (unsent > 0 && !(c.sent.full && snd.nxt === snd.max)) {
      // In SACK recovery the congestion window limits the pipe estimate (RFC 6675), not
      // everything between SND.UNA and SND.NXT.
      const flight = recovery.sackRecovery ? c.sent.inFlight : inFlight;
      // Limited transmit (RFC 3042): the first two duplicate ACKs each let one new segment
      // out beyond cwnd, so that a small window still gathers the ACKs fast retransmit needs.
      const cwnd = recovery.inRecovery ? c.cc.cwnd : c.cc.cwnd + Math.min(recovery.dupAcks, 2) * snd.mss;
      const usable = Math.min(snd.wnd - inFlight, cwnd - flight);
      let len = Math.min(unsent, goal, usable);
      if (len <= 0) break;
      // A super-frame (segmentation offload) carries whole MSS-sized segments only.
      if (len > snd.mss) len -= len % snd.mss;
      const idle = inFlight === 0;
      const last = len === unsent;
      // Super-frame sizing (as Linux's tcp_tso_should_defer and autocorking): a frame
      // short of the size goal waits while at least a goal's worth is in flight, since its
      // ACK comes soon and lets out a full frame with whatever was written meanwhile. A
      // segment shorter than the MSS is Nagle's business: with TCP_NODELAY it goes now.
      const defer = len < goal && inFlight >= goal && (len >= snd.mss || !c.noDelay);
      if (defer && !c.forceSend && !recovery.inRecovery && !(last && c.finQueued)) break;
      let go = len >= snd.mss;
      // Nagle (RFC 1122 4.2.3.4): a short segment waits while data is unacknowledged,
      // unless TCP_NODELAY; a FIN that can ride along lets it go (as Linux does).
      if (!go && last && (c.noDelay || idle || c.finQueued)) go = true;
      // Sender SWS avoidance (RFC 9293 3.8.6.2.1): a window-limited segment of at least
      // half the largest window the peer offered may go.
      if (!go && !last && len >= snd.maxWnd >> 1 && (c.noDelay || idle)) go = true;
      if (c.forceSend) go = true;
      if (!go) break;
      if (pacingHolds(c)) break;
      const fin = c.finQueued && last && finAllowed(c.state);
      sendData(c, snd.nxt, offset, len, fin);
      continue;
    }
    if (c.finQueued && finAllowed(c.state) && snd.nxt === finSeq) sendData(c, snd.nxt, offset, 0, true);
    break;
  }
  checkAppLimited(c);
  maybeStartPersist(c);
  flushAck(c);
}

/** Bytes of the send buffer beyond SND.NXT (our SYN, while unacknowledged, is no data). */
function unsentBytes(c: Tcb): number {
  const snd = c.snd;
  return c.sendBuffer.length - (seqSub(snd.nxt, snd.una) - (snd.una === snd.iss ? 1 : 0));
}

/**
 * Linux's tcp_rate_check_app_limited: less than a segment left to send, room in the window
 * and no lost segment waiting to go again: what is sent until the present flight is
 * delivered is application-limited, and its delivery rate may understate the path's.
 */
function checkAppLimited(c: Tcb): void {
  const snd = c.snd;
  const log = c.sent;
  if (log.rate.appLimited !== 0) return;
  if (unsentBytes(c) < snd.mss && log.inFlight < c.cc.cwnd && log.lostBytes <= log.retransInFlightBytes) log.rate.markAppLimited(Math.ceil(log.inFlight / snd.mss));
}

/**
 * Payload goal, and most, of one frame: with segmentation offload, whole MSS-sized segments
 * up to the link's limit but at most a third of the window (Linux's tcp_tso_win_divisor), so
 * that a small window still has several frames in flight; without offload, one MSS. A window
 * sent as one super-frame is one frame per round trip: at 3% loss each way on a TAP, the loss
 * of its one ACK left nothing in flight to bring another, and each cost a probe timeout and
 * then the peer's delayed ACK of the probe (40 ms), a third of the time of a 32 MiB pull.
 */
function sizeGoal(c: Tcb): number {
  const mss = c.snd.mss;
  const max = c.ctx.maxSegmentPayload(mss);
  if (max <= mss) return max;
  // A pacing controller sizes frames by its rate (Linux's tso_segs hook, bbr_tso_segs_goal).
  if (c.cc.frameGoal) return Math.max(mss, Math.min(max - (max % mss), c.cc.frameGoal(max)));
  const third = Math.floor(Math.min(c.snd.wnd, c.cc.cwnd) / 3);
  return Math.max(mss, Math.min(max, third - (third % mss)));
}

/**
 * Data waits and nothing is in flight to bring an ACK: with a zero window, probe it later
 * (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17); with a window too small for the SWS rules, send
 * what fits when this override timer expires (RFC 9293 3.8.6.2.1).
 */
function maybeStartPersist(c: Tcb): void {
  const snd = c.snd;
  if (unsentBytes(c) > 0 && snd.una === snd.max && !c.timers.isSet(Deadline.Persist)) {
    c.timers.clear(Deadline.Retransmit);
    c.setDeadline(Deadline.Persist, c.now() + persistTimeout(c));
  }
}

/** The persist interval: the RTO backed off per unanswered probe, within [min, max]. */
export function persistTimeout(c: Tcb): number {
  const config = c.config;
  return Math.min(config.rtoMaxMs, Math.max(config.rtoMinMs, c.rtt.rto * 2 ** c.persistBackoff));
}

