// The sender's SACK scoreboard (RFC 2018, RFC 6675 section 3): which ranges above SND.UNA
// the receiver holds, from which loss is inferred (IsLost), the data in the network is
// estimated (pipe), and the next segment to retransmit is chosen (NextSeg rule 1).

import { seqAdd, seqGe, seqGt, seqLe, seqLt, seqMax, seqMin, seqSub } from '../seq.ts';

/** RFC 6675 2: DupThresh, the number of SACKed segments above a hole that marks it lost. */
export const DUP_THRESH = 3;

export class SackScoreboard {
  /** SACKed ranges, sorted and merged: [start0, end0, start1, end1, ...], all above SND.UNA. */
  private ranges: number[] = [];
  /** Bytes in all ranges. */
  sackedBytes = 0;
  /**
   * Everything unSACKed below this is lost regardless of IsLost (set when a tail loss probe
   * was SACKed: what was sent before it and is still missing did not arrive, RFC 8985 7.4).
   */
  lostBelow = 0;
  hasLostBelow = false;

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  /** Highest SACKed sequence number plus one, or `fallback` without SACK information. */
  highestSacked(fallback: number): number {
    return this.ranges.length > 0 ? this.ranges[this.ranges.length - 1]! : fallback;
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
    if (this.hasLostBelow && seqLe(this.lostBelow, ack)) this.hasLostBelow = false;
  }

  clear(): void {
    this.ranges = [];
    this.sackedBytes = 0;
    this.hasLostBelow = false;
  }

  /** Is [start, end) entirely SACKed? */
  covers(start: number, end: number): boolean {
    return this.sackedIn(start, end) === seqSub(end, start);
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
   * The point below which every unSACKed byte counts as lost (RFC 6675 IsLost: more than
   * (DupThresh - 1) * SMSS bytes SACKed above it). Returns `sndUna` when nothing is lost.
   */
  lostBoundary(sndUna: number, mss: number): number {
    const byCount = this.lostByCount(sndUna, mss);
    return this.hasLostBelow && seqGt(this.lostBelow, byCount) ? this.lostBelow : byCount;
  }

  private lostByCount(sndUna: number, mss: number): number {
    const need = (DUP_THRESH - 1) * mss + 1;
    let sum = 0;
    const r = this.ranges;
    for (let i = r.length - 2; i >= 0; i -= 2) {
      const len = seqSub(r[i + 1]!, r[i]!);
      if (sum + len >= need) return seqAdd(r[i + 1]!, -(need - sum));
      sum += len;
    }
    return sndUna;
  }

  /**
   * RFC 6675 pipe: the bytes still in the network, from SND.UNA to SND.MAX: unSACKed bytes not
   * deemed lost, plus retransmitted ones (below highRxt) not SACKed since.
   */
  pipe(sndUna: number, sndMax: number, highRxt: number, mss: number): number {
    const lost = seqMax(this.lostBoundary(sndUna, mss), sndUna);
    const notLost = seqSub(sndMax, lost) - this.sackedIn(lost, sndMax);
    const rxtEnd = seqMin(seqMax(highRxt, sndUna), sndMax);
    const retransmitted = seqSub(rxtEnd, sndUna) - this.sackedIn(sndUna, rxtEnd);
    return notLost + retransmitted;
  }

  /**
   * RFC 6675 NextSeg rule 1: the first unSACKed, lost byte at or after `from`; returns the
   * length of the hole there (up to `max`) and its start in `out[0]`, or 0 when there is none.
   */
  nextLost(from: number, sndUna: number, mss: number, max: number, out: number[]): number {
    const lost = this.lostBoundary(sndUna, mss);
    let s = seqMax(from, sndUna);
    const r = this.ranges;
    for (let i = 0; i < r.length && seqLt(s, lost); i += 2) {
      if (seqGe(s, r[i + 1]!)) continue;
      if (seqGe(s, r[i]!)) {
        s = r[i + 1]!;
        continue;
      }
      // s is in the hole before range i.
      const end = seqMin(r[i]!, lost);
      if (!seqLt(s, end)) return 0;
      out[0] = s;
      return Math.min(seqSub(end, s), max);
    }
    // Above the highest SACKed byte only lostBelow (a timeout, a SACKed tail loss probe) can
    // mark data lost.
    if (seqLt(s, lost) && (r.length === 0 || seqGe(s, r[r.length - 1]!))) {
      out[0] = s;
      return Math.min(seqSub(lost, s), max);
    }
    return 0;
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
