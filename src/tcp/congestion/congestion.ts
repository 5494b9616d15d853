// The congestion controller's window arithmetic, apart from loss detection and recovery:
// the sender finds losses and runs recovery (recovery/), and asks the controller how the
// congestion window (cwnd) and slow start threshold (ssthresh) change. This is Linux's
// split between tcp_input.c and a tcp_congestion_ops (ssthresh, cong_avoid): NewReno and
// CUBIC implement it, and congestion/choose.ts is the one place that picks one.

export interface CongestionControl {
  readonly name: string;
  /** The sender's MSS when the controller was made: its unit of growth. */
  readonly mss: number;
  /** Congestion window in bytes. */
  cwnd: number;
  /** Slow start threshold in bytes. */
  ssthresh: number;
  /** New data was acknowledged outside recovery (RFC 5681 3.1). rttMs is the latest smoothed RTT or 0. */
  onAck(ackedBytes: number, now: number, rttMs: number): void;
  /**
   * A loss was detected and recovery starts (RFC 5681 3.2 step 2, RFC 9438 4.6): set
   * ssthresh (the multiplicative decrease). The recovery algorithm then sets cwnd from it.
   */
  onCongestionEvent(flightSize: number, now: number): void;
  /** The window to continue from when recovery ends (RFC 6582 3.2 step 6; RFC 9438 4.6). */
  cwndAfterRecovery(flightSize: number): number;
  /** The retransmission timer expired (RFC 5681 3.1 equation 4, and the loss window). */
  onTimeout(flightSize: number, now: number): void;
  /** RFC 5681 4.1: after an idle period longer than an RTO, restart from the restart window. */
  onIdleRestart(): void;
}

export type CongestionName = 'newreno' | 'cubic';

/** RFC 5681 3.1: IW = min(4*SMSS, max(2*SMSS, 4380)); Linux uses 10 segments (RFC 6928). */
export function initialWindow(mss: number): number {
  return 10 * mss;
}
