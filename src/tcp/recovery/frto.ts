// F-RTO (RFC 5682 3, the SACK-enhanced algorithm), as Linux's tcp_process_loss runs it: after a
// timeout, only the first segment is retransmitted; if the ACKs that follow acknowledge or
// SACK data that was never retransmitted, the originals were delayed, not lost, and the
// timeout was spurious (undo.ts restores cwnd). When the first ACK advances SND.UNA without
// deciding it, new data goes out instead of retransmissions (step 2b), and their ACKs decide.

import { seqGt, seqSub } from '../seq.ts';
import type { Tcb } from '../tcb.ts';
import { undoCongestionResponse } from './undo.ts';

/** A timeout with SACK information (Linux: tcp_frto on, not after SACK reneging). */
export function startFrto(c: Tcb, reneged: boolean): void {
  const r = c.recovery;
  r.frto = c.config.frto && !reneged;
  r.frtoHigh = c.snd.nxt;
  r.frtoNewData = false;
  // Only data sent before the timeout can prove it spurious (new data of step 2b cannot).
  c.rack.originalLimit = c.snd.max;
}

/**
 * One ACK after the timeout (Linux tcp_process_loss, "F-RTO RFC5682 sec 3.1"). Returns true
 * when the timeout proved spurious and was undone.
 */
export function frtoOnAck(c: Tcb, advanced: boolean, sackedData: boolean, duplicate: boolean): boolean {
  const r = c.recovery;
  r.frtoNewData = false;
  if (!r.frto || !r.afterTimeout) return false;
  // Step 3b: data never retransmitted was delivered, so not everything was lost.
  if (c.rack.deliveredOriginal) {
    c.count('spuriousRtos');
    undoCongestionResponse(c, 'lossUndos', 'undo: the timeout was spurious (F-RTO, RFC 5682 3)');
    return true;
  }
  const snd = c.snd;
  if (seqGt(snd.nxt, r.frtoHigh)) {
    // Step 3a: new data went out and the ACK shows a hole again: the loss was real.
    if (sackedData || duplicate) r.frto = false;
  } else if (advanced) {
    // Step 2b: send new data rather than retransmissions, if there is some and room for it.
    r.frtoHigh = snd.nxt;
    const inFlight = seqSub(snd.nxt, snd.una);
    if (c.sendBuffer.length > inFlight && snd.wnd > inFlight) r.frtoNewData = true;
    else r.frto = false;
  }
  return false;
}
