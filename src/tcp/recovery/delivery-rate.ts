// Delivery rate sampling, as Linux's tcp_rate.c (draft-cheng-iccrg-delivery-rate-estimation):
// each segment sent remembers how much had been delivered and when (its "tx" stamps, kept by
// SentSegments beside its send time); when an ACK delivers segments, the most recently sent
// of them gives a sample: the segments delivered since it was sent over the longer of its
// send phase and its ACK phase. tcp_info's tcpi_delivery_rate is the last valid sample;
// BBR (congestion/bbr.ts) reads every ACK's. A segment sent while the application had
// nothing more to send is marked application-limited (tcp_rate_check_app_limited), and so
// is a sample taken from it: it may understate what the path carries.

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
  private sampledAppLimited = false;
  /**
   * Linux tp->app_limited: nonzero while segments sent are application-limited, the
   * delivered count that ends it (the flight's end when it began); 0 when not.
   */
  appLimited = 0;

  // This ACK's sample (Linux struct rate_sample), after generate(): -1 without a valid one.
  sampleDelivered = -1;
  sampleIntervalMs = -1;
  samplePriorDelivered = 0;
  sampleAppLimited = false;
  /** Segments this ACK newly delivered (rs->acked_sacked). */
  newlyDelivered = 0;

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
   * Linux tcp_rate_check_app_limited: the sender has less than a segment to send and room
   * in cwnd, with no lost segment waiting to go again: what it sends from now on until the
   * present flight is delivered is application-limited. `inFlight` in segments.
   */
  markAppLimited(inFlight: number): void {
    this.appLimited = this.delivered + inFlight || 1;
  }

  /**
   * Linux tcp_rate_skb_delivered, for one segment newly delivered: sent at `sentAt`, ending at
   * `end`, with the stamps it was sent with.
   */
  onDelivered(txDelivered: number, txDeliveredAt: number, txFirstSentAt: number, sentAt: number, end: number, txAppLimited: boolean): void {
    if (!this.hasSample || sentAfter(sentAt, this.firstSentAt, end, this.lastEndSeq)) {
      this.hasSample = true;
      this.sampledAppLimited = txAppLimited;
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
    this.newlyDelivered = newly;
    this.sampleDelivered = -1;
    this.sampleIntervalMs = -1;
    // The application-limited stretch ends once its flight is delivered.
    if (this.appLimited !== 0 && this.delivered > this.appLimited) this.appLimited = 0;
    if (newly > 0) this.deliveredAt = now;
    if (!this.hasSample || reneged) return;
    const delivered = this.delivered - this.priorDelivered;
    const interval = Math.max(this.sendPhase, now - this.priorAt);
    this.samplePriorDelivered = this.priorDelivered;
    this.sampleAppLimited = this.sampledAppLimited;
    if (interval <= 0 || interval < minRttMs) return;
    this.sampleDelivered = delivered;
    this.sampleIntervalMs = interval;
    this.rateDelivered = delivered;
    this.rateIntervalMs = interval;
  }

  /** tcpi_delivery_rate: bytes per second of the last sample (0 before one). */
  bytesPerSecond(mss: number): number {
    if (this.rateDelivered === 0 || this.rateIntervalMs === 0) return 0;
    return Math.floor((this.rateDelivered * mss * 1000) / this.rateIntervalMs);
  }
}
