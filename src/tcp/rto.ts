// Retransmission timeout (RFC 6298): a smoothed round-trip time and its variation, Karn's
// rule (the caller never samples a retransmitted segment), and exponential backoff.

export interface RtoOptions {
  /** RFC 6298 2.4 says 1 s; Linux uses TCP_RTO_MIN = 200 ms, and so do we. */
  minMs?: number;
  /** RFC 6298 2.5 allows a maximum of at least 60 s; Linux's TCP_RTO_MAX is 120 s. */
  maxMs?: number;
  /** RFC 6298 2.1: 1 s before the first measurement. */
  initialMs?: number;
}

const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;
/** Clock granularity G of RFC 6298 2.2; ours is fine-grained. */
const GRANULARITY_MS = 1;

export class RtoEstimator {
  /** Smoothed RTT in ms; 0 before the first sample. */
  srtt = 0;
  rttvar = 0;
  /** The base RTO from the estimate, before backoff. */
  private baseRto: number;
  /** Number of back-to-back expirations (RFC 6298 5.5 doubling). */
  backoffs = 0;
  readonly minMs: number;
  readonly maxMs: number;

  constructor(options: RtoOptions = {}) {
    this.minMs = options.minMs ?? 200;
    this.maxMs = options.maxMs ?? 120_000;
    this.baseRto = options.initialMs ?? 1000;
  }

  get hasSample(): boolean {
    return this.srtt > 0;
  }

  /** The current timeout in ms, with backoff applied and clamped to [min, max]. */
  get rto(): number {
    // The estimate is clamped first, then doubled per backoff (as Linux's icsk_rto).
    return Math.min(this.maxMs, Math.max(this.minMs, this.baseRto) * 2 ** this.backoffs);
  }

  /** RFC 6298 2.2 and 2.3: fold a new RTT measurement into the estimate. */
  sample(rttMs: number): void {
    const r = Math.max(rttMs, 0.001);
    if (this.srtt === 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - r);
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * r;
    }
    this.baseRto = this.srtt + Math.max(GRANULARITY_MS, K * this.rttvar);
    // RFC 6298 5.7: a new sample after backoff collapses the backoff.
    this.backoffs = 0;
  }

  /** RFC 6298 5.5: the timer expired; double the timeout (up to max). */
  backoff(): void {
    if (this.rto < this.maxMs) this.backoffs++;
  }

  /** An ACK for new data arrived: backoff ends even without a sample (Linux does the same). */
  resetBackoff(): void {
    this.backoffs = 0;
  }
}
