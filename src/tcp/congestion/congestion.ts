// The congestion controller's window arithmetic, apart from the sender: the connection
// detects losses and drives recovery (RFC 5681 3.2, RFC 6582), and asks the controller how
// the congestion window (cwnd) and slow start threshold (ssthresh) change. NewReno and CUBIC
// implement it.

export interface CongestionControl {
  readonly name: string;
  /** Congestion window in bytes. */
  cwnd: number;
  /** Slow start threshold in bytes. */
  ssthresh: number;
  /** New data was acknowledged outside recovery (RFC 5681 3.1). rttMs is the latest smoothed RTT or 0. */
  onAck(ackedBytes: number, now: number, rttMs: number): void;
  /** Three duplicate ACKs: fast retransmit starts (RFC 5681 3.2 steps 2-3). */
  enterRecovery(flightSize: number, now: number): void;
  /** A further duplicate ACK during recovery (RFC 5681 3.2 step 4). */
  onRecoveryDupAck(): void;
  /** A partial ACK during NewReno recovery (RFC 6582 3.2 step 5). */
  onPartialAck(ackedBytes: number): void;
  /** The ACK that ends recovery (RFC 6582 3.2 step 6). */
  exitRecovery(flightSize: number): void;
  /** The retransmission timer expired (RFC 5681 3.1 equation 4, and loss window). */
  onTimeout(flightSize: number, now: number): void;
  /** RFC 5681 4.1: after an idle period longer than an RTO, restart from the restart window. */
  onIdleRestart(): void;
}

export type CongestionName = 'newreno' | 'cubic';

/** RFC 5681 3.1: IW = min(4*SMSS, max(2*SMSS, 4380)); Linux uses 10 segments (RFC 6928). */
export function initialWindow(mss: number): number {
  return 10 * mss;
}
