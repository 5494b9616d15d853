// Round-trip time and the retransmission timeout, as Linux's tcp_rtt_estimator and
// tcp_set_rto compute them rather than RFC 6298's SRTT + 4 RTTVAR floored at 1 s: RTO =
// SRTT + rttvar, where rttvar is the largest 4 x mean deviation of the last round trip, never
// below tcp_rto_min (200 ms), so that the RTO is at least an RTT plus the minimum and the tail
// loss probe (2 SRTT) comes before it. What is sampled and what is not is in one place: RTT
// from the echoed timestamp (RFC 7323 4.1) or from one timed segment per round trip, never
// from a retransmitted one (Karn's rule, RFC 6298 3), and exponential backoff (RFC 6298
// 5.5). The shape follows smoltcp's RttEstimator: the sender tells it what it sent (onSend,
// onRetransmit) and what came back (onAck).

import { seqGt } from '../seq.ts';

export interface RtoOptions {
  /** Linux's tcp_rto_min, 200 ms (RFC 6298 2.4 says 1 s): the floor of the variance term. */
  minMs?: number;
  /** RFC 6298 2.5 allows a maximum of at least 60 s; Linux's TCP_RTO_MAX is 120 s. */
  maxMs?: number;
  /** RFC 6298 2.1: 1 s before the first measurement. */
  initialMs?: number;
}


export class RttEstimator {
  /** Smoothed RTT in ms; 0 before the first sample. */
  srtt = 0;
  /** Smoothed mean deviation in ms (Linux mdev_us / 4, what tcp_info reports as rttvar). */
  get rttvar(): number {
    return this.mdev4 / 4;
  }
  /** Linux mdev_us: 4 x the smoothed mean deviation. */
  private mdev4 = 0;
  /** Linux mdev_max_us: the largest mdev4 in the current round trip, at least the minimum. */
  private mdevMax = 0;
  /** Linux rttvar_us: the RTO's variance term, following mdevMax round by round. */
  private varTerm = 0;
  /** Linux rtt_seq: SND.NXT when the round trip began; an ACK beyond it ends the round. */
  private rttSeq = 0;
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

  /**
   * Linux tcp_rtt_estimator: fold a measurement into SRTT (gain 1/8) and the mean deviation
   * (gain 1/4, only 1/32 for the part of a decrease beyond the deviation, so that a shorter
   * RTT does not raise the RTO); once per round trip (an ACK beyond rtt_seq, SND.NXT then)
   * the variance term decays a quarter of the way to the round's largest deviation, which
   * starts at the minimum RTO. Then tcp_set_rto: RTO = SRTT + that term. `una` is the ACK,
   * `nxt` SND.NXT.
   */
  sample(rttMs: number, una = 0, nxt = 0): void {
    const m = Math.max(rttMs, 0.001);
    if (m < this.minSample) this.minSample = m;
    this.lastSample = m;
    if (this.srtt === 0) {
      this.srtt = m;
      this.mdev4 = 2 * m; // RTO = 3 RTT at first
      this.varTerm = Math.max(this.mdev4, this.minMs);
      this.mdevMax = this.varTerm;
      this.rttSeq = nxt;
    } else {
      let err = m - this.srtt;
      this.srtt += err / 8;
      if (err < 0) {
        err = -err - this.mdev4 / 4;
        if (err > 0) err /= 8;
      } else err -= this.mdev4 / 4;
      this.mdev4 += err;
      if (this.mdev4 > this.mdevMax) {
        this.mdevMax = this.mdev4;
        if (this.mdevMax > this.varTerm) this.varTerm = this.mdevMax;
      }
      if (seqGt(una, this.rttSeq)) {
        if (this.mdevMax < this.varTerm) this.varTerm -= (this.varTerm - this.mdevMax) / 4;
        this.rttSeq = nxt;
        this.mdevMax = this.minMs;
      }
    }
    this.baseRto = this.srtt + this.varTerm;
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
   * An ACK for new data. As Linux's tcp_ack_update_rtt: the RTT measured from our send times
   * (sentRtt, ms, -1 when the ACK gives none: see RackState.sentTimeRtt), else from its
   * timestamp echo (tsEcr, 0 when absent) if it is newer than our last retransmission, else
   * from the timed segment once it is covered. `nxt` is the highest sequence number sent
   * (Linux snd_nxt). Returns whether a sample was taken.
   */
  onAck(ack: number, tsEcr: number, now: number, tsNow: number, nxt: number, sentRtt = -1): boolean {
    if (sentRtt >= 0) {
      this.timing = false;
      this.sample(sentRtt, ack, nxt);
      return true;
    }
    if (tsEcr !== 0 && ((tsEcr - this.lastRetransmitTs) | 0) >= 0) {
      const rtt = (tsNow - tsEcr) >>> 0;
      this.timing = false;
      if (rtt < 0x7fffffff) {
        this.sample(Math.max(rtt, 1), ack, nxt);
        return true;
      }
      return false;
    }
    if (this.timing && seqGt(ack, this.timedSeq)) {
      this.sample(now - this.timedAt, ack, nxt);
      this.timing = false;
      return true;
    }
    return false;
  }
}
