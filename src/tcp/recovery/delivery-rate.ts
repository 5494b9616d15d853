// Delivery rate sampling, as Linux's tcp_rate.c (draft-cheng-iccrg-delivery-rate-estimation):
// each segment sent remembers how much had been delivered and when (its "tx" stamps, kept by
// SentSegments beside its send time); when an ACK delivers segments, the most recently sent
// of them gives a sample: the segments delivered since it was sent over the longer of its
// send phase and its ACK phase. tcp_info's tcpi_delivery_rate is the last valid sample.
// App-limited marking (tcp_rate_check_app_limited) is not done: every valid sample counts.

/** Linux's tcp_skb_sent_after: sent later, or at the same time and further in sequence. */
function sentAfter(t1: number, t2: number, seq1: number, seq2: number): boolean {
  return t1 > t2 || (t1 === t2 && ((seq1 - seq2) | 0) > 0);
}

export class DeliveryRate {
  /** Segments delivered (cumulatively ACKed or SACKed) since the connection began (Linux tp->delivered, without the SYN). */
  delivered = 0;
  /** When the last ACK that delivered something arrived (tp->delivered_mstamp), ms. */
  deliveredAt = 0;
  /** Send time of the most recently sent segment delivered, or of the first of a flight (tp->first_tx_mstamp), ms. */
  firstSentAt = 0;

  // The sample the current ACK builds (Linux struct rate_sample).
  private hasSample = false;
  private priorDelivered = 0;
  private priorAt = 0;
  private lastEndSeq = 0;
  private sendPhase = 0;
  private deliveredBefore = 0;

  /** The last valid sample (tp->rate_delivered, tp->rate_interval_us in ms): 0 before one. */
  rateDelivered = 0;
  rateIntervalMs = 0;

  /** Linux tcp_rate_skb_sent: nothing was in flight, so the sample starts now. */
  startFlight(now: number): void {
    this.firstSentAt = now;
    this.deliveredAt = now;
  }

  /** An ACK is processed: a new sample starts. */
  begin(): void {
    this.hasSample = false;
    this.deliveredBefore = this.delivered;
  }

  /**
   * Linux tcp_rate_skb_delivered, for one segment newly delivered: sent at `sentAt`, ending at
   * `end`, with the stamps it was sent with.
   */
  onDelivered(txDelivered: number, txDeliveredAt: number, txFirstSentAt: number, sentAt: number, end: number): void {
    if (!this.hasSample || sentAfter(sentAt, this.firstSentAt, end, this.lastEndSeq)) {
      this.hasSample = true;
      this.priorDelivered = txDelivered;
      this.priorAt = txDeliveredAt;
      this.lastEndSeq = end;
      this.firstSentAt = sentAt;
      this.sendPhase = sentAt - txFirstSentAt;
    }
  }

  /**
   * Linux tcp_rate_gen, at the end of the ACK: the sample is kept when it has timing and its
   * interval is at least the minimum RTT (a shorter one would overestimate the rate).
   */
  generate(now: number, minRttMs: number, reneged: boolean): void {
    const newly = this.delivered - this.deliveredBefore;
    if (newly > 0) this.deliveredAt = now;
    if (!this.hasSample || reneged) return;
    const delivered = this.delivered - this.priorDelivered;
    const interval = Math.max(this.sendPhase, now - this.priorAt);
    if (interval <= 0 || interval < minRttMs) return;
    this.rateDelivered = delivered;
    this.rateIntervalMs = interval;
  }

  /** tcpi_delivery_rate: bytes per second of the last sample (0 before one). */
  bytesPerSecond(mss: number): number {
    if (this.rateDelivered === 0 || this.rateIntervalMs === 0) return 0;
    return Math.floor((this.rateDelivered * mss * 1000) / this.rateIntervalMs);
  }
}
