// The sender's SACK scoreboard (RFC 2018, RFC 6675 section 3): which ranges above SND.UNA
// the receiver says it holds, merged. The segments they cover are marked in SentSegments
// (sent-log.ts), where loss (RACK), the pipe and the next retransmission are decided.

import { seqGt, seqLe, seqLt, seqMax, seqMin, seqSub } from '../seq.ts';

/**
 * RFC 6675 2: DupThresh, the duplicate ACKs that start NewReno's fast retransmit; with SACK,
 * the SACKed segments beyond which RACK's reordering window is 0 (RFC 8985 6.2 step 4).
 */
export const DUP_THRESH = 3;

export class SackScoreboard {
  /** SACKed ranges, sorted and merged: [start0, end0, start1, end1, ...], all above SND.UNA. */
  private ranges: number[] = [];
  /** Bytes in all ranges. */
  sackedBytes = 0;

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  /**
   * Takes the SACK blocks of an ACK. Blocks outside (SND.UNA, SND.MAX] are ignored, as RFC
   * 2018 and 5961 advise (a D-SACK or a forged block). Returns whether anything new was learnt.
   */
  update(sndUna: number, sndMax: number, blocks: Uint32Array, count: number): boolean {
    let learnt = false;
    for (let i = 0; i < count; i++) {
      let start = blocks[2 * i]!;
      let end = blocks[2 * i + 1]!;
      if (!seqLt(start, end) || seqLe(end, sndUna) || seqGt(end, sndMax)) continue;
      start = seqMax(start, sndUna);
      end = seqMin(end, sndMax);
      if (this.add(start, end)) learnt = true;
    }
    return learnt;
  }

  private add(start: number, end: number): boolean {
    const r = this.ranges;
    // Find where [start, end) goes, merging every range it touches.
    let i = 0;
    while (i < r.length && seqLt(r[i + 1]!, start)) i += 2;
    let j = i;
    let newStart = start;
    let newEnd = end;
    while (j < r.length && seqLe(r[j]!, end)) {
      newStart = seqMin(newStart, r[j]!);
      newEnd = seqMax(newEnd, r[j + 1]!);
      j += 2;
    }
    let removed = 0;
    for (let k = i; k < j; k += 2) removed += seqSub(r[k + 1]!, r[k]!);
    const added = seqSub(newEnd, newStart) - removed;
    r.splice(i, j - i, newStart, newEnd);
    this.sackedBytes += added;
    return added > 0;
  }

  /** SND.UNA moved to `ack`: forget what is now cumulatively acknowledged. */
  advance(ack: number): void {
    const r = this.ranges;
    let drop = 0;
    while (drop < r.length && seqLe(r[drop + 1]!, ack)) {
      this.sackedBytes -= seqSub(r[drop + 1]!, r[drop]!);
      drop += 2;
    }
    if (drop > 0) r.splice(0, drop);
    if (r.length > 0 && seqLt(r[0]!, ack)) {
      this.sackedBytes -= seqSub(ack, r[0]!);
      r[0] = ack;
    }
  }

  clear(): void {
    this.ranges = [];
    this.sackedBytes = 0;
  }

  /** SACKed bytes in [a, b). */
  sackedIn(a: number, b: number): number {
    let n = 0;
    const r = this.ranges;
    for (let i = 0; i < r.length; i += 2) {
      const s = seqMax(r[i]!, a);
      const e = seqMin(r[i + 1]!, b);
      if (seqLt(s, e)) n += seqSub(e, s);
    }
    return n;
  }

  /**
   * Linux's tcp_check_sack_reneging: a cumulative ACK that stops where a SACKed block starts
   * means the receiver dropped data it had SACKed (a correct receiver would have acknowledged
   * it cumulatively).
   */
  renegedAt(ack: number): boolean {
    return this.ranges.length > 0 && this.ranges[0] === ack;
  }
}
