// What each of a connection's deadlines does when it comes (timers/deadlines.ts names them):
// retransmission timeout (RFC 6298 5.4-5.7, RFC 5681 3.1), tail loss probe (RFC 8985 7.3),
// persist (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17), delayed ACK (RFC 1122 4.2.3.2), keepalive
// (RFC 1122 4.2.3.6) and the end of TIME-WAIT (RFC 9293 3.10.8).

import { orphanRetries, outOfResources } from '../closing.ts';
import { emit, sendAck, sendSyn } from '../emit.ts';
import { output, persistTimeout } from '../output.ts';
import { enterLossAfterTimeout, maybeEnterRecovery, resetOnTimeout } from '../recovery/recovery.ts';
import { sackRecoveryStep } from '../recovery/sack.ts';
import { armUndo } from '../recovery/undo.ts';
import { sendTailLossProbe } from '../recovery/tlp.ts';
import { rackOnAck } from '../recovery/rack.ts';
import { seqAdd, seqLt, seqSub } from '../seq.ts';
import { canSendData, isSynchronized, TCP_EVENTS, type TcpState } from '../state.ts';
import type { Tcb } from '../tcb.ts';
import { ACK } from '../tcp-segment.ts';
import { systemError } from '../../util/errors.ts';
import { Deadline } from './deadlines.ts';

/** The earliest deadline came: run every one that is due, in Deadline order. */
export function onTimer(c: Tcb): void {
  const now = c.now();
  const t = c.timers;
  if (t.isDue(Deadline.Close, now)) {
    t.clear(Deadline.Close);
    c.destroy(null, c.state === 'TIME-WAIT' ? TCP_EVENTS.timeWaitTimeout : TCP_EVENTS.finWait2Timeout);
    return;
  }
  // A probe due with the RTO goes first and restarts it (RFC 8985 7.2: the PTO is clamped to
  // the RTO; Linux has one timer for both, the probe in the RTO's place).
  if (t.isDue(Deadline.TailLossProbe, now)) {
    t.clear(Deadline.TailLossProbe);
    sendTailLossProbe(c);
  }
  if (t.isDue(Deadline.Retransmit, now)) {
    t.clear(Deadline.Retransmit);
    onRetransmitTimeout(c);
    if ((c.state as TcpState) === 'CLOSED') return;
  }
  if (t.isDue(Deadline.ReorderTimeout, now)) {
    t.clear(Deadline.ReorderTimeout);
    onReorderTimeout(c);
  }
  if (t.isDue(Deadline.Persist, now)) {
    t.clear(Deadline.Persist);
    onPersistTimeout(c);
    if ((c.state as TcpState) === 'CLOSED') return;
  }
  if (t.isDue(Deadline.DelayedAck, now)) {
    t.clear(Deadline.DelayedAck);
    if (isSynchronized(c.state)) sendAck(c, 'delayed-ack');
  }
  if (t.isDue(Deadline.KeepAlive, now)) {
    t.clear(Deadline.KeepAlive);
    onKeepAliveTimeout(c);
    if ((c.state as TcpState) === 'CLOSED') return;
  }
  if (t.isDue(Deadline.Pacing, now)) {
    t.clear(Deadline.Pacing);
    // What pacing held back goes now: the recovery's retransmissions first.
    if (c.recovery.sackRecovery) sackRecoveryStep(c);
    else output(c);
  }
  c.armTimer();
}

/** RFC 6298 5.4-5.6: retransmit the earliest segment, back off, and give up after the limit. */
function onRetransmitTimeout(c: Tcb): void {
  const snd = c.snd;
  const state = c.state;
  const opening = state === 'SYN-SENT' || state === 'SYN-RECEIVED';
  if (snd.una === snd.max && !opening) return;
  c.retries++;
  c.count('timeouts');
  const config = c.config;
  const now = c.now();
  // The data now timed out went first one RTO ago (Linux retrans_stamp).
  if (c.retries === 1) c.retransmitStamp = now - c.rtt.rto;
  let limit = state === 'SYN-SENT' ? config.synRetries : state === 'SYN-RECEIVED' ? config.synAckRetries : config.maxRetries;
  if (c.orphaned && !opening) {
    // Linux tcp_write_timeout: an orphan gets tcp_orphan_retries, and may be reset when
    // orphans or buffers are too many (tcp_out_of_resources).
    const alive = c.rtt.rto < config.rtoMaxMs;
    limit = orphanRetries(c, alive);
    if (outOfResources(c, alive || c.retries <= limit)) return;
  }
  const userTimedOut = c.userTimeoutMs > 0 && !opening && now - c.retransmitStamp >= c.userTimeoutMs;
  if (c.retries > limit || userTimedOut) {
    const err =
      state === 'SYN-SENT'
        ? systemError('ETIMEDOUT', 'connect', c.ctx.formatAddress(c.remoteIp), c.remotePort)
        : systemError('ETIMEDOUT', 'read');
    c.destroy(state === 'SYN-RECEIVED' && c.passive ? null : err, TCP_EVENTS.retransmitLimit);
    return;
  }
  c.rtt.backoff();
  c.rtt.stopTiming(); // Karn: nothing sent before now may be timed
  const probe = c.ctx.probe;
  if (probe !== null) probe.tcpRtt(c, 'backoff');
  if (opening) {
    snd.nxt = snd.iss;
    c.rtt.onRetransmit(c.ctx.timestampNow());
    sendSyn(c, 'syn-retransmit');
    return;
  }
  // RFC 5681 3.1 eq. 4 and RFC 6582 4: collapse cwnd to the loss window and remember the
  // highest sent. With SACK information only the holes go again (RFC 6675 5.1); without it,
  // everything from SND.UNA (go-back-N).
  // With SACK, whatever data is in flight (SentSegments) is marked lost and only that goes
  // again, F-RTO watching (recovery/frto.ts); a lone FIN goes by go-back-N.
  const sack = c.sackPermitted && c.sent.count > 0;
  if (sack) armUndo(c);
  c.cc.onTimeout(seqSub(snd.max, snd.una), c.now());
  c.timers.clear(Deadline.Retransmit);
  if (sack) {
    enterLossAfterTimeout(c);
    if (probe !== null) c.reportCongestion('retransmission timeout, SACKed data kept (RFC 6675 5.1)');
    sackRecoveryStep(c);
  } else {
    resetOnTimeout(c);
    if (probe !== null) c.reportCongestion('retransmission timeout (RFC 5681 3.1 eq. 4)');
    snd.nxt = snd.una;
    output(c);
  }
  if (!c.timers.isSet(Deadline.Retransmit) && !c.timers.isSet(Deadline.Persist) && snd.una !== snd.max) {
    // Nothing could be sent (the window shrank to zero): keep the timer going.
    c.setDeadline(Deadline.Retransmit, c.now() + c.rtt.rto);
  }
  // The next timeout comes no later than the user timeout (Linux tcp_clamp_rto_to_user_timeout).
  if (c.userTimeoutMs > 0) clampToUserTimeout(c, Deadline.Retransmit, c.retransmitStamp);
}

/** Deadline d comes no later than the user timeout counted from `since`. */
function clampToUserTimeout(c: Tcb, d: Deadline, since: number): void {
  const t = c.timers;
  const limit = Math.max(since + c.userTimeoutMs, c.now() + 1);
  if (t.isSet(d) && t.get(d) > limit) t.set(d, limit);
}

/**
 * RFC 8985 6.3: segments that waited out the reordering window are lost now (Linux's
 * tcp_rack_reo_timeout): recovery starts, or goes on with them.
 */
function onReorderTimeout(c: Tcb): void {
  if (!canSendData(c.state)) return;
  const lostBefore = c.sent.lostBytes;
  rackOnAck(c);
  if (c.sent.lostBytes === lostBefore) return;
  if (!c.recovery.inRecovery) maybeEnterRecovery(c);
  else sackRecoveryStep(c);
}

/**
 * RFC 1122 4.2.2.17 / RFC 9293 3.8.6.1: probe a zero window with one byte of new data,
 * with exponential backoff. The connection stays open as long as the peer answers the
 * probes; as Linux's tcp_probe_timer, it fails with ETIMEDOUT once tcp_retries2
 * (maxRetries) probes in a row went unanswered (an orphan: tcp_orphan_retries), or the user
 * timeout passed since the first of them.
 */
function onPersistTimeout(c: Tcb): void {
  if (!canSendData(c.state)) return;
  const snd = c.snd;
  if (snd.wnd > 0) {
    // The SWS override (RFC 9293 3.8.6.2.1): send what the small window allows.
    c.persistBackoff = 0;
    c.forceSend = true;
    output(c);
    c.forceSend = false;
    return;
  }
  const waiting = c.sendBuffer.length - seqSub(snd.nxt, snd.una);
  if (waiting <= 0 && snd.una === snd.max) return;
  if (probesExhausted(c)) {
    if (c.state !== 'CLOSED') c.destroy(systemError('ETIMEDOUT', 'read'), TCP_EVENTS.probeLimit);
    return;
  }
  c.probesOut++;
  c.count('persistProbes');
  const len = Math.min(1, c.sendBuffer.length);
  if (len > 0) {
    c.probing = true;
    emit(c, ACK, snd.una, 0, 1, 'zero-window-probe');
    if (seqLt(snd.nxt, seqAdd(snd.una, 1))) snd.nxt = seqAdd(snd.una, 1);
    if (seqLt(snd.max, snd.nxt)) snd.max = snd.nxt;
  } else {
    sendAck(c, 'zero-window-probe');
  }
  if (c.persistBackoff < 16) c.persistBackoff++;
  c.timers.set(Deadline.Persist, c.now() + persistTimeout(c));
  // Linux tcp_clamp_probe0_to_user_timeout.
  if (c.userTimeoutMs > 0) clampToUserTimeout(c, Deadline.Persist, c.probesStamp);
}

/** Linux tcp_probe_timer: have the unanswered probes run out (or the orphan been dropped)? */
function probesExhausted(c: Tcb): boolean {
  const now = c.now();
  if (c.probesOut === 0) c.probesStamp = now;
  else if (c.userTimeoutMs > 0 && now - c.probesStamp >= c.userTimeoutMs) return true;
  let max = c.config.maxRetries;
  if (c.orphaned) {
    const config = c.config;
    const alive = c.rtt.rto * 2 ** c.persistBackoff < config.rtoMaxMs;
    max = orphanRetries(c, alive);
    if (!alive && c.persistBackoff >= max) return true;
    if (outOfResources(c, true)) return true;
  }
  return c.probesOut >= max;
}

/** RFC 1122 4.2.3.6: an idle connection is probed with SEG.SEQ = SND.NXT - 1 and no data. */
function onKeepAliveTimeout(c: Tcb): void {
  if (!c.keepAlive || !isSynchronized(c.state) || c.state === 'TIME-WAIT') return;
  const now = c.now();
  const t = c.timers;
  const idle = now - c.lastReceiveTime;
  if (idle < c.keepAliveIdleMs && c.keepAliveProbesSent === 0) {
    t.set(Deadline.KeepAlive, c.lastReceiveTime + c.keepAliveIdleMs);
    return;
  }
  const interval = c.config.keepAliveIntervalMs;
  if (c.keepAliveProbesSent > 0 && c.lastReceiveTime > now - interval * c.keepAliveProbesSent - 1) {
    // The peer answered since the first probe: start over.
    c.keepAliveProbesSent = 0;
    t.set(Deadline.KeepAlive, c.lastReceiveTime + c.keepAliveIdleMs);
    return;
  }
  if (c.keepAliveProbesSent >= c.config.keepAliveProbes) {
    c.destroy(systemError('ETIMEDOUT', 'read'), TCP_EVENTS.keepAliveLimit);
    return;
  }
  c.keepAliveProbesSent++;
  emit(c, ACK, seqAdd(c.snd.max, -1), 0, 0, 'keepalive');
  t.set(Deadline.KeepAlive, now + interval);
}
