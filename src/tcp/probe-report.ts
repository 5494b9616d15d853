// What the probe hears of a segment going out beyond the segment and its reason: which rule
// retransmitted it, with the RTO's backoff, or which persist or keepalive probe it is. Called
// from the layer's one transmit site, only when a probe is set; it reads the connection only.

import { seqLt } from './seq.ts';
import type { RetransmitRule, SendReason, Tcb, TcpProbe } from './tcb.ts';
import type { TcpSegment } from './tcp-segment.ts';

/**
 * What a segment's reason says beyond itself, for the probe: which rule retransmitted it (the
 * recovery state tells RACK from duplicate ACKs, and the holes resent after a timeout from
 * SACK recovery's), and the count of a persist or keepalive probe. Reads the connection only.
 */
export function reportSendReason(probe: TcpProbe, conn: Tcb, seg: TcpSegment, reason: SendReason): void {
  let rule: RetransmitRule;
  switch (reason) {
    case 'zero-window-probe':
      // The probe's number in this zero-window episode (its backoff counts up after it).
      return probe.tcpProbeSent?.(conn, 'zero-window', conn.persistBackoff + 1);
    case 'keepalive':
      return probe.tcpProbeSent?.(conn, 'keepalive', conn.keepAliveProbesSent);
    case 'syn-retransmit':
      rule = 'syn';
      break;
    case 'retransmit':
      // Go-back-N after a timeout resends below the "recover" point the timeout set (RFC
      // 6582 4); above it, what goes again is only a zero-window probe's byte, now that the
      // window opened: no retransmission rule sent it.
      if (!seqLt(seg.seq, conn.recovery.recover)) return;
      rule = 'rto';
      break;
    case 'fast-retransmit':
      rule = conn.recovery.sackRecovery ? 'rack' : 'dupacks';
      break;
    case 'sack-retransmit':
      rule = conn.recovery.afterTimeout ? 'rto' : 'sack';
      break;
    case 'partial-ack-retransmit':
      rule = 'partial-ack';
      break;
    case 'tail-loss-probe':
      rule = 'tlp';
      break;
    default:
      return;
  }
  probe.tcpRetransmit?.(conn, rule, seg.seq, seg.payloadLength, conn.rtt.backoffs);
}
