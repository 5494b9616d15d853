// The RFC oracle: each rule a named function, checked on every reply of the target. A rule
// returns a Violation (with the script line a correct target would have matched, so that the
// shrunk script fails at that line on replay) or null. Rules demand only what both RFC and
// Linux agree on: where Linux is more lenient than the RFC (its rcv_wup lower edge, the
// right edge itself being acceptable, the out-of-window ACK rate limit tcp_invalid_ratelimit,
// no challenge ACK for an old ACK outside ESTABLISHED) the rule keeps to the common part.

import { lettersFromFlags } from '../drill/wire.ts';
import { ACK, FIN, RST, SYN } from '../tcp/tcp-segment.ts';
import type { TcpState } from '../tcp/state.ts';
import { type RemoteModel, seqAdd, seqDiff, seqLe, seqLt } from './model.ts';
import type { OutboundSegment, PacketLine, SyscallLine, SyscallOutcome } from './target.ts';

export interface Violation {
  /** The rule's function name, and the RFC section it checks. */
  rule: string;
  rfc: string;
  message: string;
  /** The script line (without its time) a correct target would have matched; null if none can say it. */
  expectedLine: string | null;
}

/** Linux's tcp_invalid_ratelimit: one ACK to invalid segments per 500 ms per connection. */
export const INVALID_RATELIMIT_MS = 500;
/** RFC 6298 2.4's minimum RTO as Linux has it (TCP_RTO_MIN, 200 ms), and RFC 6298 2.5's maximum (TCP_RTO_MAX, 120 s). */
export const RTO_MIN_MS = 200;
export const RTO_MAX_MS = 120_000;
/** packetdrill's default tolerance, for timing rules. */
const TIMING_TOLERANCE_MS = 4;

/** The synchronized states in which RFC 9293 3.10.7.4 and RFC 5961 apply as both stacks do. */
const CHECKED_STATES: ReadonlySet<TcpState> = new Set(['ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK']);

/** What the oracle knows when the remote sends a segment: the model and the state before it. */
export interface InboundContext {
  model: RemoteModel;
  segment: PacketLine;
  state: TcpState | null;
  listening: boolean;
  /** The flow's local port is the listening port (a segment without a connection reaches the listener). */
  toListenerPort: boolean;
  /** The target's RCV.NXT when certain (it has acked all the remote sent in order), else null. */
  rcvNxt: number | null;
  /** The target's segments sent at once in reply (same instant). */
  replies: OutboundSegment[];
  now: number;
}

const has = (p: PacketLine, letter: string): boolean => p.flags.includes(letter);
const segLength = (p: PacketLine): number => p.length + (has(p, 'S') ? 1 : 0) + (has(p, 'F') ? 1 : 0);
const isPureAckReply = (s: OutboundSegment): boolean => (s.flags & ACK) !== 0 && (s.flags & (RST | SYN)) === 0;

/**
 * Whether the target's per-connection limit may have held the answer back. A challenge ACK is
 * always limited (Linux tcp_send_challenge_ack calls __tcp_oow_rate_limited); a dupack to an
 * out-of-window segment is not when the segment has data and no SYN (tcp_oow_rate_limited:
 * such a segment cannot be part of an ACK loop).
 */
function rateLimited(c: InboundContext, challenge: boolean): boolean {
  if (!challenge && c.segment.length > 0 && !has(c.segment, 'S')) return false;
  return c.now - c.model.lastOowAckAt < INVALID_RATELIMIT_MS;
}

function missingAck(c: InboundContext, rule: string, rfc: string, why: string, challenge = true): Violation | null {
  if (rateLimited(c, challenge)) return null;
  if (c.replies.some(isPureAckReply)) return null;
  const m = c.model;
  const ack = c.rcvNxt ?? m.lastTargetAck ?? 0;
  return { rule, rfc, message: `${why}: expected an ACK <SEQ=SND.NXT><ACK=RCV.NXT>, the target sent ${describe(c.replies)}`, expectedLine: `> . ${m.targetMax}:${m.targetMax}(0) ack ${ack} <...>` };
}

function describe(replies: OutboundSegment[]): string {
  if (replies.length === 0) return 'nothing';
  return replies.map((s) => `${lettersFromFlags(s.flags)} ${s.seq}:${seqAdd(s.seq, s.payloadLength)}(${s.payloadLength}) ack ${s.ack}`).join(', ');
}

/** RFC 9293 3.10.7.4 "first": an unacceptable segment (not RST) is answered by an ACK and dropped. */
export function unacceptableSegmentIsAcked(c: InboundContext): Violation | null {
  const m = c.model;
  if (!c.state || !CHECKED_STATES.has(c.state) || has(c.segment, 'R') || m.lastTargetAck === null || m.rightEdge === null) return null;
  const seq = c.segment.start >>> 0;
  const end = seqAdd(seq, segLength(c.segment));
  // Unacceptable both by the RFC and by Linux's tcp_sequence (end before rcv_wup, the last ack sent; seq after the right edge).
  const old = seqLt(end, m.lastTargetAck);
  // Beyond the right edge, once the target advertised a window in a synchronized state: the
  // SYN-ACK's unscaled window is less than tapstack takes after the handshake (it offers its
  // whole buffer from then on, where Linux's child keeps the SYN-ACK's rcv_wnd): the RFC lets a
  // receiver take more than it offered, and the differential oracle shows the difference.
  const beyond = m.windowAdvertised && seqLt(m.rightEdge, seq);
  if (!old && !beyond) return null;
  // Linux drops a segment with none of ACK, RST, SYN before the sequence check (tcp_rcv_established,
  // tcp_rcv_state_process): the RFC's ACK is owed only to segments that have one of them.
  if (!has(c.segment, '.') && !has(c.segment, 'S')) return null;
  // A SYN's answer is the challenge ACK of RFC 5961 4.2, limited as challenges are.
  return missingAck(c, 'unacceptableSegmentIsAcked', 'RFC 9293 3.10.7.4', `segment ${seq}:${end} is ${old ? 'before RCV.NXT' : 'beyond the window'}`, has(c.segment, 'S'));
}

/** RFC 5961 3.2: an RST in the window but not at RCV.NXT gets a challenge ACK (and resets nothing). */
export function rstInWindowGetsChallengeAck(c: InboundContext): Violation | null {
  const m = c.model;
  if (!c.state || !CHECKED_STATES.has(c.state) || !has(c.segment, 'R') || c.rcvNxt === null || m.rightEdge === null) return null;
  // Linux also resets on an RST at the end of the highest SACK block: only without holes is the rule plain.
  if (m.hasHoles()) return null;
  const seq = c.segment.start >>> 0;
  if (!(seqLt(c.rcvNxt, seq) && seqLt(seq, m.rightEdge))) return null;
  return missingAck(c, 'rstInWindowGetsChallengeAck', 'RFC 5961 3.2', `RST at ${seq}, in the window [${c.rcvNxt}, ${m.rightEdge}) but not at RCV.NXT`);
}

/** RFC 5961 4.2: a SYN in a synchronized state, wherever its seq, gets a challenge ACK. */
export function synInSynchronizedStateGetsChallengeAck(c: InboundContext): Violation | null {
  if (!c.state || !CHECKED_STATES.has(c.state) || !has(c.segment, 'S') || has(c.segment, 'R')) return null;
  return missingAck(c, 'synInSynchronizedStateGetsChallengeAck', 'RFC 5961 4.2', `SYN in ${c.state}`);
}

/** RFC 5961 5.2: an ACK below SND.UNA - MAX.SND.WND gets a challenge ACK (Linux: in ESTABLISHED; elsewhere FLAG_NO_CHALLENGE_ACK). */
export function oldAckGetsChallengeAck(c: InboundContext): Violation | null {
  const m = c.model;
  const p = c.segment;
  if (c.state !== 'ESTABLISHED' || !has(p, '.') || has(p, 'R') || has(p, 'S') || p.ack === null || c.rcvNxt === null || (p.start >>> 0) !== c.rcvNxt) return null;
  if (m.rightEdge === null || seqLe(m.rightEdge, c.rcvNxt)) return null;
  const floor = (m.una - m.maxRemoteWnd) >>> 0;
  if (!seqLt(p.ack >>> 0, (floor - 1) >>> 0)) return null;
  return missingAck(c, 'oldAckGetsChallengeAck', 'RFC 5961 5.2', `ACK ${p.ack >>> 0} below SND.UNA - MAX.SND.WND = ${floor}`);
}

/** The RST a host without the connection sends (RFC 9293 3.10.7.1 and 3.10.7.2). */
function expectedReset(p: PacketLine): { flags: number; seq: number | null; ack: number | null } {
  if (has(p, '.')) return { flags: RST, seq: (p.ack ?? 0) >>> 0, ack: null };
  return { flags: RST | ACK, seq: null, ack: seqAdd(p.start, segLength(p)) };
}

function checkReset(c: InboundContext, rule: string, rfc: string, why: string): Violation | null {
  const want = expectedReset(c.segment);
  const ok = c.replies.some((s) => s.flags === want.flags && (want.seq === null || s.seq === want.seq) && (want.ack === null || s.ack === want.ack) && s.payloadLength === 0);
  if (ok) return null;
  const line = want.flags === RST ? `> R ${want.seq}:${want.seq}(0)` : `> R. 0:0(0) ack ${want.ack}`;
  return { rule, rfc, message: `${why}: expected ${line.slice(2)}, the target sent ${describe(c.replies)}`, expectedLine: line };
}

/** RFC 9293 3.10.7.1: a segment (not RST) for no connection and no listener gets an RST. */
export function closedPortSendsReset(c: InboundContext): Violation | null {
  if ((c.state !== null && c.state !== 'CLOSED') || has(c.segment, 'R') || (c.listening && c.toListenerPort)) return null;
  return checkReset(c, 'closedPortSendsReset', 'RFC 9293 3.10.7.1', 'segment to a closed port');
}

/** RFC 9293 3.10.7.2: in LISTEN an ACK (not RST) gets <SEQ=SEG.ACK><CTL=RST>; an RST gets nothing. */
export function listenAnswersAckWithReset(c: InboundContext): Violation | null {
  if ((c.state !== null && c.state !== 'CLOSED') || !c.listening || !c.toListenerPort) return null;
  if (has(c.segment, 'R')) {
    if (c.replies.length === 0) return null;
    return { rule: 'listenAnswersAckWithReset', rfc: 'RFC 9293 3.10.7.2', message: `an RST in LISTEN is answered: ${describe(c.replies)}`, expectedLine: null };
  }
  if (!has(c.segment, '.')) return null;
  return checkReset(c, 'listenAnswersAckWithReset', 'RFC 9293 3.10.7.2', 'ACK in LISTEN');
}

export const INBOUND_RULES = [unacceptableSegmentIsAcked, rstInWindowGetsChallengeAck, synInSynchronizedStateGetsChallengeAck, oldAckGetsChallengeAck, closedPortSendsReset, listenAnswersAckWithReset];

/** RFC 9293 3.10.7.4 "fifth" and RFC 5961 5.2: a segment acknowledging unsent data is dropped, its text too. */
export function ackOfUnsentDataDropsSegment(c: InboundContext, bytesBefore: number, bytesAfter: number): Violation | null {
  const p = c.segment;
  if (!c.state || !CHECKED_STATES.has(c.state) || !has(p, '.') || has(p, 'R') || has(p, 'S') || p.length === 0 || p.ack === null) return null;
  if (c.rcvNxt === null || (p.start >>> 0) !== c.rcvNxt || !seqLt(c.model.targetMax, p.ack >>> 0)) return null;
  if (bytesAfter === bytesBefore) return null;
  return {
    rule: 'ackOfUnsentDataDropsSegment',
    rfc: 'RFC 9293 3.10.7.4 (fifth), RFC 5961 5.2',
    message: `ACK ${p.ack >>> 0} of unsent data (SND.NXT ${c.model.targetMax}) but its ${p.length} bytes were taken (tcpi_bytes_received ${bytesBefore} -> ${bytesAfter})`,
    expectedLine: `%{ assert tcpi_bytes_received == ${bytesBefore} }%`,
  };
}

/** What the oracle knows when the target sends a segment: the model before it. */
export interface OutboundContext {
  model: RemoteModel;
  segment: OutboundSegment;
}

function withField(s: OutboundSegment, change: { ack?: number; win?: number }): string {
  const ack = change.ack ?? s.ack;
  const win = change.win !== undefined ? ` win ${change.win}` : '';
  return `> ${lettersFromFlags(s.flags)} ${s.seq}:${seqAdd(s.seq, s.payloadLength)}(${s.payloadLength})${s.flags & ACK ? ` ack ${ack}` : ''}${win} <...>`;
}

/** RFC 9293 3.4: a target never acknowledges what the remote did not send. */
export function noAckOfUnsentData(c: OutboundContext): Violation | null {
  const m = c.model;
  const s = c.segment;
  // An RST's ack answers a segment (RFC 9293 3.10.7.1's SEG.SEQ+SEG.LEN): closedPortSendsReset checks it.
  if (!(s.flags & ACK) || s.flags & RST || !m.synSent) return null;
  const max = m.maxSent();
  if (seqLe(s.ack, max)) return null;
  return { rule: 'noAckOfUnsentData', rfc: 'RFC 9293 3.4', message: `ack ${s.ack} beyond the remote's highest sequence sent ${max}`, expectedLine: withField(s, { ack: max }) };
}

/** RFC 9293 3.4: the ACK is cumulative: it never covers a hole in what the remote sent. */
export function ackCoversOnlyReceivedData(c: OutboundContext): Violation | null {
  const m = c.model;
  const s = c.segment;
  if (!(s.flags & ACK) || s.flags & RST || !m.synSent) return null;
  const end = m.contiguousEnd();
  if (seqLe(s.ack, end) || !seqLe(s.ack, m.maxSent())) return null;
  return { rule: 'ackCoversOnlyReceivedData', rfc: 'RFC 9293 3.4', message: `ack ${s.ack} covers a hole: the remote's data is contiguous only to ${end}`, expectedLine: withField(s, { ack: end }) };
}

/** RFC 9293 3.8.6 (and Linux tcp_select_window): the right edge of the advertised window never moves left. */
export function windowRightEdgeNeverMovesLeft(c: OutboundContext): Violation | null {
  const m = c.model;
  const s = c.segment;
  if (!(s.flags & ACK) || s.flags & (RST | SYN) || m.rightEdge === null) return null;
  const edge = seqAdd(s.ack, s.window * 2 ** m.targetWscale);
  if (seqLe(m.rightEdge, edge)) return null;
  const need = Math.ceil(seqDiff(m.rightEdge, s.ack) / 2 ** m.targetWscale);
  return { rule: 'windowRightEdgeNeverMovesLeft', rfc: 'RFC 9293 3.8.6', message: `right edge ${edge} (ack ${s.ack} + win ${s.window} << ${m.targetWscale}) left of ${m.rightEdge} advertised before`, expectedLine: withField(s, { win: need }) };
}

/**
 * RFC 6298 2.4 and 5.5: a timer retransmission of SND.UNA (nothing heard from the remote since
 * the last transmission, so no fast retransmit, RACK or SYN-triggered resend can explain it)
 * comes no sooner than the minimum RTO (Linux 200 ms) and no later than the maximum (120 s).
 */
export function retransmissionWithinRtoBounds(c: OutboundContext): Violation | null {
  const m = c.model;
  const s = c.segment;
  const len = s.payloadLength + (s.flags & SYN ? 1 : 0) + (s.flags & FIN ? 1 : 0);
  if (s.flags & RST || len === 0 || !m.targetSynSeen || s.seq !== m.una || !seqLt(s.seq, m.targetMax)) return null;
  const previous = m.sentAt.get(s.seq);
  if (previous === undefined || m.lastInboundAt >= previous) return null;
  const gap = s.at - previous;
  if (gap >= RTO_MIN_MS - TIMING_TOLERANCE_MS && gap <= RTO_MAX_MS + TIMING_TOLERANCE_MS) return null;
  const at = previous + (gap < RTO_MIN_MS ? RTO_MIN_MS : RTO_MAX_MS);
  return { rule: 'retransmissionWithinRtoBounds', rfc: 'RFC 6298 2.4, 5.5', message: `retransmission of ${s.seq} ${gap} ms after the previous one (RTO bounds ${RTO_MIN_MS} ms to ${RTO_MAX_MS} ms)`, expectedLine: `@${at} ${withField(s, {})}` };
}

/** RFC 7323 5.4: a host's TS val never goes back (its clock is monotonic) within a connection. */
export function timestampsMonotonic(c: OutboundContext): Violation | null {
  const m = c.model;
  const s = c.segment;
  const ts = s.options.find((o) => o.kind === 'TS');
  if (!ts || ts.kind !== 'TS' || s.flags & SYN || m.lastTargetTsVal === null || seqLe(m.lastTargetTsVal, ts.val)) return null;
  return { rule: 'timestampsMonotonic', rfc: 'RFC 7323 5.4', message: `TS val ${ts.val} after ${m.lastTargetTsVal}`, expectedLine: null };
}

export const OUTBOUND_RULES = [noAckOfUnsentData, ackCoversOnlyReceivedData, windowRightEdgeNeverMovesLeft, retransmissionWithinRtoBounds, timestampsMonotonic];

/** Data bytes the target acknowledged (its ack less the SYN and a FIN it covers). */
function ackedDataBytes(m: RemoteModel): number {
  if (m.lastTargetAck === null) return 0;
  let bytes = seqDiff(m.lastTargetAck, m.irs) - 1;
  if (m.finSeq !== null && seqLt(m.finSeq, m.lastTargetAck)) bytes -= 1;
  return Math.max(0, bytes);
}

/**
 * RFC 9293 3.10.7.4 ("seventh, process the segment text") and 3.4: the reader gets the remote's
 * bytes exactly once and in order: never more than were sent without a hole, and every byte the
 * target acknowledged is there to read.
 */
export function dataDeliveredOnceInOrder(model: RemoteModel, call: SyscallLine, outcome: SyscallOutcome, fd: number, length: number): Violation | null {
  if (call.name !== 'read' || model.readShut) return null;
  const available = model.contiguousDataBytes() - model.bytesRead;
  const acked = ackedDataBytes(model) - model.bytesRead;
  const line = (ret: number) => `read(${fd}, ..., ${length}) = ${ret}`;
  if (outcome.ret > 0 && outcome.ret > available) {
    return { rule: 'dataDeliveredOnceInOrder', rfc: 'RFC 9293 3.10.7.4, 3.4', message: `read ${outcome.ret} bytes, only ${available} were sent in order and not read yet`, expectedLine: line(Math.min(length, available)) };
  }
  const short = outcome.ret >= 0 ? outcome.ret < Math.min(length, acked) : outcome.errno === 'EAGAIN' && acked > 0;
  if (short) {
    return { rule: 'dataDeliveredOnceInOrder', rfc: 'RFC 9293 3.10.7.4, 3.4', message: `read gave ${outcome.ret}${outcome.errno ? ` ${outcome.errno}` : ''}, the target had acknowledged ${acked} bytes not read yet`, expectedLine: line(Math.min(length, acked)) };
  }
  return null;
}
