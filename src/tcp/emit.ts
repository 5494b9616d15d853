// Building our segments from the TCB and sending them (RFC 9293 3.1 header, 3.7 options):
// every segment but a SYN carries ACK = RCV.NXT and the window we advertise; options follow
// what the handshake agreed; the finished segment goes to the context to be transmitted.
// What to send and when is decided elsewhere (output.ts, recovery/, timers/).

import { pacingSent } from './pacing.ts';
import { armTailLossProbe } from './recovery/probe-timeout.ts';
import { oowRateLimited } from './rate-limit.ts';
import { prrSent } from './recovery/prr.ts';
import { noteRetransmission } from './recovery/undo.ts';
import { isSynchronized } from './state.ts';
import { seqAdd, seqGe, seqGt, seqLe, seqLt, seqSub } from './seq.ts';
import type { SendReason, Tcb } from './tcb.ts';
import { ACK, FIN, PSH, RST, SYN, tcpHeaderLength } from './tcp-segment.ts';
import { Deadline } from './timers/deadlines.ts';
import { advertiseWindow } from './window.ts';

/** Builds and sends one segment with len bytes of the send buffer from offset. */
export function emit(c: Tcb, flags: number, seq: number, offset: number, len: number, reason: SendReason): void {
  const r = c.ctx.beginSegment(c);
  const config = c.config;
  r.seq = seq;
  r.flags = flags;
  if (flags & SYN) {
    r.mss = c.rcv.mss;
    // Options in a SYN-ACK only if the peer offered them (RFC 7323 1.3, RFC 2018 2).
    const active = c.state === 'SYN-SENT';
    if (c.offeredWscale >= 0 && (active || c.wscaleAgreed)) r.windowScale = c.offeredWscale;
    if (config.timestamps && (active || c.tsEnabled)) r.hasTimestamp = true;
    if (config.sack && (active || c.sackPermitted)) r.sackPermitted = true;
    // RFC 7323 2.2: the window in a SYN is not scaled.
    r.window = Math.min(config.receiveBufferSize, 0xffff);
    if (flags & ACK) {
      r.ack = c.rcv.nxt;
      c.rcv.adv = seqAdd(c.rcv.nxt, r.window);
    } else r.flags = SYN;
    if (r.hasTimestamp) {
      r.tsVal = c.ctx.timestampNow();
      r.tsEcr = active ? 0 : c.tsRecent;
    }
  } else {
    r.ack = flags & ACK ? c.rcv.nxt : 0;
    r.window = flags & RST ? 0 : advertiseWindow(c);
    if (c.tsEnabled) {
      r.hasTimestamp = true;
      r.tsVal = c.ctx.timestampNow();
      r.tsEcr = c.tsRecent;
    }
    const dsack = c.dsackEnd !== c.dsackStart;
    if (c.sackPermitted && (dsack || !c.reassembly.isEmpty)) {
      if (dsack) {
        // RFC 2883 4: the duplicate first, then the usual blocks; reported once.
        const n = c.reassembly.sackBlocks(r.sackBlocks, 2);
        for (let i = 2 * n - 1; i >= 0; i--) r.sackBlocks[i + 2] = r.sackBlocks[i]!;
        r.sackBlocks[0] = c.dsackStart;
        r.sackBlocks[1] = c.dsackEnd;
        r.sackCount = n + 1;
        c.dsackEnd = c.dsackStart;
        c.count('dsacksSent');
      } else {
        r.sackCount = c.reassembly.sackBlocks(r.sackBlocks, 3);
      }
      // A full-sized segment has no room for them: fewer blocks rather than an IP fragment
      // (for a super-frame, each of the segments the link cuts from it carries the header).
      const segment = Math.min(len, c.snd.mss);
      while (r.sackCount > 0 && tcpHeaderLength(r) + segment + 20 > c.ctx.mtu) r.sackCount--;
    }
  }
  if (flags & ACK) {
    c.lastAckSent = c.rcv.nxt;
    c.ack.onAckSent();
  }
  if (len > 0) {
    if (c.recovery.inRecovery) prrSent(c, len);
    recordSent(c, seq, len);
    pacingSent(c, len);
  }
  // A super-frame is several segments on the wire (Linux counts tcp_skb_pcount).
  const segments = len > c.snd.mss ? Math.ceil(len / c.snd.mss) : 1;
  const stats = c.stats;
  stats.segmentsOut += segments;
  stats.bytesSent += len;
  if (len > 0) {
    stats.dataSegmentsOut += segments;
    c.lastDataSendTime = c.now();
  }
  c.ctx.transmit(c, offset, len, reason);
}

/**
 * Puts data [seq, seq + len) in the log of segments in flight (recovery/sent-log.ts): what
 * is beyond SND.MAX as new records, what is below it as a retransmission (which undo.ts
 * counts too). Called before SND.MAX moves.
 */
function recordSent(c: Tcb, seq: number, len: number): void {
  const end = seqAdd(seq, len);
  const max = c.snd.max;
  const now = c.now();
  if (seqLt(seq, max)) {
    const oldEnd = seqLt(end, max) ? end : max;
    c.sent.retransmitted(seq, oldEnd, now);
    noteRetransmission(c, seqSub(oldEnd, seq));
  }
  if (seqGt(end, max)) c.sent.appendSent(seqGe(seq, max) ? seq : max, end, now, c.snd.mss);
}

/** Our SYN (active open) or SYN-ACK (passive), first or again; it starts the RTO. */
export function sendSyn(c: Tcb, reason: SendReason): void {
  const snd = c.snd;
  emit(c, c.state === 'SYN-SENT' ? SYN : SYN | ACK, snd.iss, 0, 0, reason);
  if (seqLe(snd.nxt, snd.iss)) snd.nxt = seqAdd(snd.iss, 1);
  snd.max = seqAdd(snd.iss, 1);
  if (c.retries === 0) c.rtt.onSend(snd.iss, c.now());
  c.setDeadline(Deadline.Retransmit, c.now() + c.rtt.rto);
}

/**
 * A bare ACK (RFC 9293 3.10.7.4: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>). While going back
 * after a timeout SND.NXT is below what the peer has seen, and a segment with such an old
 * sequence number would be unacceptable to it, ACK and all: like BSD, bare ACKs carry the
 * highest sequence number sent instead, but never beyond the peer's window (Linux
 * tcp_acceptable_seq): after a zero-window probe SND.MAX is past a shut window, and a
 * peer would find an ACK there unacceptable and answer it at once, an ACK storm.
 */
export function sendAck(c: Tcb, reason: SendReason = 'ack'): void {
  const snd = c.snd;
  const windowEnd = seqAdd(snd.una, snd.wnd);
  emit(c, ACK, seqLe(snd.max, windowEnd) ? snd.max : windowEnd, 0, 0, reason);
}

/** Sends the ACK the policy owes now, if any (the end of every event). */
export function flushAck(c: Tcb): void {
  if (c.ack.takeNow() && c.state !== 'CLOSED' && c.state !== 'SYN-SENT') sendAck(c);
}

/** The end of the turn in which an ACK was deferred: send it if still owed. */
export function flushEndOfTurnAck(c: Tcb): void {
  if (c.ack.takeEndOfTurn() && isSynchronized(c.state)) sendAck(c);
}

/**
 * RFC 5961 3.2 / 4.2 challenge ACK, as Linux's tcp_send_challenge_ack: first the
 * connection's tcp_invalid_ratelimit, then the layer's randomised budget (RFC 5961 7).
 */
export function challengeAck(c: Tcb): void {
  if (oowRateLimited(c, c.now(), c.config.invalidRateLimitMs)) c.count('invalidAcksSkipped');
  else if (c.ctx.allowChallengeAck()) sendAck(c, 'challenge-ack');
  else c.ctx.counters.drop('tcp-challenge-ack-limited');
}

/** Linux sends RST|ACK with the current ACK (tcp_send_active_reset). */
export function sendReset(c: Tcb): void {
  emit(c, RST | ACK, c.snd.max, 0, 0, 'reset');
}

/** Sends a segment with data from the send buffer (offset bytes after SND.UNA's data); `push` sets PSH. */
export function sendData(c: Tcb, seq: number, offset: number, len: number, fin: boolean, push = false): void {
  const snd = c.snd;
  const isNew = seqGe(seq, snd.max);
  // PSH where Linux sets it (push-marks.ts), and on the segment that empties the buffer.
  const marked = len > 0 && isNew && c.pushMarks.take(seq, seqAdd(seq, len), snd.maxWnd);
  const flags = ACK | (fin ? FIN : 0) | (len > 0 && (fin || push || marked || offset + len === c.sendBuffer.length) ? PSH : 0);
  emit(c, flags, seq, offset, len, isNew ? (len > 0 ? 'data' : 'fin') : 'retransmit');
  const end = seqAdd(seq, len + (fin ? 1 : 0));
  if (!isNew) {
    c.count('retransmits');
    c.stats.bytesRetransmitted += len;
    c.rtt.onRetransmit(c.ctx.timestampNow());
  }
  if (seqGt(end, snd.nxt)) snd.nxt = end;
  if (seqGt(end, snd.max)) snd.max = end;
  const now = c.now();
  if (isNew && len > 0) c.rtt.onSend(seq, now);
  c.lastSendTime = now;
  if (!c.timers.isSet(Deadline.Retransmit) && !c.timers.isSet(Deadline.Persist)) c.setDeadline(Deadline.Retransmit, now + c.rtt.rto);
  if (isNew && len > 0) armTailLossProbe(c);
}

/** Retransmits the first unacknowledged segment (fast retransmit, a NewReno partial ACK). */
export function retransmitFirst(c: Tcb, reason: SendReason): void {
  const snd = c.snd;
  const outstanding = seqSub(snd.max, snd.una);
  const dataOutstanding = Math.min(c.sendBuffer.length, outstanding);
  const len = Math.min(dataOutstanding, snd.mss);
  const fin = c.finQueued && len === c.sendBuffer.length && seqGt(snd.max, c.finSeq());
  if (len === 0 && !fin) return;
  c.count('retransmits');
  c.stats.bytesRetransmitted += len;
  c.rtt.onRetransmit(c.ctx.timestampNow());
  emit(c, ACK | (fin ? FIN : 0), snd.una, 0, len, reason);
  const r = c.recovery;
  if (seqLt(r.highRxt, seqAdd(snd.una, len))) r.highRxt = seqAdd(snd.una, len);
  c.setDeadline(Deadline.Retransmit, c.now() + c.rtt.rto);
}
