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
  /**
   * Linux's cong_control hook, for a model-based controller (BBR): called on every ACK
   * with its delivery rate sample, and then it alone sets cwnd: the sender calls neither
   * onAck nor PRR for it.
   */
  control?(rs: RateSample): void;
  /** Bytes per ms to pace at (Linux's sk_pacing_rate); absent or 0: not paced. */
  readonly pacingRate?: number;
  /** Payload of one super-frame given the link's most (Linux's tso_segs_goal); absent: the sender's own sizing. */
  frameGoal?(maxBytes: number): number;
  /** The controller's state in a few words, for the trace's congestion records. */
  describe?(): string;
  /** The window after a spurious loss is undone (Linux's undo_cwnd); absent: the larger of cwnd and priorCwnd. */
  undoCwnd?(priorCwnd: number): number;
}

/**
 * What one ACK tells a model-based controller (Linux's struct rate_sample with the socket
 * fields BBR reads), in segments and ms. delivered and intervalMs are -1 when the ACK gave
 * no valid delivery rate sample.
 */
export interface RateSample {
  now: number;
  /** Segments delivered over intervalMs, or -1. */
  delivered: number;
  intervalMs: number;
  /** The delivered count when the sampled segment was sent (rs->prior_delivered). */
  priorDelivered: number;
  /** The sampled segment was sent while the application had nothing more (rs->is_app_limited). */
  appLimited: boolean;
  /** Segments this ACK newly delivered, cumulatively or by SACK (rs->acked_sacked). */
  ackedSacked: number;
  /** Segments this ACK marked lost (rs->losses). */
  losses: number;
  /** This ACK's RTT from send times, ms, or -1 (rs->rtt_us). */
  rttMs: number;
  srttMs: number;
  /** Segments in flight before and after this ACK (rs->prior_in_flight, tcp_packets_in_flight). */
  priorInflight: number;
  inflight: number;
  /** Segments delivered since the connection began (tp->delivered), and when the last were. */
  totalDelivered: number;
  deliveredAt: number;
  /** Linux's congestion state: Open (or Disorder, CWR), Recovery, Loss (after a timeout). */
  phase: 'open' | 'recovery' | 'loss';
}

export type CongestionName = 'newreno' | 'cubic' | 'bbr';

/** RFC 5681 3.1: IW = min(4*SMSS, max(2*SMSS, 4380)); Linux uses 10 segments (RFC 6928). */
export function initialWindow(mss: number): number {
  return 10 * mss;
}
