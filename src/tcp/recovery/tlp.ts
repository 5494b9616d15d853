// Tail loss probes (RFC 8985 7.3, 7.4): when the PTO fires (recovery/probe-timeout.ts), the
// probe is new data if the windows allow it, else the last segment sent again; its SACK then
// lets RACK find what before it is missing, which starts recovery without waiting for the RTO.

import { emit, sendData } from '../emit.ts';
import { canSendData } from '../state.ts';
import { seqAdd, seqGt, seqLt, seqSub } from '../seq.ts';
import type { Tcb } from '../tcb.ts';
import { ACK, FIN, PSH } from '../tcp-segment.ts';
import { Deadline } from '../timers/deadlines.ts';

/** RFC 8985 7.3: the PTO fired. */
export function sendTailLossProbe(c: Tcb): void {
  const snd = c.snd;
  const r = c.recovery;
  if (!canSendData(c.state) || r.inRecovery || snd.una === snd.max || r.tlpOutstanding) return;
  const dataEnd = seqAdd(snd.una, c.sendBuffer.length);
  const dataSent = seqGt(snd.max, dataEnd) ? dataEnd : snd.max;
  let start: number;
  let len: number;
  const unsent = seqSub(dataEnd, snd.nxt);
  if (snd.nxt === snd.max && seqLt(snd.nxt, dataEnd) && seqSub(snd.nxt, snd.una) + snd.mss <= snd.wnd) {
    start = snd.nxt;
    len = Math.min(unsent, snd.mss);
  } else {
    len = Math.min(seqSub(dataSent, snd.una), snd.mss);
    start = seqAdd(dataSent, -len);
  }
  if (len <= 0) return;
  c.count('tailLossProbes');
  r.tlpOutstanding = true;
  r.tlpStart = start;
  r.tlpEnd = seqAdd(start, len);
  r.tlpRetransmission = seqLt(start, snd.max);
  if (r.tlpRetransmission) {
    c.count('retransmits');
    c.stats.bytesRetransmitted += len;
    // The last segment goes again as it went: with our FIN if it carried it (Linux resends
    // the last skb, FIN included), so that a probe of a closing connection ends it.
    const offset = seqSub(start, snd.una);
    const last = offset + len === c.sendBuffer.length;
    const fin = c.finQueued && last && seqGt(snd.max, c.finSeq());
    emit(c, ACK | (fin ? FIN : 0) | (last ? PSH : 0), start, offset, len, 'tail-loss-probe');
  } else {
    // With PSH: a probe asks for an ACK, and a Linux receiver acknowledges pushed data once
    // it is read (ICSK_ACK_PUSHED), not on its delayed-ACK timer. Without it, a probe after a
    // lost ACK (the peer's last one acknowledged all but the probe) waited 40 ms at 3% loss.
    sendData(c, start, seqSub(start, snd.una), len, false, true);
  }
  r.tlpHigh = snd.max;
  c.timers.set(Deadline.Retransmit, c.now() + c.rtt.rto);
}

/**
 * RFC 8985 7.4, as Linux's tcp_process_tlp_ack: once the ACKs pass the probe, did it repair a
 * loss? A probe of new data, a D-SACK of the probe, or a pure duplicate ACK say no: both
 * copies arrived. An ACK beyond what was sent when the probe went, without such a sign,
 * says the probe's retransmission was the only copy: a loss happened, and the window is
 * reduced once (Linux's TCP_CA_CWR: ssthresh from the controller, cwnd to it). The segments
 * before a SACKed probe are RACK's to mark lost (rack.ts).
 */
export function checkTailLossProbe(c: Tcb, ack: number, probeDsacked: boolean, duplicate: boolean): void {
  const r = c.recovery;
  if (!r.tlpOutstanding || seqLt(ack, r.tlpHigh)) return;
  if (!r.tlpRetransmission || probeDsacked) {
    r.tlpOutstanding = false;
  } else if (seqGt(ack, r.tlpHigh)) {
    r.tlpOutstanding = false;
    c.count('tailLossProbeRecoveries');
    // As Linux's tcp_init_cwnd_reduction, from cwnd: the flight is nearly empty by now.
    c.cc.onCongestionEvent(c.cc.cwnd, c.now());
    // Not for a controller with its own cwnd (Linux's tcp_end_cwnd_reduction skips cong_control).
    if (!c.cc.control) c.cc.cwnd = Math.min(c.cc.cwnd, c.cc.ssthresh);
    if (c.ctx.probe !== null) c.reportCongestion('the tail loss probe repaired a loss: window reduced (RFC 8985 7.4.2)');
  } else if (duplicate) {
    r.tlpOutstanding = false;
  }
}
