// The segments in flight, one record per segment sent, as Linux keeps its retransmission
// queue of skbs with their tx timestamps and the TCPCB_SACKED_ACKED, TCPCB_LOST,
// TCPCB_SACKED_RETRANS and TCPCB_EVER_RETRANS bits. RACK (rack.ts) decides loss from the
// send times; the pipe (RFC 6675, Linux's tcp_packets_in_flight) and the choice of the next
// retransmission read the marks. The records cover [SND.UNA, end of the data sent) in
// sequence order; a ring of typed arrays, so that recording a segment allocates nothing.
// Each record also keeps the delivery-rate stamps it was sent with (delivery-rate.ts).

import { DeliveryRate } from './delivery-rate.ts';

/** The peer holds the segment (a SACK block covers it). */
export const SACKED = 1;
/** Deemed lost (RACK, or a timeout) and not delivered since. */
export const LOST = 2;
/** A retransmission of it is in flight (Linux TCPCB_SACKED_RETRANS). */
export const RETRANS_IN_FLIGHT = 4;
/** Sent more than once (Linux TCPCB_EVER_RETRANS): its ACK may be for either copy. */
export const EVER_RETRANSMITTED = 8;

/** Told of every record the peer newly acknowledged or SACKed (rack.ts). */
export interface DeliverySink {
  delivered(start: number, end: number, sentAt: number, flags: number): void;
}

/** a < b in sequence space (as seq.ts; inlined here for the per-record loops). */
function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

export class SentSegments {
  /**
   * At most maxRecords records: the sender stops sending new data while the log is full
   * (output.ts), as Linux's sender stops when its skbs' truesize fills sk_sndbuf, so that a
   * peer that SACKs tiny segments one by one cannot make the log grow without bound.
   */
  constructor(readonly maxRecords: number) {}

  get full(): boolean {
    return this.count >= this.maxRecords;
  }

  private start = new Uint32Array(0);
  private end = new Uint32Array(0);
  private sentAt = new Float64Array(0);
  private flag = new Uint8Array(0);
  // Linux's skb tx stamps (tcp_rate_skb_sent): delivered count, its time and the flight's first send; -1: none.
  private txDelivered = new Float64Array(0);
  private txDeliveredAt = new Float64Array(0);
  private txFirstSentAt = new Float64Array(0);
  /** 1: sent while application-limited (Linux's tx.is_app_limited). */
  private txAppLimited = new Uint8Array(0);
  /** Segments ever marked lost (Linux tp->lost): its growth over an ACK is BBR's rs->losses. */
  lostTotal = 0;
  /** The delivery rate samples (tcpi_delivery_rate, tcpi_delivered). */
  readonly rate = new DeliveryRate();
  private head = 0;
  private mask = -1;
  /** Records held. */
  count = 0;
  /** Bytes in all records, and in those SACKed, lost and with a retransmission in flight. */
  bytes = 0;
  sackedBytes = 0;
  lostBytes = 0;
  retransInFlightBytes = 0;
  /** Set when a retransmission was found lost: the next retransmission starts over from SND.UNA. */
  retransmissionLost = false;

  /** RFC 6675 pipe, as Linux's tcp_packets_in_flight: sent - SACKed - lost + retransmitted. */
  get inFlight(): number {
    return this.bytes - this.sackedBytes - this.lostBytes + this.retransInFlightBytes;
  }

  private at(i: number): number {
    return (this.head + i) & this.mask;
  }

  startOf(i: number): number {
    return this.start[this.at(i)]!;
  }
  endOf(i: number): number {
    return this.end[this.at(i)]!;
  }
  sentAtOf(i: number): number {
    return this.sentAt[this.at(i)]!;
  }
  flagsOf(i: number): number {
    return this.flag[this.at(i)]!;
  }

  /**
   * New data [start, end) went out at `now`, cut into MSS-sized records (a super-frame is
   * several segments on the wire). Records are never merged: the peer SACKs the segments it
   * got, and a record must be a segment for a SACK to mark it.
   */
  appendSent(start: number, end: number, now: number, mss: number): void {
    let s = start;
    while (before(s, end)) {
      const e = ((end - s) >>> 0) > mss ? (s + mss) >>> 0 : end;
      this.push(s, e, now);
      s = e;
    }
  }

  private push(start: number, end: number, now: number): void {
    if (this.count === this.start.length) this.grow();
    const i = this.at(this.count);
    this.start[i] = start;
    this.end[i] = end;
    this.sentAt[i] = now;
    this.flag[i] = 0;
    this.stampRate(i, now);
    this.count++;
    this.bytes += (end - start) >>> 0;
  }

  /** Linux tcp_rate_skb_sent: record j went out at `now` (the flight starts now if it was empty). */
  private stampRate(j: number, now: number): void {
    const rate = this.rate;
    if (this.count === 0) rate.startFlight(now);
    this.txDelivered[j] = rate.delivered;
    this.txDeliveredAt[j] = rate.deliveredAt;
    this.txFirstSentAt[j] = rate.firstSentAt;
    this.txAppLimited[j] = rate.appLimited !== 0 ? 1 : 0;
  }

  /** Linux tcp_rate_skb_delivered for record j, once (a SACKed record is not sampled again when ACKed). */
  private rateDelivered(j: number): void {
    if (this.txDeliveredAt[j]! < 0) return;
    this.rate.onDelivered(this.txDelivered[j]!, this.txDeliveredAt[j]!, this.txFirstSentAt[j]!, this.sentAt[j]!, this.end[j]!, this.txAppLimited[j] === 1);
    this.txDeliveredAt[j] = -1;
  }

  private grow(): void {
    const size = Math.max(16, this.start.length * 2);
    const start = new Uint32Array(size);
    const end = new Uint32Array(size);
    const sentAt = new Float64Array(size);
    const flag = new Uint8Array(size);
    const txDelivered = new Float64Array(size);
    const txDeliveredAt = new Float64Array(size);
    const txFirstSentAt = new Float64Array(size);
    const txAppLimited = new Uint8Array(size);
    for (let i = 0; i < this.count; i++) {
      const j = this.at(i);
      start[i] = this.start[j]!;
      end[i] = this.end[j]!;
      sentAt[i] = this.sentAt[j]!;
      flag[i] = this.flag[j]!;
      txDelivered[i] = this.txDelivered[j]!;
      txDeliveredAt[i] = this.txDeliveredAt[j]!;
      txFirstSentAt[i] = this.txFirstSentAt[j]!;
      txAppLimited[i] = this.txAppLimited[j]!;
    }
    this.start = start;
    this.end = end;
    this.sentAt = sentAt;
    this.flag = flag;
    this.txDelivered = txDelivered;
    this.txDeliveredAt = txDeliveredAt;
    this.txFirstSentAt = txFirstSentAt;
    this.txAppLimited = txAppLimited;
    this.head = 0;
    this.mask = size - 1;
  }

  /** Index of the first record that ends after seq (count when none does). */
  indexAfter(seq: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (before(seq, this.end[this.at(mid)]!)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** [start, end) was sent again at `now`; returns how many records it touched. */
  retransmitted(start: number, end: number, now: number): number {
    let n = 0;
    for (let i = this.indexAfter(start); i < this.count; i++) {
      const j = this.at(i);
      if (!before(this.start[j]!, end)) break;
      n++;
      const f = this.flag[j]!;
      if (f & SACKED) continue;
      if (!(f & RETRANS_IN_FLIGHT)) this.retransInFlightBytes += (this.end[j]! - this.start[j]!) >>> 0;
      this.flag[j] = f | RETRANS_IN_FLIGHT | EVER_RETRANSMITTED;
      this.sentAt[j] = now;
      this.stampRate(j, now);
    }
    return n;
  }

  /** SND.UNA moved to `una`: drop what it covers, telling `sink` of what was not SACKed before. */
  acknowledge(una: number, sink: DeliverySink): void {
    while (this.count > 0) {
      const j = this.head;
      const s = this.start[j]!;
      if (!before(s, una)) return;
      const e = this.end[j]!;
      const f = this.flag[j]!;
      if (!(f & SACKED)) sink.delivered(s, before(una, e) ? una : e, this.sentAt[j]!, f);
      if (before(una, e)) {
        // Part of a record (a segment cut short, or a window probe's byte).
        this.take(f, (una - s) >>> 0);
        this.start[j] = una;
        return;
      }
      if (!(f & SACKED)) {
        this.rate.delivered++;
        this.rateDelivered(j);
      }
      this.take(f, (e - s) >>> 0);
      this.head = (this.head + 1) & this.mask;
      this.count--;
    }
  }

  private take(f: number, len: number): void {
    this.bytes -= len;
    if (f & SACKED) this.sackedBytes -= len;
    if (f & LOST) this.lostBytes -= len;
    if (f & RETRANS_IN_FLIGHT) this.retransInFlightBytes -= len;
  }

  /** The peer SACKed [start, end): mark the records wholly inside it and tell `sink`. */
  sacked(start: number, end: number, sink: DeliverySink): void {
    for (let i = this.indexAfter(start); i < this.count; i++) {
      const j = this.at(i);
      if (before(end, this.end[j]!)) return;
      if (!before(this.start[j]!, start)) this.sackRecord(i, sink);
    }
  }

  /** Record i is SACKed (Linux tcp_sacktag_one): marked, and `sink` told, unless it was already. */
  sackRecord(i: number, sink: DeliverySink): void {
    const j = this.at(i);
    const f = this.flag[j]!;
    if (f & SACKED) return;
    const s = this.start[j]!;
    const e = this.end[j]!;
    const len = (e - s) >>> 0;
    this.sackedBytes += len;
    if (f & LOST) this.lostBytes -= len;
    if (f & RETRANS_IN_FLIGHT) this.retransInFlightBytes -= len;
    this.flag[j] = (f & EVER_RETRANSMITTED) | SACKED;
    this.rate.delivered++;
    this.rateDelivered(j);
    sink.delivered(s, e, this.sentAt[j]!, f);
  }

  /**
   * Linux's tcp_check_sack_reneging: after a cumulative ACK the first record is SACKed, so
   * the ACK stopped where SACKed data starts (a correct receiver would have acknowledged it).
   */
  get reneged(): boolean {
    return this.count > 0 && (this.flag[this.head]! & SACKED) !== 0;
  }

  /** Record i is lost (Linux tcp_mark_skb_lost): a retransmission of it in flight was lost too. */
  markLost(i: number): void {
    const j = this.at(i);
    const f = this.flag[j]!;
    if (f & SACKED) return;
    const len = (this.end[j]! - this.start[j]!) >>> 0;
    if (f & RETRANS_IN_FLIGHT) {
      this.retransInFlightBytes -= len;
      this.retransmissionLost = true;
    }
    if (!(f & LOST)) this.lostBytes += len;
    // Linux tcp_notify_skb_loss_event: a first loss and a lost retransmission both count.
    if (!(f & LOST) || f & RETRANS_IN_FLIGHT) this.lostTotal++;
    this.flag[j] = (f & ~RETRANS_IN_FLIGHT) | LOST;
  }

  /** A retransmission timeout: everything not SACKed is lost (Linux tcp_timeout_mark_lost). */
  markAllLost(): void {
    for (let i = 0; i < this.count; i++) this.markLost(i);
  }

  /** The receiver reneged: its SACKs are forgotten (Linux clears TCPCB_SACKED_ACKED). */
  forgetSacks(): void {
    for (let i = 0; i < this.count; i++) {
      const j = this.at(i);
      this.flag[j]! &= ~SACKED;
    }
    this.sackedBytes = 0;
  }

  /** The losses were spurious (undo): no record is lost any more (Linux tcp_undo_cwnd_reduction). */
  forgetLosses(): void {
    for (let i = 0; i < this.count; i++) {
      const j = this.at(i);
      this.flag[j]! &= ~LOST;
    }
    this.lostBytes = 0;
  }

  /** Records with any of the marks in `mask` (tcp_info's sacked, lost and retrans segment counts). */
  countMarked(mask: number): number {
    let n = 0;
    for (let i = 0; i < this.count; i++) if (this.flag[this.at(i)]! & mask) n++;
    return n;
  }

  /** Index of the first record at or after `from` that is lost and not being retransmitted, or -1. */
  nextLost(from: number): number {
    if (this.lostBytes === 0) return -1;
    for (let i = this.indexAfter(from); i < this.count; i++) {
      if ((this.flag[this.at(i)]! & (LOST | RETRANS_IN_FLIGHT | SACKED)) === LOST) return i;
    }
    return -1;
  }

  /**
   * Where a retransmission starting at record i may end: over the following records while
   * they are lost too, not being resent, contiguous and each before the last a whole `mss`,
   * within `maxBytes` of record i's start. Linux resends a lost TSO skb as one frame
   * (tcp_retransmit_skb, as many segments as cwnd allows); the records here are segments, so
   * a run of them stands for that skb, and the link cuts the frame where the records end.
   */
  lostRunEnd(i: number, mss: number, maxBytes: number): number {
    const start = this.startOf(i);
    let end = this.endOf(i);
    if (((end - start) >>> 0) !== mss) return end;
    for (let k = i + 1; k < this.count; k++) {
      const j = this.at(k);
      if ((this.flag[j]! & (LOST | RETRANS_IN_FLIGHT | SACKED)) !== LOST || this.start[j] !== end) break;
      const e = this.end[j]!;
      if (((e - start) >>> 0) > maxBytes) break;
      end = e;
      if (((e - this.start[j]!) >>> 0) !== mss) break;
    }
    return end;
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
    this.bytes = 0;
    this.sackedBytes = 0;
    this.lostBytes = 0;
    this.retransInFlightBytes = 0;
    this.retransmissionLost = false;
  }

  /** Frees the arrays (the connection's data is all acknowledged and no more will come). */
  release(): void {
    this.clear();
    this.start = new Uint32Array(0);
    this.end = new Uint32Array(0);
    this.sentAt = new Float64Array(0);
    this.flag = new Uint8Array(0);
    this.txDelivered = new Float64Array(0);
    this.txDeliveredAt = new Float64Array(0);
    this.txFirstSentAt = new Float64Array(0);
    this.txAppLimited = new Uint8Array(0);
    this.mask = -1;
  }
}
