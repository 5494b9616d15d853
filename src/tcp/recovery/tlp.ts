// Tail loss probes (RFC 8985 7.3, 7.4): when the PTO fires (recovery/probe-timeout.ts), the
// probe is new data if the windows allow it, else the last segment sent again; its SACK then
// shows what before it is missing, which starts recovery without waiting for the RTO.

import { emit, sendData } from '../emit.ts';
import { canSendData } from '../state.ts';
import { seqAdd, seqGe, seqGt, seqLt, seqMax, seqSub } from '../seq.ts';
import type { Tcb } from '../tcb.ts';
import { ACK } from '../tcp-segment.ts';
import { Deadline } from '../timers/deadlines.ts';
import { maybeEnterRecovery } from './recovery.ts';

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
  if (seqLt(start, snd.max)) {
    c.count('retransmits');
    c.stats.bytesRetransmitted += len;
    emit(c, ACK, start, seqSub(start, snd.una), len, 'tail-loss-probe');
  } else {
    sendData(c, start, seqSub(start, snd.una), len, false);
  }
  c.timers.set(Deadline.Retransmit, c.now() + c.rtt.rto);
}

/** RFC 8985 7.4: an ACK after a probe. If it SACKs the probe, what is missing before it was lost. */
export function checkTailLossProbe(c: Tcb, ack: number): void {
  const r = c.recovery;
  if (!r.tlpOutstanding) return;
  if (seqGe(ack, r.tlpEnd)) {
    r.tlpOutstanding = false;
    return;
  }
  if (c.scoreboard.covers(seqMax(r.tlpStart, ack), r.tlpEnd)) {
    r.tlpOutstanding = false;
    if (seqGt(r.tlpStart, c.snd.una)) {
      c.scoreboard.lostBelow = r.tlpStart;
      c.scoreboard.hasLostBelow = true;
      maybeEnterRecovery(c);
    }
  }
}
