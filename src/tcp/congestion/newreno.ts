// NewReno's window (RFC 5681): slow start below ssthresh, congestion avoidance above, half
// the flight on a loss. The recovery steps (RFC 6582) are in recovery/newreno.ts.

import { type CongestionControl, initialWindow } from './congestion.ts';

export class NewReno implements CongestionControl {
  readonly name = 'newreno';
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 5681 3.1, "byte counting"). */
  private bytesAcked = 0;

  constructor(readonly mss: number) {
    this.cwnd = initialWindow(mss);
  }

  onAck(ackedBytes: number): void {
    if (this.cwnd < this.ssthresh) {
      // Slow start: grow by at most SMSS per ACK (RFC 5681 3.1 eq. 2, L = 1 SMSS). Linux grows
      // by every segment acknowledged (tcp_slow_start); tried in CUBIC (the same rule), it did
      // worse in bench:netsim at 10% loss.
      this.cwnd += Math.min(ackedBytes, this.mss);
      return;
    }
    // Congestion avoidance: about one SMSS per round trip (RFC 5681 3.1 eq. 3, byte counting).
    this.bytesAcked += ackedBytes;
    if (this.bytesAcked >= this.cwnd) {
      this.bytesAcked -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  /** RFC 5681 3.1 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS). */
  private reducedThreshold(flightSize: number): number {
    return Math.max(Math.floor(flightSize / 2), 2 * this.mss);
  }

  onCongestionEvent(flightSize: number): void {
    this.ssthresh = this.reducedThreshold(flightSize);
    this.bytesAcked = 0;
  }

  cwndAfterRecovery(flightSize: number): number {
    // RFC 6582 3.2 step 6, option 1: min(ssthresh, max(FlightSize, SMSS) + SMSS).
    return Math.min(this.ssthresh, Math.max(flightSize, this.mss) + this.mss);
  }

  onTimeout(flightSize: number): void {
    this.ssthresh = this.reducedThreshold(flightSize);
    this.cwnd = this.mss; // loss window LW = 1 SMSS
    this.bytesAcked = 0;
  }

  onIdleRestart(): void {
    this.cwnd = Math.min(this.cwnd, initialWindow(this.mss));
  }
}
