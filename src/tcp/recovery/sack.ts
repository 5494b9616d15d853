// SACK-based loss recovery (RFC 6675): the pipe estimate replaces NewReno's window
// inflation, and each step retransmits the next lost hole (NextSeg rule 1) while cwnd - pipe
// allows a segment, then lets new data out through output(), limited by the same pipe.

import { emit } from '../emit.ts';
import { output } from '../output.ts';
import { seqAdd, seqGt, seqLt, seqSub } from '../seq.ts';
import type { Tcb } from '../tcb.ts';
import { ACK } from '../tcp-segment.ts';

/** At most this many retransmissions per step (a bound, never reached with sane windows). */
const MAX_RETRANSMISSIONS_PER_STEP = 1000;

/**
 * RFC 6675 5 step (4.2): cwnd = ssthresh, without NewReno's inflation; PRR (prr.ts) then
 * sets it on every ACK of the recovery.
 */
export function enterSackRecovery(c: Tcb): void {
  c.cc.cwnd = c.cc.ssthresh;
}

/** RFC 6675 5 step (C). */
export function sackRecoveryStep(c: Tcb): void {
  const snd = c.snd;
  const r = c.recovery;
  const board = c.scoreboard;
  const mss = snd.mss;
  // RFC 6675 cannot see a lost retransmission. Like Linux (tcp_mark_lost_retrans): once data
  // first sent after our latest retransmission is SACKed while a hole we retransmitted is
  // still missing, that retransmission was lost, and the holes go again.
  if (seqGt(r.highRxt, snd.una) && seqGt(board.highestSacked(snd.una), r.retransmitMark)) {
    const hole = board.nextLost(snd.una, snd.una, mss, mss, r.nextSegStart);
    if (hole > 0 && seqLt(r.nextSegStart[0]!, r.highRxt)) {
      r.highRxt = snd.una;
      r.retransmitMark = snd.max;
    }
  }
  for (let i = 0; i < MAX_RETRANSMISSIONS_PER_STEP; i++) {
    const pipe = board.pipe(snd.una, snd.max, r.highRxt, mss);
    if (c.cc.cwnd - pipe < mss) return;
    const len = board.nextLost(r.highRxt, snd.una, mss, mss, r.nextSegStart);
    if (len === 0) break;
    const start = r.nextSegStart[0]!;
    const offset = seqSub(start, snd.una);
    const n = Math.min(len, c.sendBuffer.length - offset);
    if (n <= 0) break;
    c.count('retransmits');
    c.stats.bytesRetransmitted += n;
    c.rtt.onRetransmit(c.ctx.timestampNow());
    emit(c, ACK, start, offset, n, 'sack-retransmit');
    r.highRxt = seqAdd(start, n);
    r.retransmitMark = snd.max;
  }
  output(c);
}
