// What RACK (RFC 8985 6.1) remembers, and how each delivered segment updates it (steps 2
// and 3 of 6.2); the loss detection that reads it is in rack.ts.

import { seqGt, seqLe, seqLt } from '../seq.ts';
import { EVER_RETRANSMITTED, type DeliverySink } from './sent-log.ts';

/** Linux's tcp_min_rtt_wlen: the minimum RTT is the least sample of the last 300 s. */
const MIN_RTT_WINDOW_MS = 300_000;

/** RFC 8985 6.1: RACK_sent_after, send time first and sequence number to break a tie. */
export function sentAfter(t1: number, seq1: number, t2: number, seq2: number): boolean {
  return t1 > t2 || (t1 === t2 && seqGt(seq1, seq2));
}

export class RackState implements DeliverySink {
  /** RACK.xmit_ts and RACK.end_seq: the most recently sent segment known delivered. */
  xmitTs = 0;
  endSeq = 0;
  /** RACK.rtt: the RTT that segment measured. */
  rtt = 0;
  /** A segment has been delivered since the connection began (the fields above are set). */
  hasDelivery = false;
  /** RACK.fack: the highest sequence number delivered. */
  fack = 0;
  /** RACK.min_RTT, and when its sample was taken (0: none yet). */
  minRtt = 0;
  private minRttAt = 0;
  /** RACK.reordering_seen: a segment was delivered below one delivered before it. */
  reorderingSeen = false;
  /** RACK.reo_wnd_mult, RACK.reo_wnd_persist and RACK.dsack_round (RFC 8985 6.2 step 4). */
  reoWndMult = 1;
  reoWndPersist = 0;
  dsackRound = 0;
  dsackRoundSet = false;

  // What the ACK being processed delivered (begin() resets them).
  private now = 0;
  /** The ACK delivered data never retransmitted (Linux FLAG_ORIG_SACK_ACKED; F-RTO reads it). */
  deliveredOriginal = false;
  /** The ACK delivered data below data delivered before (reordering, counted once per ACK). */
  reorderedNow = false;

  // The RTT this ACK measures from our own send times (Linux tcp_clean_rtx_queue's first_ackt
  // and tcp_sacktag's first_sackt): the earliest send time of a never-resent segment it
  // acknowledged cumulatively, and of one it SACKed; NaN: none.
  private cumulative = false;
  private firstAckedSentAt = NaN;
  private firstSackedSentAt = NaN;
  /** The cumulative part acknowledged resent data (Linux FLAG_RETRANS_DATA_ACKED): Karn. */
  private resentAcked = false;

  /** RACK.fack before this ACK: reordering is judged against it (Linux's prior_fack). */
  private fackBefore = 0;
  /** Only data at or below this counts for deliveredOriginal (Linux: FLAG_ORIG_SACK_ACKED up to high_seq). */
  originalLimit = 0;

  /** The SACKs that taught RACK its most recent delivery were reneged: forget it. */
  forgetDelivery(): void {
    this.hasDelivery = false;
  }

  begin(now: number): void {
    this.now = now;
    this.fackBefore = this.fack;
    this.deliveredOriginal = false;
    this.reorderedNow = false;
    this.cumulative = false;
    this.firstAckedSentAt = NaN;
    this.firstSackedSentAt = NaN;
    this.resentAcked = false;
  }

  /** The SACK blocks are done: what is delivered next is acknowledged cumulatively. */
  beginCumulative(): void {
    this.cumulative = true;
  }

  /**
   * The RTT of this ACK from send times, in ms, or -1. As Linux's tcp_ack_update_rtt prefers
   * it to the echoed timestamp (whose clock ticks in ms, far coarser than a TAP's round trip):
   * the oldest segment acknowledged cumulatively, unless resent data was (Karn, RFC 6298 3);
   * else the oldest SACKed one; never one that was sent twice.
   */
  sentTimeRtt(): number {
    if (!this.resentAcked && !Number.isNaN(this.firstAckedSentAt)) return this.now - this.firstAckedSentAt;
    if (!Number.isNaN(this.firstSackedSentAt)) return this.now - this.firstSackedSentAt;
    return -1;
  }

  /** RFC 8985 6.2 steps 2 and 3, for one newly acknowledged or SACKed segment. */
  delivered(_start: number, end: number, sentAt: number, flags: number): void {
    const retransmitted = (flags & EVER_RETRANSMITTED) !== 0;
    if (!retransmitted && seqLe(end, this.originalLimit)) this.deliveredOriginal = true;
    if (retransmitted) {
      if (this.cumulative) this.resentAcked = true;
    } else if (this.cumulative) {
      if (!(sentAt >= this.firstAckedSentAt)) this.firstAckedSentAt = sentAt;
    } else if (!(sentAt >= this.firstSackedSentAt)) this.firstSackedSentAt = sentAt;
    // Step 3: reordering is data delivered below the highest delivered before this ACK,
    // without being resent. (Within one ACK the cumulatively acknowledged segments come
    // first in send order, so judging against the fack this ACK's SACK blocks raised would
    // call every ACK that both advances and SACKs reordering.)
    const hadDelivery = this.hasDelivery;
    if (!hadDelivery || seqGt(end, this.fack)) this.fack = end;
    if (hadDelivery && seqLt(end, this.fackBefore) && !retransmitted) this.reorderedNow = true;
    const rtt = this.now - sentAt;
    if (retransmitted) {
      // Step 2: which copy was delivered is not known; a sample shorter than any RTT must be
      // the original's. (Like Linux's tcp_rack_advance, no test of the echoed timestamp: a
      // receiver echoes an old one for every out-of-order segment, retransmissions included.)
      if (rtt < this.minRtt) return;
    } else if (this.minRtt === 0 || rtt <= this.minRtt || this.now - this.minRttAt > MIN_RTT_WINDOW_MS) {
      this.minRtt = Math.max(rtt, 0.001);
      this.minRttAt = this.now;
    }
    if (!this.hasDelivery || sentAfter(sentAt, end, this.xmitTs, this.endSeq)) {
      this.hasDelivery = true;
      this.rtt = rtt;
      this.xmitTs = sentAt;
      this.endSeq = end;
    }
  }
}

