// Round-trip time and the retransmission timeout (RFC 6298), with what is sampled and what
// is not in one place: RTT from the echoed timestamp (RFC 7323 4.1) or from one timed
// segment per round trip, never from a retransmitted one (Karn's rule, RFC 6298 3), and
// exponential backoff (RFC 6298 5.5). The shape follows smoltcp's RttEstimator: the sender
// tells it what it sent (onSend, onRetransmit) and what came back (onAck).

import { seqGt } from '../seq.ts';

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

export class RttEstimator {
  /** Smoothed RTT in ms; 0 before the first sample. */
  srtt = 0;
  rttvar = 0;
  /** The base RTO from the estimate, before backoff. */
  private baseRto: number;
  /** The least sample so far, ms (tcp_info's tcpi_min_rtt when RACK has none); Infinity before one. */
  minSample = Infinity;
  /** Number of back-to-back expirations (RFC 6298 5.5 doubling). */
  backoffs = 0;
  /** The last measurement folded in (ms), for the probe and tcp_info. */
  lastSample = 0;
  readonly minMs: number;
  readonly maxMs: number;

  /** A segment is being timed (without timestamps): its sequence number and send time. */
  private timing = false;
  private timedSeq = 0;
  private timedAt = 0;
  /** TSval clock at our last retransmission: older echoes measure recovery, not the path. */
  private lastRetransmitTs = 0;

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
    this.lastSample = r;
    if (r < this.minSample) this.minSample = r;
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

  /** New data (or our SYN) went out at `now`: time it unless a segment is timed already. */
  onSend(seq: number, now: number): void {
    if (this.timing) return;
    this.timing = true;
    this.timedSeq = seq;
    this.timedAt = now;
  }

  /** Something was sent again; tsNow is the TSval clock. */
  onRetransmit(tsNow: number): void {
    this.lastRetransmitTs = tsNow;
  }

  /**
   * Karn (RFC 6298 3): after a timeout or the start of recovery nothing sent before may be
   * timed.
   */
  stopTiming(): void {
    this.timing = false;
  }

  /**
   * An ACK for new data: sample from its timestamp echo (tsEcr, 0 when absent) if it is
   * newer than our last retransmission, else from the timed segment once it is covered.
   * Returns whether a sample was taken.
   */
  onAck(ack: number, tsEcr: number, now: number, tsNow: number): boolean {
    if (tsEcr !== 0 && ((tsEcr - this.lastRetransmitTs) | 0) >= 0) {
      const rtt = (tsNow - tsEcr) >>> 0;
      this.timing = false;
      if (rtt < 0x7fffffff) {
        this.sample(Math.max(rtt, 1));
        return true;
      }
      return false;
    }
    if (this.timing && seqGt(ack, this.timedSeq)) {
      this.sample(now - this.timedAt);
      this.timing = false;
      return true;
    }
    return false;
  }
}
