// Segment arrival (RFC 9293 3.10.7), read next to the RFC: SYN-SENT (3.10.7.3), then every
// later state (3.10.7.4) in the RFC's step order ("first check sequence number", "second
// check the RST bit", ...), with RFC 5961's defences against blind attacks and RFC 7323's
// PAWS. The ACK field's effects on loss recovery are in recovery/, the text and FIN in
// receiver.ts.

import { enterTimeWait, restartTimeWait } from './closing.ts';
import { createCongestionControl } from './congestion/choose.ts';
import { runRateControl } from './congestion/rate-sample.ts';
import { challengeAck, flushAck, sendSyn } from './emit.ts';
import { output } from './output.ts';
import { oowRateLimited } from './rate-limit.ts';
import { armTailLossProbe } from './recovery/probe-timeout.ts';
import { checkSpurious, continueRecovery, maybeEnterRecovery, onAckOfNewData, onDuplicateAck, onReneging } from './recovery/recovery.ts';
import { rackOnAck, rackOnDsack } from './recovery/rack.ts';
import { undoOnDsack } from './recovery/undo.ts';
import { checkTailLossProbe } from './recovery/tlp.ts';
import { acceptData, noteDuplicate } from './receiver.ts';
import { initReceiveEstimates } from './receive-measure.ts';
import { seqAdd, seqGe, seqGt, seqInWindow, seqLe, seqLt, seqMax, seqSub } from './seq.ts';
import { canSendData, isSynchronized, TCP_EVENTS, type TcpState } from './state.ts';
import { DEFAULT_MSS, type Tcb } from './tcb.ts';
import { ACK, FIN, RST, SYN, type TcpSegment } from './tcp-segment.ts';
import { Deadline } from './timers/deadlines.ts';
import { offerableSpace } from './window.ts';
import { systemError } from '../util/errors.ts';

/** A segment for this connection arrived. */
export function segmentArrives(c: Tcb, seg: TcpSegment): void {
  if (c.state === 'SYN-SENT') receiveInSynSent(c, seg);
  else if (c.state !== 'CLOSED') receiveInOtherStates(c, seg);
  // An ACK may have opened the windows: send what is waiting, or at least the ACK we owe.
  // Within a batch of received frames the data waits for the batch's end (one large frame
  // for all its ACKs); an ACK that must go at once (RFC 5681 4.2) still goes now.
  if (canSendData(c.state) && !c.ctx.deferToBatchEnd(c)) output(c);
  else if (c.state !== 'CLOSED') flushAck(c);
}

/** Options of the peer's SYN decide what the connection uses (RFC 9293 3.7.1, RFC 7323, RFC 2018). */
export function takeSynOptions(c: Tcb, seg: TcpSegment): void {
  const peerMss = seg.mss >= 0 ? seg.mss : DEFAULT_MSS;
  // Window scaling only when both sides offered it (RFC 7323 2.2).
  c.wscaleAgreed = seg.windowScale >= 0 && c.offeredWscale >= 0;
  if (c.wscaleAgreed) {
    c.snd.wscale = seg.windowScale;
    c.rcv.wscale = c.offeredWscale;
  } else {
    c.snd.wscale = 0;
    c.rcv.wscale = 0;
  }
  c.tsEnabled = seg.hasTimestamp && c.config.timestamps;
  if (c.tsEnabled) c.tsRecent = seg.tsVal;
  c.sackPermitted = seg.sackPermitted && c.config.sack;
  // RFC 9293 3.7.1: the effective send MSS is the smaller of the peer's MSS and ours, less
  // the options every segment carries (RFC 6691).
  const mss = Math.max(Math.min(peerMss, c.ctx.mtu - 40) - (c.tsEnabled ? 12 : 0), 64);
  c.snd.mss = mss;
  c.cc = createCongestionControl(c.config.congestion, mss, c.snd.iss);
}

/** RFC 9293 3.10.7.3: SYN-SENT. */
function receiveInSynSent(c: Tcb, seg: TcpSegment): void {
  const flags = seg.flags;
  const snd = c.snd;
  const counters = c.ctx.counters;
  // First, check the ACK bit: it must acknowledge our SYN.
  if (flags & ACK) {
    if (seqLe(seg.ack, snd.iss) || seqGt(seg.ack, snd.max)) {
      if (!(flags & RST)) c.ctx.sendResetFor(seg, c.remoteIp);
      counters.drop('tcp-syn-sent-bad-ack');
      return;
    }
  }
  // Second, the RST bit: acceptable only with an acceptable ACK (RFC 5961 3.2 last paragraph).
  if (flags & RST) {
    if (flags & ACK) c.destroy(systemError('ECONNREFUSED', 'connect', c.ctx.formatAddress(c.remoteIp), c.remotePort), TCP_EVENTS.refused);
    else counters.drop('tcp-syn-sent-rst-without-ack');
    return;
  }
  if (!(flags & SYN)) {
    counters.drop('tcp-syn-sent-no-syn');
    return;
  }
  // Fourth, the SYN bit.
  c.rcv.irs = seg.seq;
  c.rcv.nxt = seqAdd(seg.seq, 1);
  takeSynOptions(c, seg);
  c.lastReceiveTime = c.now();
  // The window in a SYN is never scaled (RFC 7323 2.2).
  snd.wnd = seg.window;
  snd.maxWnd = snd.wnd;
  snd.wl1 = seg.seq;
  if (flags & ACK) {
    snd.wl2 = seg.ack;
    c.lastAckReceiveTime = c.now();
    ackAdvances(c, seg.ack, seg, false, false);
    establish(c);
    c.ack.ackNow();
    // Data carried by the SYN-ACK is processed like any data (RFC 9293 3.10.7.3, "sixth").
    if (seg.payloadLength > 0 || flags & FIN) acceptData(c, seg, seqAdd(seg.seq, 1), seg.payloadOffset, seg.payloadLength, (flags & FIN) !== 0);
  } else {
    // Simultaneous open (RFC 9293 3.5 figure 8): answer SYN-ACK with our same ISS.
    c.transition(TCP_EVENTS.simultaneousOpen);
    snd.nxt = snd.iss;
    sendSyn(c, 'syn');
  }
}

/** RFC 9293 3.10.7.4: every state after SYN-SENT. */
function receiveInOtherStates(c: Tcb, seg: TcpSegment): void {
  let flags = seg.flags;
  let seq = seg.seq;
  let dataOff = seg.payloadOffset;
  let dataLen = seg.payloadLength;
  const rcv = c.rcv;
  const counters = c.ctx.counters;
  c.lastReceiveTime = c.now();

  // A retransmitted SYN in SYN-RECEIVED means our SYN-ACK was lost: send it again.
  if (c.state === 'SYN-RECEIVED' && flags & SYN && !(flags & (ACK | RST)) && seq === rcv.irs) {
    c.snd.nxt = c.snd.iss;
    sendSyn(c, 'syn-retransmit');
    return;
  }

  // RFC 7323 5.3 PAWS: a segment with a timestamp older than TS.Recent is an old duplicate.
  if (c.tsEnabled && seg.hasTimestamp && !(flags & RST) && ((seg.tsVal - c.tsRecent) | 0) < 0) {
    counters.drop('tcp-paws');
    if (flags & SYN) challengeAck(c);
    else dupAckInvalid(c, seg);
    return;
  }

  // First, check the sequence number (RFC 9293 3.10.7.4, the four cases of acceptability).
  const segLen = dataLen + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0);
  const rcvWnd = seqSub(rcv.adv, rcv.nxt);
  let acceptable: boolean;
  if (segLen === 0) acceptable = rcvWnd === 0 ? seq === rcv.nxt : seqInWindow(seq, rcv.nxt, rcvWnd);
  else if (rcvWnd === 0) acceptable = seq === rcv.nxt; // ACKs and RSTs still count; data is trimmed below
  else acceptable = seqInWindow(seq, rcv.nxt, rcvWnd) || seqInWindow(seqAdd(seq, segLen - 1), rcv.nxt, rcvWnd);
  if (!acceptable) {
    // RFC 9293: send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>; a SYN gets a challenge ACK (RFC 5961 4.2).
    if (flags & SYN && !(flags & RST)) challengeAck(c);
    else if (!(flags & RST)) dupAckInvalid(c, seg);
    // An old duplicate's text is reported as a D-SACK (Linux tcp_send_dupack, tcp_dsack_set).
    if (dataLen > 0 && seqLt(seq, rcv.nxt)) noteDuplicate(c, seq, seqLt(seqAdd(seq, dataLen), rcv.nxt) ? seqAdd(seq, dataLen) : rcv.nxt);
    if (c.state === 'TIME-WAIT' && flags & FIN) restartTimeWait(c);
    counters.drop('tcp-not-in-window');
    return;
  }

  // Second, the RST bit (RFC 5961 3.2: only an exact match resets; else a challenge ACK).
  if (flags & RST) {
    if (seq !== rcv.nxt) {
      challengeAck(c);
      counters.drop('tcp-rst-challenged');
      return;
    }
    receiveReset(c);
    return;
  }

  // RFC 5961 4.2 (RFC 9293 3.10.7.4 "fourth"): a SYN in a synchronized state is challenged and
  // dropped whatever its sequence number; trimming an old SYN off below would take its data
  // (Linux tcp_validate_incoming). Only SYN-RECEIVED goes on: a simultaneous open's SYN-ACK.
  if (flags & SYN && c.state !== 'SYN-RECEIVED') {
    challengeAck(c);
    counters.drop('tcp-syn-challenged');
    return;
  }

  // Trim the segment to the window: bytes before RCV.NXT are duplicates, bytes past the
  // right edge do not fit (RFC 9293 3.10.7.4 "first").
  if (seqLt(seq, rcv.nxt)) {
    let skip = seqSub(rcv.nxt, seq);
    if (flags & SYN) {
      flags &= ~SYN;
      skip--;
      seq = seqAdd(seq, 1);
    }
    if (skip > dataLen) {
      // The FIN itself was a duplicate.
      flags &= ~FIN;
      skip = dataLen;
    }
    if (skip > 0) {
      noteDuplicate(c, seq, seqAdd(seq, skip));
      // Linux enters quick-ACK mode on a retransmission (tcp_data_queue).
      if (c.config.maxQuickAcks > 0) c.ack.enterQuickAck(c.config.maxQuickAcks, c.config.receiveBufferSize, c.rcv.mss);
    }
    dataOff += skip;
    dataLen -= skip;
    seq = seqAdd(seq, skip);
    // A duplicate: the peer missed our ACK; tell it again at once (RFC 5681 4.2).
    if (skip > 0) c.ack.ackNow();
  }
  const room = seqSub(rcv.adv, seq);
  if (dataLen > room) {
    // What does not fit is dropped and the peer told where the window ends.
    dataLen = room;
    flags &= ~FIN;
    c.ack.ackNow();
  }

  // Fourth, the SYN bit (RFC 5961 4.2): in a synchronized state any SYN gets a challenge ACK.
  if (flags & SYN) {
    if (c.state === 'SYN-RECEIVED' && c.passive) {
      // RFC 9293 3.10.7.4: a passive SYN-RECEIVED connection returns to LISTEN.
      c.destroy(null, TCP_EVENTS.synInSynReceived);
      return;
    }
    challengeAck(c);
    counters.drop('tcp-syn-challenged');
    return;
  }

  // Fifth, the ACK field.
  if (!(flags & ACK)) {
    counters.drop('tcp-no-ack');
    return;
  }
  const ack = seg.ack;
  if (c.state === 'SYN-RECEIVED') {
    const snd = c.snd;
    if (!(seqLt(snd.una, ack) && seqLe(ack, snd.max))) {
      c.ctx.sendResetFor(seg, c.remoteIp);
      counters.drop('tcp-syn-received-bad-ack');
      return;
    }
    snd.wnd = seg.window << snd.wscale;
    snd.maxWnd = Math.max(snd.maxWnd, snd.wnd);
    snd.wl1 = seq;
    snd.wl2 = ack;
    ackAdvances(c, ack, seg, false, false);
    establish(c);
    if ((c.state as TcpState) === 'CLOSED') return;
  }
  if (!processAck(c, seg, seq, ack, dataLen, flags)) return;

  // RFC 7323 4.3: TS.Recent follows the segment that covers the last ACK we sent.
  if (c.tsEnabled && seg.hasTimestamp && seqLe(seq, c.lastAckSent)) c.tsRecent = seg.tsVal;

  // Sixth (URG) is not supported: the urgent pointer is ignored, data stays in line
  // (RFC 6093 advises against new uses).

  // Seventh and eighth: the segment text and the FIN.
  if (dataLen > 0 || flags & FIN) acceptData(c, seg, seq, dataOff, dataLen, (flags & FIN) !== 0);
  if (c.state === 'TIME-WAIT' && flags & FIN) restartTimeWait(c);
}

/**
 * The ACK field in synchronized states (RFC 9293 3.10.7.4 "fifth", RFC 5961 5.2).
 * Returns false when the segment is to be dropped.
 */
function processAck(c: Tcb, seg: TcpSegment, seq: number, ack: number, dataLen: number, flags: number): boolean {
  const snd = c.snd;
  const counters = c.ctx.counters;
  // RFC 5961 5.2: acceptable ACKs are in [SND.UNA - MAX.SND.WND, SND.NXT].
  if (seqGt(ack, snd.max)) {
    dupAckInvalid(c, seg);
    counters.drop('tcp-ack-of-unsent');
    return false;
  }
  if (seqLt(ack, snd.una - snd.maxWnd)) {
    challengeAck(c);
    counters.drop('tcp-ack-too-old');
    return false;
  }
  // An acceptable ACK answers our zero-window probes, whatever its window (Linux tcp_ack).
  c.probesOut = 0;
  c.lastAckReceiveTime = c.now();
  const window = seg.window << snd.wscale;
  const tsEcr = c.tsEnabled && seg.hasTimestamp ? seg.tsEcr : 0;
  c.rack.begin(c.now());
  c.sent.rate.begin();
  const priorInflight = c.sent.inFlight;
  const lostBefore = c.sent.lostTotal;
  // RFC 2883 4: a first block at or below the cumulative ACK, or inside the second block,
  // reports a duplicate we sent (the scoreboard ignores it). It widens RACK's reordering
  // window (RFC 8985 6.2 step 4) and may prove a retransmission spurious (undo.ts).
  let dsack = false;
  let sackedData = false;
  const r = c.recovery;
  if (c.sackPermitted && seg.sackCount > 0) {
    const b = seg.sackBlocks;
    if (seqLe(b[1]!, ack) || (seg.sackCount > 1 && seqGe(b[0]!, b[2]!) && seqLe(b[1]!, b[3]!))) {
      dsack = true;
      c.count('dsacksReceived');
      // Linux tcp_dsack_seen: the duplicate's size in segments.
      c.stats.dsackDuplicates += Math.max(1, Math.ceil(seqSub(b[1]!, b[0]!) / snd.mss));
      rackOnDsack(c);
      undoOnDsack(c, b[0]!, b[1]!);
    }
  }
  // RFC 6937: the data this ACK says was delivered, cumulatively or by SACK.
  const unaBefore = snd.una;
  const sackedBefore = c.sent.sackedBytes;
  // RFC 2018: mark the segments the peer holds beyond the cumulative ACK (recovery/scoreboard.ts).
  if (c.sackPermitted && seg.sackCount > 0) {
    sackedData = c.scoreboard.update(c.sent, seqMax(ack, snd.una), snd.max, seg.sackBlocks, seg.sackCount, c.rack);
  }
  const advanced = seqGt(ack, snd.una);
  if (advanced) {
    ackAdvances(c, ack, seg, dsack, sackedData);
    if (c.state === 'CLOSED') return false;
  } else checkSpurious(c, tsEcr, false, dsack, sackedData);
  r.delivered = Math.max(0, seqSub(snd.una, unaBefore) + c.sent.sackedBytes - sackedBefore);
  // Linux tcp_rate_gen: this ACK's delivery rate sample (recovery/delivery-rate.ts).
  c.sent.rate.generate(c.now(), c.rack.minRtt, c.sackPermitted && c.sent.reneged);
  const duplicate =
    !advanced &&
    ack === snd.una &&
    dataLen === 0 &&
    !(flags & (SYN | FIN)) &&
    // RFC 5681 2 asks for an unchanged window; Linux receivers shrink it as out-of-order
    // data fills their buffer, so, like Linux's sender, only a window that grew disqualifies.
    window <= snd.wnd &&
    window > 0 &&
    !c.probing &&
    snd.max !== snd.una;
  // RFC 5681 2 (DUPLICATE ACKNOWLEDGMENT); answers to zero-window probes are not.
  if (duplicate) onDuplicateAck(c);
  if (c.sackPermitted) {
    // RFC 8985 6: RACK marks what is lost, and recovery starts when something is.
    rackOnAck(c);
    if (!r.inRecovery) maybeEnterRecovery(c);
    const b = seg.sackBlocks;
    checkTailLossProbe(c, ack, dsack && seqLt(b[0]!, r.tlpEnd) && seqGt(b[1]!, r.tlpStart), duplicate);
  }
  // A model-based controller (BBR) sets cwnd and the pacing rate from this ACK's sample.
  runRateControl(c, priorInflight, lostBefore);
  continueRecovery(c);
  // Window update (RFC 9293 3.10.7.4): only from a segment newer than the last update.
  if (seqLt(snd.wl1, seq) || (snd.wl1 === seq && seqLe(snd.wl2, ack))) {
    snd.wnd = window;
    snd.wl1 = seq;
    snd.wl2 = ack;
    if (window > snd.maxWnd) snd.maxWnd = window;
    if (window > 0 && (c.timers.isSet(Deadline.Persist) || c.probing)) {
      c.timers.clear(Deadline.Persist);
      c.persistBackoff = 0;
      // The probe byte was beyond the window: it goes again with the data that follows.
      if (c.probing) snd.nxt = snd.una;
      c.probing = false;
    }
  }
  // State transitions that depend on our FIN being acknowledged.
  const finAcked = c.finQueued && snd.una === seqAdd(c.finSeq(), 1);
  switch (c.state) {
    case 'FIN-WAIT-1':
      if (finAcked) {
        c.transition(TCP_EVENTS.finAcked);
        c.sendBuffer.release();
        c.sent.release();
        if (c.orphaned) c.setDeadline(Deadline.Close, c.now() + c.config.finWait2Ms);
      }
      break;
    case 'CLOSING':
      if (finAcked) enterTimeWait(c, TCP_EVENTS.finAcked);
      break;
    case 'LAST-ACK':
      if (finAcked) {
        c.destroy(null, TCP_EVENTS.finAcked);
        return false;
      }
      break;
    default:
      break;
  }
  return true;
}

/** An ACK for new data: drop it from the send buffer, measure, grow cwnd (RFC 5681, RFC 6582). */
function ackAdvances(c: Tcb, ack: number, seg: TcpSegment, dsack: boolean, sackedData: boolean): void {
  const snd = c.snd;
  const now = c.now();
  let acked = seqSub(ack, snd.una);
  // Our SYN and FIN occupy a sequence number each but no buffer space.
  if (snd.una === snd.iss) acked--;
  if (c.finQueued && seqGt(ack, c.finSeq())) acked--;
  const bytesAcked = Math.min(acked, c.sendBuffer.length);
  c.sendBuffer.consume(bytesAcked);
  c.stats.bytesAcked += bytesAcked;
  c.rack.beginCumulative();
  c.sent.acknowledge(ack, c.rack);
  snd.una = ack;
  if (seqLt(snd.nxt, ack)) snd.nxt = ack;
  const r = c.recovery;
  if (seqLt(r.highRxt, ack)) r.highRxt = ack;
  c.retries = 0;
  // RTT from our send times, the echoed timestamp or the timed segment (Karn's rule in timers/rtt.ts).
  const tsEcr = c.tsEnabled && seg.hasTimestamp ? seg.tsEcr : 0;
  if (c.rtt.onAck(ack, tsEcr, now, c.ctx.timestampNow(), snd.max, c.rack.sentTimeRtt())) {
    const probe = c.ctx.probe;
    if (probe !== null) probe.tcpRtt(c, 'sample');
  }
  checkSpurious(c, tsEcr, true, dsack, sackedData);
  if (isSynchronized(c.state) && bytesAcked > 0) onAckOfNewData(c, ack, bytesAcked);
  r.dupAcks = 0;
  if (snd.una === snd.max) c.timers.clear(Deadline.Retransmit);
  else c.timers.set(Deadline.Retransmit, now + c.rtt.rto);
  c.timers.clear(Deadline.TailLossProbe);
  if (snd.una !== snd.max) armTailLossProbe(c);
  if (c.sackPermitted && c.sent.reneged) onReneging(c);
  c.armTimer();
  if (bytesAcked > 0 && c.user && !c.finQueued) c.user.onDrain();
}

/**
 * The ACK that answers a segment we do not accept, as Linux's tcp_oow_rate_limited allows:
 * at most one per tcp_invalid_ratelimit, except for data without SYN (not likely part of an
 * ACK loop, and the sender needs to hear where our window is).
 */
function dupAckInvalid(c: Tcb, seg: TcpSegment): void {
  if ((seg.payloadLength > 0 && !(seg.flags & SYN)) || !oowRateLimited(c, c.now(), c.config.invalidRateLimitMs)) c.ack.ackNow();
  else c.count('invalidAcksSkipped');
}

/** RST in a synchronized or SYN-RECEIVED state, after RFC 5961 checks (RFC 9293 3.10.7.4 "second"). */
function receiveReset(c: Tcb): void {
  switch (c.state) {
    case 'SYN-RECEIVED':
      if (c.passive) c.destroy(null, TCP_EVENTS.refused); // back to LISTEN: the listener never saw it
      else c.destroy(systemError('ECONNREFUSED', 'connect', c.ctx.formatAddress(c.remoteIp), c.remotePort), TCP_EVENTS.refused);
      return;
    case 'ESTABLISHED':
    case 'FIN-WAIT-1':
    case 'FIN-WAIT-2':
    case 'CLOSE-WAIT':
      c.destroy(systemError('ECONNRESET', 'read'), TCP_EVENTS.resetReceived);
      return;
    default:
      // CLOSING, LAST-ACK, TIME-WAIT: just close.
      c.destroy(null, TCP_EVENTS.resetReceived);
  }
}

/** The handshake is complete (RFC 9293 3.10.7.3 and 3.10.7.4 "fifth"). */
function establish(c: Tcb): void {
  const snd = c.snd;
  snd.una = seqGt(snd.una, snd.iss) ? snd.una : seqAdd(snd.iss, 1);
  // No more than the window field can say (RFC 7323 2.2): RCV.WND is what we can advertise.
  c.rcv.adv = seqAdd(c.rcv.nxt, offerableSpace(c));
  // Linux stamps lsndtime and lrcvtime at establishment, and starts its receive estimates.
  const now = c.now();
  c.lastDataSendTime = now;
  c.lastDataReceiveTime = now;
  initReceiveEstimates(c, seqSub(c.rcv.adv, c.rcv.nxt));
  c.transition(c.state === 'SYN-SENT' ? TCP_EVENTS.synAckReceived : TCP_EVENTS.synAcked);
  c.retries = 0;
  c.timers.clear(Deadline.Retransmit);
  if (c.keepAlive) c.timers.set(Deadline.KeepAlive, c.now() + c.keepAliveIdleMs);
  c.armTimer();
  if (c.passive) c.ctx.accept(c);
  else c.user?.onConnect();
  if (c.finQueued && c.state === 'ESTABLISHED') {
    c.transition(TCP_EVENTS.queuedClose);
    output(c);
  }
}
