// NewReno loss recovery for peers without SACK (RFC 5681 3.2 fast retransmit and fast
// recovery, RFC 6582 partial ACKs): the window is inflated by each duplicate ACK, since
// each one means a segment left the network, and deflated by partial ACKs, each of which
// also shows the next hole. The congestion controller only sets ssthresh on entry.

import { retransmitFirst } from '../emit.ts';
import { output } from '../output.ts';
import type { Tcb } from '../tcb.ts';

/** RFC 5681 3.2 step 3: cwnd = ssthresh + 3*SMSS, the three duplicates that left. */
export function enterNewRenoRecovery(c: Tcb): void {
  c.cc.cwnd = c.cc.ssthresh + 3 * c.cc.mss;
}

/** RFC 5681 3.2 step 4: each further duplicate inflates cwnd by SMSS and may let data out. */
export function newRenoDuplicateAck(c: Tcb): void {
  c.cc.cwnd += c.cc.mss;
  if (c.ctx.probe !== null) c.reportCongestion('duplicate ACK inflates the window (RFC 5681 3.2 step 4)');
  output(c);
}

/**
 * RFC 6582 3.2 step 5: a partial ACK; the next hole is lost too and goes at once. Deflate by
 * the amount acknowledged, add back one SMSS if that was at least one SMSS.
 */
export function newRenoPartialAck(c: Tcb, bytesAcked: number): void {
  retransmitFirst(c, 'partial-ack-retransmit');
  const cc = c.cc;
  cc.cwnd = Math.max(cc.cwnd - bytesAcked, cc.mss);
  if (bytesAcked >= cc.mss) cc.cwnd += cc.mss;
  if (c.ctx.probe !== null) c.reportCongestion('partial ACK deflates the window (RFC 6582 3.2 step 5)');
}
