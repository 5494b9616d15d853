// Proportional Rate Reduction (RFC 6937), as Linux's tcp_cwnd_reduction: during SACK
// recovery each ACK lets out data in proportion to what it delivered, so that by the end of
// recovery the flight has come down to ssthresh smoothly, instead of halting until half
// the window has drained (RFC 6675's cwnd = ssthresh) or bursting. When the pipe falls
// below ssthresh (further losses), the slow start reduction bound lets it grow back, at most
// one MSS beyond what was delivered (PRR-SSRB).

import { seqSub } from '../seq.ts';
import type { Tcb } from '../tcb.ts';

/** RFC 6937 "On entering recovery". The caller has set ssthresh (the controller). */
export function startPrr(c: Tcb): void {
  const r = c.recovery;
  r.prrDelivered = 0;
  r.prrOut = 0;
  r.recoverFs = Math.max(seqSub(c.snd.max, c.snd.una), 1);
}

/** RFC 6937 "On every ACK during recovery": cwnd = pipe + sndcnt. */
export function prrOnAck(c: Tcb, delivered: number): void {
  const r = c.recovery;
  const snd = c.snd;
  const mss = snd.mss;
  r.prrDelivered += delivered;
  const pipe = c.sent.inFlight;
  const ssthresh = c.cc.ssthresh;
  let sndcnt: number;
  if (pipe > ssthresh) {
    // Proportional rate reduction.
    sndcnt = Math.ceil((r.prrDelivered * ssthresh) / r.recoverFs) - r.prrOut;
  } else {
    // Slow start reduction bound.
    const limit = Math.max(r.prrDelivered - r.prrOut, delivered) + mss;
    sndcnt = Math.min(ssthresh - pipe, limit);
  }
  c.cc.cwnd = pipe + Math.max(sndcnt, 0);
}

/** Data sent during recovery (RFC 6937 prr_out). */
export function prrSent(c: Tcb, bytes: number): void {
  c.recovery.prrOut += bytes;
}
