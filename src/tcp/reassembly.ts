// Out-of-order segments (RFC 9293 3.10.7.4 "seventh", RFC 1122 4.2.2.20): kept, bounded in
// number, until the gap before them is filled. The caller only passes bytes inside the
// receive window, which bounds the bytes held.

import { seqAdd, seqGt, seqLe, seqLt, seqSub } from './seq.ts';

/** Why insert dropped (some of) a segment (the counters' drop reasons). */
export type ReassemblyDrop = 'tcp-ooo-queue-full' | 'tcp-data-past-fin' | 'tcp-fin-inconsistent';

interface Piece {
  seq: number;
  data: Buffer;
}

function pieceEnd(p: Piece): number {
  return seqAdd(p.seq, p.data.length);
}

export class ReassemblyQueue {
  /** Sorted by sequence number, non-overlapping, never empty pieces. */
  private pieces: Piece[] = [];
  bytes = 0;
  /** Sequence number of a FIN seen out of order. */
  private finSeq = 0;
  private hasFin = false;
  /** Start of the most recently received piece: its block is reported first (RFC 2018 4). */
  private lastReceived = 0;
  /**
   * Where the latest out-of-order segments began, most recent first (RFC 2018 4: the blocks
   * after the first repeat the most recently reported ones), and where the latest ended: a
   * segment that continues it stays in the same entry.
   */
  private readonly recent = [0, 0, 0, 0];
  private recentCount = 0;
  private lastEnd = 0;

  constructor(readonly maxPieces = 256) {}

  get isEmpty(): boolean {
    return this.pieces.length === 0 && !this.hasFin;
  }

  get count(): number {
    return this.pieces.length;
  }

  /** Is [seq, end) entirely held already (a duplicate of out-of-order data)? */
  holds(seq: number, end: number): boolean {
    let cur = seq;
    for (const p of this.pieces) {
      if (seqLe(pieceEnd(p), cur)) continue;
      if (seqGt(p.seq, cur)) return false;
      cur = pieceEnd(p);
      if (!seqLt(cur, end)) return true;
    }
    return !seqLt(cur, end);
  }

  /**
   * Stores a copy of the parts of buf[off, off+len) (sequence number seq) not already held;
   * `fin` marks a FIN right after it. A FIN fixes the end of the stream (RFC 9293 3.10.7.4):
   * text beyond a FIN held is dropped, and so is a FIN at another place; text held beyond a
   * new FIN is dropped when it comes (Linux purges it when the FIN is taken, tcp_fin).
   * Returns null, or why (some of) the segment was dropped.
   */
  insert(seq: number, buf: Buffer, off: number, len: number, fin: boolean): ReassemblyDrop | null {
    let end = seqAdd(seq, len);
    let dropped: ReassemblyDrop | null = null;
    if (fin && this.finElsewhere(end)) return 'tcp-fin-inconsistent';
    if (this.hasFin && seqGt(end, this.finSeq)) {
      if (!seqLt(seq, this.finSeq)) return 'tcp-data-past-fin';
      len = seqSub(this.finSeq, seq);
      end = this.finSeq;
      dropped = 'tcp-data-past-fin';
    } else if (fin && this.dropFrom(end)) dropped = 'tcp-data-past-fin';
    this.lastReceived = seq;
    const recent = this.recent;
    if (this.recentCount === 0 || seq !== this.lastEnd) {
      for (let i = recent.length - 1; i > 0; i--) recent[i] = recent[i - 1]!;
      if (this.recentCount < recent.length) this.recentCount++;
    }
    recent[0] = seq;
    this.lastEnd = end;
    if (fin) {
      this.finSeq = end;
      this.hasFin = true;
    }
    if (len === 0) return dropped;
    const list = this.pieces;
    let cur = seq;
    let i = 0;
    // list[i] is kept as the first piece that ends after cur.
    while (i < list.length && seqLe(pieceEnd(list[i]!), cur)) i++;
    while (seqLt(cur, end)) {
      const next = list[i];
      if (next && seqLe(next.seq, cur)) {
        cur = pieceEnd(next);
        i++;
        continue;
      }
      const holeEnd = next && seqLt(next.seq, end) ? next.seq : end;
      if (list.length >= this.maxPieces) return 'tcp-ooo-queue-full';
      const n = seqSub(holeEnd, cur);
      const from = off + seqSub(cur, seq);
      const data = Buffer.allocUnsafe(n);
      buf.copy(data, 0, from, from + n);
      list.splice(i, 0, { seq: cur, data });
      this.bytes += n;
      i++;
      cur = holeEnd;
    }
    return dropped;
  }

  /** A FIN is held, not at `end`. */
  finElsewhere(end: number): boolean {
    return this.hasFin && end !== this.finSeq;
  }

  /** How much of len bytes at seq comes before the FIN held (all when none is). */
  beforeFin(seq: number, len: number): number {
    if (!this.hasFin || !seqGt(seqAdd(seq, len), this.finSeq)) return len;
    return Math.max(0, seqSub(this.finSeq, seq));
  }

  /** Forgets what is held from `end` on; returns whether there was any. */
  dropFrom(end: number): boolean {
    const list = this.pieces;
    let keep = list.length;
    while (keep > 0 && !seqLt(list[keep - 1]!.seq, end)) keep--;
    let trimmed = keep < list.length;
    for (let i = keep; i < list.length; i++) this.bytes -= list[i]!.data.length;
    list.length = keep;
    const last = list[keep - 1];
    if (last && seqGt(pieceEnd(last), end)) {
      const n = seqSub(end, last.seq);
      this.bytes -= last.data.length - n;
      last.data = last.data.subarray(0, n);
      trimmed = true;
    }
    return trimmed;
  }

  /**
   * Hands over the pieces that now follow rcvNxt in order and returns the new RCV.NXT;
   * calls onFin when a stored FIN comes in order.
   */
  drain(rcvNxt: number, deliver: (data: Buffer) => void, onFin: () => void): number {
    const list = this.pieces;
    let taken = 0;
    let next = rcvNxt;
    while (taken < list.length && seqLe(list[taken]!.seq, next)) {
      const p = list[taken++]!;
      this.bytes -= p.data.length;
      const skip = seqSub(next, p.seq);
      if (skip < p.data.length) {
        deliver(skip === 0 ? p.data : p.data.subarray(skip));
        next = pieceEnd(p);
      }
    }
    if (taken > 0) list.splice(0, taken);
    if (this.hasFin && next === this.finSeq) {
      this.hasFin = false;
      onFin();
    }
    return next;
  }

  /**
   * The held ranges as SACK blocks (RFC 2018 4): first the block holding the most recently
   * received segment, then those of the segments received before it, most recent first (so
   * that a block lost with one ACK is repeated in the next ones, as Linux keeps its
   * selective_acks in that order), then the others from the lowest. Returns how many were
   * written.
   */
  sackBlocks(out: Uint32Array, max: number): number {
    let n = 0;
    for (let r = 0; r < this.recentCount && n < max; r++) n = this.addBlock(out, n, this.recent[r]!);
    const list = this.pieces;
    for (let i = 0; i < list.length && n < max; ) {
      const left = list[i]!.seq;
      let right = pieceEnd(list[i]!);
      i++;
      while (i < list.length && list[i]!.seq === right) right = pieceEnd(list[i++]!);
      n = writeBlock(out, n, left, right);
    }
    return n;
  }

  /** Writes the block that holds `seq` as out's block n unless it is there; returns the new count. */
  private addBlock(out: Uint32Array, n: number, seq: number): number {
    const list = this.pieces;
    for (let i = 0; i < list.length; ) {
      const left = list[i]!.seq;
      let right = pieceEnd(list[i]!);
      i++;
      while (i < list.length && list[i]!.seq === right) right = pieceEnd(list[i++]!);
      if (seqLe(left, seq) && seqLt(seq, right)) return writeBlock(out, n, left, right);
      if (seqLt(seq, left)) return n;
    }
    return n;
  }

  clear(): void {
    this.pieces = [];
    this.bytes = 0;
    this.hasFin = false;
  }
}

/** Block n of out is [left, right), unless out already has a block starting at left. */
function writeBlock(out: Uint32Array, n: number, left: number, right: number): number {
  for (let k = 0; k < n; k++) if (out[2 * k] === left) return n;
  out[2 * n] = left;
  out[2 * n + 1] = right;
  return n + 1;
}
