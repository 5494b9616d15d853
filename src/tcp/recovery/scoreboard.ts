// The sender's SACK scoreboard (RFC 2018, RFC 6675 section 3), as Linux keeps it: no list of
// byte ranges, but a SACKED mark on each segment in flight (sent-log.ts), set when one of an
// ACK's blocks covers the whole segment (a block inside a segment marks nothing, as Linux's
// tcp_match_skb_to_sack splits only at MSS boundaries). What it holds is thus bounded by the
// segments in flight, however many blocks a peer sends. This file tags the segments an
// ACK's blocks cover (tcp_sacktag_write_queue): the blocks in sequence order, and the parts
// the previous ACK's blocks covered skipped (recv_sack_cache), so that the usual ACK, whose
// blocks grow by a segment, costs a few steps rather than a walk over every SACKed segment.

import { seqGt, seqLe, seqLt, seqMax } from '../seq.ts';
import { type DeliverySink, SACKED, type SentSegments } from './sent-log.ts';

/**
 * RFC 6675 2: DupThresh, the duplicate ACKs that start NewReno's fast retransmit; with SACK,
 * the SACKed segments beyond which RACK's reordering window is 0 (RFC 8985 6.2 step 4).
 */
export const DUP_THRESH = 3;

/** Blocks an ACK carries at most (RFC 2018 3: 4 fit in the options). */
const MAX_BLOCKS = 4;

export class SackScoreboard {
  /** This ACK's blocks, clipped to (low, SND.MAX] and sorted: [start0, end0, ...]. */
  private readonly sorted = new Uint32Array(2 * MAX_BLOCKS);
  private count = 0;
  /** The previous ACK's blocks (Linux recv_sack_cache): the segments they covered are marked. */
  private readonly cache = new Uint32Array(2 * MAX_BLOCKS);
  private cacheCount = 0;
  /** Segments looked at and searches made, since the connection began (an operation count). */
  steps = 0;

  /**
   * Marks the segments the blocks cover, telling `sink` (RACK) of each newly SACKed one.
   * Blocks outside (low, high] are ignored, as RFC 2018 and 5961 advise (a D-SACK, or a
   * forged block). The blocks go in sequence order, as Linux's tcp_sacktag_write_queue
   * sorts them: the receiver lists the newest first, and that order would look like
   * reordering to RACK. Returns whether any segment was newly SACKed.
   */
  update(log: SentSegments, low: number, high: number, blocks: Uint32Array, count: number, sink: DeliverySink): boolean {
    const b = this.sorted;
    let n = 0;
    for (let i = 0; i < count && i < MAX_BLOCKS; i++) {
      const start = blocks[2 * i]!;
      const end = blocks[2 * i + 1]!;
      if (!seqLt(start, end) || seqLe(end, low) || seqGt(end, high)) continue;
      let k = n++;
      for (; k > 0 && seqLt(start, b[2 * k - 2]!); k--) {
        b[2 * k] = b[2 * k - 2]!;
        b[2 * k + 1] = b[2 * k - 1]!;
      }
      b[2 * k] = seqMax(start, low);
      b[2 * k + 1] = end;
    }
    this.count = n;
    let learnt = false;
    for (let i = 0; i < n; i++) if (this.tag(log, b[2 * i]!, b[2 * i + 1]!, sink)) learnt = true;
    this.cache.set(b);
    this.cacheCount = n;
    return learnt;
  }

  /** Marks the segments wholly inside [start, end), jumping over those a cached block held. */
  private tag(log: SentSegments, start: number, end: number, sink: DeliverySink): boolean {
    let learnt = false;
    this.steps++;
    let i = log.indexAfter(start);
    while (i < log.count) {
      const s = log.startOf(i);
      const e = log.endOf(i);
      if (seqLt(end, e)) break;
      this.steps++;
      const cached = this.cachedEnd(s, e);
      if (cached !== -1) {
        // Everything wholly inside that block was marked on the previous ACK.
        this.steps++;
        i = log.indexAfter(cached);
        continue;
      }
      if (!seqLt(s, start) && !(log.flagsOf(i) & SACKED)) {
        log.sackRecord(i, sink);
        learnt = true;
      }
      i++;
    }
    return learnt;
  }

  /** The end of the cached block that holds [s, e) wholly, or -1. */
  private cachedEnd(s: number, e: number): number {
    const c = this.cache;
    for (let k = 0; k < this.cacheCount; k++) {
      if (seqLe(c[2 * k]!, s) && seqLe(e, c[2 * k + 1]!)) return c[2 * k + 1]!;
    }
    return -1;
  }

  /** The segments' marks were cleared (reneging, a timeout without SACK, close): so is the cache. */
  clear(): void {
    this.count = 0;
    this.cacheCount = 0;
  }
}
