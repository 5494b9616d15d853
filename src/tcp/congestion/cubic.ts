// CUBIC (RFC 9438): the window grows as a cubic function of the time since the last
// reduction, centred on the window where the loss happened (W_max), with a Reno-friendly
// lower bound. Recovery itself (RFC 6582 / RFC 6675 steps) is the same as for NewReno and
// lives in recovery/.

import { type CongestionControl, initialWindow } from './congestion.ts';

/** RFC 9438 4.5 and 4.6: beta_cubic = 0.7, C = 0.4. */
const BETA = 0.7;
const C = 0.4;
/** RFC 9438 4.3: alpha_cubic = 3 (1 - beta) / (1 + beta). */
const ALPHA = (3 * (1 - BETA)) / (1 + BETA);

export class Cubic implements CongestionControl {
  readonly name = 'cubic';
  cwnd: number;
  ssthresh = 0x7fffffff;
  /** W_max in segments: the window just before the last reduction. */
  wMax = 0;
  /** Time (ms) the current congestion avoidance epoch started; -1 before the first ACK of one. */
  epochStart = -1;
  /** K in seconds (RFC 9438 eq. 2). */
  k = 0;
  /** The Reno-friendly estimate W_est in segments (RFC 9438 4.3). */
  wEst = 0;
  /** Window at the epoch start, in segments (cwnd_epoch). */
  private cwndEpoch = 0;
  /** cwnd_prior in segments: the window just before the last reduction (0 before any). */
  private cwndPrior = 0;

  constructor(readonly mss: number) {
    this.cwnd = initialWindow(mss);
  }

  /** RFC 9438 eq. 1: W_cubic(t) = C (t - K)^3 + W_max, t in seconds, result in segments. */
  windowAt(tSeconds: number): number {
    return C * (tSeconds - this.k) ** 3 + this.wMax;
  }

  onAck(ackedBytes: number, now: number, rttMs: number): void {
    if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(ackedBytes, this.mss); // slow start as RFC 5681 (RFC 9438 4.10)
      return;
    }
    const segments = this.cwnd / this.mss;
    if (this.epochStart < 0) {
      this.epochStart = now;
      this.cwndEpoch = segments;
      if (this.wMax < segments) {
        // No loss yet (or the window grew past W_max): K = 0, W_max = cwnd (RFC 9438 4.2).
        this.wMax = segments;
        this.k = 0;
      } else {
        this.k = Math.cbrt((this.wMax - this.cwndEpoch) / C); // RFC 9438 eq. 2
      }
      this.wEst = segments;
    }
    const t = (now - this.epochStart) / 1000;
    const rtt = rttMs > 0 ? rttMs / 1000 : 0.1;
    // Reno-friendly region (RFC 9438 4.3, eq. 4): W_est grows by alpha_cubic per window,
    // and by Reno's 1 once it has reached cwnd_prior (RFC 9438 4.3: "SHOULD set alpha_cubic
    // to 1"), where Reno would be growing at 1 from a window halved further.
    const alpha = this.wEst >= this.cwndPrior ? 1 : ALPHA;
    this.wEst += (alpha * (ackedBytes / this.mss)) / segments;
    let target = this.windowAt(t + rtt);
    // RFC 9438 4.4/4.5: the target lies within [cwnd, 1.5 cwnd].
    if (target < segments) target = segments;
    if (target > 1.5 * segments) target = 1.5 * segments;
    let next: number;
    if (this.windowAt(t) < this.wEst) next = this.wEst;
    else next = segments + ((target - segments) / segments) * (ackedBytes / this.mss);
    this.cwnd = Math.max(this.cwnd, Math.floor(next * this.mss));
  }

  /** RFC 9438 4.6 and 4.7 (fast convergence): remember W_max, ssthresh = beta * cwnd. */
  onCongestionEvent(): void {
    const segments = this.cwnd / this.mss;
    this.cwndPrior = segments;
    this.wMax = segments < this.wMax ? (segments * (1 + BETA)) / 2 : segments;
    this.ssthresh = Math.max(Math.floor(this.cwnd * BETA), 2 * this.mss);
    this.epochStart = -1;
  }

  /** RFC 9438 4.6: after the reduction cwnd = ssthresh. */
  cwndAfterRecovery(): number {
    return this.ssthresh;
  }

  onTimeout(): void {
    this.onCongestionEvent();
    this.cwnd = this.mss;
  }

  onIdleRestart(): void {
    this.cwnd = Math.min(this.cwnd, initialWindow(this.mss));
    this.epochStart = -1;
  }
}
