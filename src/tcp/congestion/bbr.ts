// BBR (v1), as Linux's tcp_bbr.c (Cardwell et al., "BBR: Congestion-Based Congestion
// Control", ACM Queue 2016; draft-cardwell-iccrg-bbr-congestion-control-00): instead of
// reading every loss as congestion, the sender models the path from the delivery rate
// samples (recovery/delivery-rate.ts): its bottleneck bandwidth (the largest delivery rate
// over the last 10 round trips) and its round-trip propagation time (the smallest RTT over
// the last 10 s). It paces at the bandwidth times a gain that cycles to probe for more
// (1.25) and to drain the queue it made (0.75), and keeps at most twice the product in
// flight. Random loss does not shrink the window, so BBR keeps a lossy path full where
// Reno and CUBIC, at about 1.22/sqrt(p) segments per round trip (Mathis et al. 1997),
// cannot: the reason Linux users choose it (`sysctl net.ipv4.tcp_congestion_control=bbr`).
//
// Like Linux's cong_control hook, BBR sets cwnd itself on every ACK (control()): the sender
// calls it instead of onAck and instead of PRR during recovery, where BBR conserves packets
// for one round trip and then grows back (bbr_set_cwnd_to_recover_or_restore). Not
// implemented: the long-term bandwidth estimate for token-bucket policers (Linux's lt_bw),
// and PROBE_RTT's marking of its own samples as application-limited.

import { type CongestionControl, initialWindow, type RateSample } from './congestion.ts';

type Mode = 'startup' | 'drain' | 'probe-bw' | 'probe-rtt';

/** 2/ln(2): the smallest gain that doubles the delivery rate every round (bbr_high_gain). */
const HIGH_GAIN = 2885 / 1000;
/** The inverse of HIGH_GAIN: drains in one round the queue STARTUP made (bbr_drain_gain). */
const DRAIN_GAIN = 1000 / 2885;
/** cwnd as a multiple of the BDP in PROBE_BW (bbr_cwnd_gain). */
const CWND_GAIN = 2;
/** PROBE_BW's pacing gains, one per phase of a min_rtt each (bbr_pacing_gain). */
const PACING_GAINS = [5 / 4, 3 / 4, 1, 1, 1, 1, 1, 1];
const CYCLE_LEN = PACING_GAINS.length;
/** A new cycle starts at a random phase, never the draining one (bbr_cycle_rand). */
const CYCLE_RAND = 7;
/** The bandwidth filter's window in round trips (bbr_bw_rtts = CYCLE_LEN + 2). */
const BW_ROUNDS = CYCLE_LEN + 2;
/** The min_rtt filter's window (bbr_min_rtt_win_sec). */
const MIN_RTT_WINDOW_MS = 10_000;
/** Time spent at the minimum window in PROBE_RTT (bbr_probe_rtt_mode_ms). */
const PROBE_RTT_MS = 200;
/** The smallest window, in segments (bbr_cwnd_min_target). */
const CWND_MIN_SEGMENTS = 4;
/** STARTUP ends after this many rounds without 25% more bandwidth (bbr_full_bw_thresh, _cnt). */
const FULL_BW_GROWTH = 5 / 4;
const FULL_BW_ROUNDS = 3;
/** Pace 1% below the estimate, so that queues drain (bbr_pacing_margin_percent). */
const PACING_MARGIN = 0.99;
/** Below this rate a super-frame is one segment (bbr_min_tso_rate, 1.2 Mbit/s, in bytes/ms). */
const MIN_TSO_RATE = 1_200_000 / 8 / 1000;
/** ACK aggregation: window of the estimate in rounds, its cap in time (bbr_extra_acked_*). */
const EXTRA_ACKED_ROUNDS = 5;
const EXTRA_ACKED_MAX_MS = 100;
/** The largest super-frame Linux sizes for (GSO_LEGACY_MAX_SIZE - 1 - MAX_TCP_HEADER), and 0x7f segments. */
const MAX_FRAME_BYTES = 65_536 - 1 - 320;
const MAX_FRAME_SEGMENTS = 0x7f;
/** Linux's TCP_INIT_CWND, in segments: the window before any RTT is known. */
const INIT_CWND_SEGMENTS = 10;

/**
 * A windowed running maximum over three samples (Kathleen Nichols' algorithm, Linux's
 * lib/minmax.c): the best, second best and third best in the last `window` units of time.
 */
class WindowedMax {
  private readonly t = [0, 0, 0];
  private readonly v = [0, 0, 0];

  get value(): number {
    return this.v[0]!;
  }

  reset(t: number, v: number): void {
    this.t[0] = this.t[1] = this.t[2] = t;
    this.v[0] = this.v[1] = this.v[2] = v;
  }

  /** minmax_running_max. */
  update(window: number, t: number, v: number): void {
    const tt = this.t;
    const vv = this.v;
    if (v >= vv[0]! || t - tt[2]! > window) {
      this.reset(t, v);
      return;
    }
    if (v >= vv[1]!) {
      tt[2] = tt[1] = t;
      vv[2] = vv[1] = v;
    } else if (v >= vv[2]!) {
      tt[2] = t;
      vv[2] = v;
    }
    // minmax_subwin_update: age the samples out of the window.
    const dt = t - tt[0]!;
    if (dt > window) {
      tt[0] = tt[1]!;
      vv[0] = vv[1]!;
      tt[1] = tt[2]!;
      vv[1] = vv[2]!;
      tt[2] = t;
      vv[2] = v;
      if (t - tt[0]! > window) {
        tt[0] = tt[1]!;
        vv[0] = vv[1]!;
        tt[1] = tt[2]!;
        vv[1] = vv[2]!;
      }
    } else if (tt[1] === tt[0] && dt > window / 4) {
      tt[2] = tt[1] = t;
      vv[2] = vv[1] = v;
    } else if (tt[2] === tt[1] && dt > window / 2) {
      tt[2] = t;
      vv[2] = v;
    }
  }
}

export class Bbr implements CongestionControl {
  readonly name = 'bbr';
  cwnd: number;
  /** BBR does not use ssthresh to grow; it is set on leaving STARTUP, for tcp_info (as Linux). */
  ssthresh = 0x7fffffff;
  /** Bytes per ms to pace at; 0 before the first RTT is known (then output is not paced). */
  pacingRate = 0;

  mode: Mode = 'startup';
  /** Round trips counted by the delivered count (bbr->rtt_cnt), and the one that ends this round. */
  rounds = 0;
  private nextRoundDelivered = 0;
  private roundStart = false;
  /** Bottleneck bandwidth samples in segments per ms, windowed by rounds. */
  private readonly bw = new WindowedMax();
  /** Round-trip propagation time estimate (ms; Infinity before a sample) and when it was taken. */
  minRtt = Infinity;
  private minRttAt = -1;
  pacingGain = HIGH_GAIN;
  cwndGain = HIGH_GAIN;
  /** STARTUP's exit test (bbr_check_full_bw_reached). */
  fullBandwidthReached = false;
  private fullBw = 0;
  private fullBwRounds = 0;
  private cycleIndex = 0;
  private cycleStart = 0;
  /** The congestion phase at the last ACK (bbr->prev_ca_state) and packet conservation. */
  private previousPhase: RateSample['phase'] = 'open';
  private packetConservation = false;
  /** The window before recovery or PROBE_RTT, to restore afterwards (bbr->prior_cwnd, segments). */
  private priorCwnd = 0;
  private probeRttDoneAt = 0;
  private probeRttRoundDone = false;
  private idleRestart = false;
  private hasSeenRtt = false;
  // ACK aggregation (bbr_update_ack_aggregation): segments ACKed beyond what bw predicts.
  private ackEpochAt = 0;
  private ackEpochAcked = 0;
  private readonly extraAcked = [0, 0];
  private extraAckedIndex = 0;
  private extraAckedRounds = 0;
  private started = false;
  private random: number;

  /** `seed` chooses the phase each PROBE_BW cycle starts in, as Linux's get_random_u32_below. */
  constructor(
    readonly mss: number,
    seed: number,
  ) {
    this.cwnd = initialWindow(mss);
    this.random = seed >>> 0 || 1;
  }

  /** The bandwidth estimate, segments per ms (bbr_max_bw). */
  get bandwidth(): number {
    return this.bw.value;
  }

  // The loss-based hooks do little: BBR's window is its model's (control()).
  onAck(): void {}
  /** bbr_ssthresh: remember the window to restore after recovery; ssthresh is not reduced. */
  onCongestionEvent(): void {
    this.saveCwnd();
  }
  cwndAfterRecovery(): number {
    return this.cwnd;
  }
  /**
   * Linux's tcp_enter_loss with BBR: the window is saved, cwnd is one segment more than the
   * flight (nothing, once everything counts lost), and bbr_set_state(TCP_CA_Loss) forgets
   * STARTUP's bandwidth plateau and starts a round.
   */
  onTimeout(): void {
    this.saveCwnd();
    this.cwnd = this.mss;
    this.previousPhase = 'loss';
    this.fullBw = 0;
    this.roundStart = true;
  }
  /**
   * Sending resumes after an idle longer than the RTO (output.ts's RFC 5681 4.1 restart; Linux
   * tells BBR of every restart from an empty flight, bbr_cwnd_event(CA_EVENT_TX_START), and
   * halves cwnd per idle RTO in tcp_cwnd_restart, which this does not): pace at the estimate,
   * not above it, and start a new ACK aggregation epoch.
   */
  onIdleRestart(): void {
    this.idleRestart = true;
    this.ackEpochAcked = 0;
    this.ackEpochAt = -1;
    if (this.mode === 'probe-bw') this.setPacingRate(this.bandwidth, 1);
  }
  /** bbr_undo_cwnd: a spurious loss; STARTUP's plateau test starts over, cwnd stays. */
  undoCwnd(): number {
    this.fullBw = 0;
    this.fullBwRounds = 0;
    return this.cwnd;
  }

  /**
   * bbr_tso_segs_goal: a super-frame carries about 1 ms at the pacing rate (Linux's
   * sk_pacing_shift of 10), at least two segments above 1.2 Mbit/s; bytes.
   */
  frameGoal(maxBytes: number): number {
    const minSegments = this.pacingRate < MIN_TSO_RATE ? 1 : 2;
    const bytes = Math.min(this.pacingRate, maxBytes, MAX_FRAME_BYTES);
    return Math.min(Math.max(Math.floor(bytes / this.mss), minSegments), MAX_FRAME_SEGMENTS) * this.mss;
  }

  describe(): string {
    const bw = this.bandwidth * this.mss * 8 / 1000; // Mbit/s
    const rtt = this.minRtt === Infinity ? '-' : `${+this.minRtt.toFixed(3)} ms`;
    return `BBR ${this.mode.toUpperCase()}: pacing gain ${+this.pacingGain.toFixed(3)}, cwnd gain ${+this.cwndGain.toFixed(3)}, bottleneck ${+bw.toFixed(1)} Mbit/s, min_rtt ${rtt}`;
  }

  /** bbr_main: on every ACK, update the model, then the pacing rate and the window. */
  control(rs: RateSample): void {
    if (!this.started) this.start(rs);
    this.updateBandwidth(rs);
    this.updateAckAggregation(rs);
    this.updateCyclePhase(rs);
    this.checkFullBandwidthReached(rs);
    this.checkDrain(rs);
    this.updateMinRtt(rs);
    this.updateGains();
    this.setPacingRate(this.bandwidth, this.pacingGain, rs.srttMs);
    this.setCwnd(rs);
  }

  /** bbr_init, at the first ACK (the model's clocks start then). */
  private start(rs: RateSample): void {
    this.started = true;
    this.minRttAt = rs.now;
    this.nextRoundDelivered = rs.totalDelivered;
    this.ackEpochAt = rs.now;
    this.initPacingRate(rs.srttMs);
  }

  /** bbr_init_pacing_rate_from_rtt: the initial window per SRTT (1 ms before one), at HIGH_GAIN. */
  private initPacingRate(srttMs: number): void {
    const rtt = srttMs > 0 ? srttMs : 1;
    if (srttMs > 0) this.hasSeenRtt = true;
    this.pacingRate = (this.cwnd / rtt) * HIGH_GAIN * PACING_MARGIN;
  }

  /** bbr_set_pacing_rate: bandwidth x gain, never lowered during STARTUP. */
  private setPacingRate(bw: number, gain: number, srttMs = 0): void {
    if (!this.hasSeenRtt && srttMs > 0) this.initPacingRate(srttMs);
    const rate = bw * this.mss * gain * PACING_MARGIN;
    if (rate > 0 && (this.fullBandwidthReached || rate > this.pacingRate)) this.pacingRate = rate;
  }

  /** bbr_update_bw: count rounds, and take the delivery rate sample into the max filter. */
  private updateBandwidth(rs: RateSample): void {
    this.roundStart = false;
    if (rs.delivered < 0 || rs.intervalMs <= 0) return; // not a valid sample
    if (rs.priorDelivered >= this.nextRoundDelivered) {
      this.nextRoundDelivered = rs.totalDelivered;
      this.rounds++;
      this.roundStart = true;
      this.packetConservation = false;
    }
    if (rs.delivered === 0) return;
    const sample = rs.delivered / rs.intervalMs;
    // An application-limited sample only counts when it raises the estimate.
    if (!rs.appLimited || sample >= this.bandwidth) this.bw.update(BW_ROUNDS, this.rounds, sample);
  }

  /** bbr_update_ack_aggregation: how far ACKs run ahead of the estimate (GRO, ACK thinning). */
  private updateAckAggregation(rs: RateSample): void {
    if (rs.ackedSacked <= 0 || rs.delivered < 0 || rs.intervalMs <= 0) return;
    if (this.roundStart) {
      this.extraAckedRounds = Math.min(0x1f, this.extraAckedRounds + 1);
      if (this.extraAckedRounds >= EXTRA_ACKED_ROUNDS) {
        this.extraAckedRounds = 0;
        this.extraAckedIndex ^= 1;
        this.extraAcked[this.extraAckedIndex] = 0;
      }
    }
    let expected = this.ackEpochAt < 0 ? 0 : this.bandwidth * (rs.deliveredAt - this.ackEpochAt);
    if (this.ackEpochAt < 0 || this.ackEpochAcked <= expected) {
      this.ackEpochAcked = 0;
      this.ackEpochAt = rs.deliveredAt;
      expected = 0;
    }
    this.ackEpochAcked += rs.ackedSacked;
    const extra = Math.min(this.ackEpochAcked - expected, this.cwnd / this.mss);
    if (extra > this.extraAcked[this.extraAckedIndex]!) this.extraAcked[this.extraAckedIndex] = extra;
  }

  /** bbr_ack_aggregation_cwnd, segments. */
  private aggregationCwnd(): number {
    if (!this.fullBandwidthReached) return 0;
    const cap = this.bandwidth * EXTRA_ACKED_MAX_MS;
    return Math.min(Math.max(this.extraAcked[0]!, this.extraAcked[1]!), cap);
  }

  /** bbr_update_cycle_phase and bbr_is_next_cycle_phase. */
  private updateCyclePhase(rs: RateSample): void {
    if (this.mode !== 'probe-bw') return;
    const fullLength = rs.deliveredAt - this.cycleStart > this.minRtt;
    const gain = this.pacingGain;
    let next: boolean;
    if (gain === 1) next = fullLength;
    else if (gain > 1) next = fullLength && (rs.losses > 0 || rs.priorInflight >= this.inflight(this.bandwidth, gain));
    else next = fullLength || rs.priorInflight <= this.inflight(this.bandwidth, 1);
    if (next) this.advanceCycle(rs.deliveredAt);
  }

  private advanceCycle(at: number): void {
    this.cycleIndex = (this.cycleIndex + 1) % CYCLE_LEN;
    this.cycleStart = at;
  }

  /** bbr_check_full_bw_reached: STARTUP is over when three rounds grow less than 25%. */
  private checkFullBandwidthReached(rs: RateSample): void {
    if (this.fullBandwidthReached || !this.roundStart || rs.appLimited) return;
    if (this.bandwidth >= this.fullBw * FULL_BW_GROWTH) {
      this.fullBw = this.bandwidth;
      this.fullBwRounds = 0;
      return;
    }
    this.fullBwRounds++;
    this.fullBandwidthReached = this.fullBwRounds >= FULL_BW_ROUNDS;
  }

  /** bbr_check_drain: STARTUP -> DRAIN -> PROBE_BW once the queue it built is gone. */
  private checkDrain(rs: RateSample): void {
    if (this.mode === 'startup' && this.fullBandwidthReached) {
      this.mode = 'drain';
      this.ssthresh = this.inflight(this.bandwidth, 1) * this.mss;
    }
    if (this.mode === 'drain' && rs.inflight <= this.inflight(this.bandwidth, 1)) this.resetProbeBw(rs.deliveredAt);
  }

  /** bbr_reset_probe_bw_mode: a random phase, never the draining one first. */
  private resetProbeBw(at: number): void {
    this.mode = 'probe-bw';
    this.cycleIndex = CYCLE_LEN - 1 - (this.nextRandom() % CYCLE_RAND);
    this.advanceCycle(at);
  }

  /** bbr_update_min_rtt, with PROBE_RTT when the estimate is 10 s old. */
  private updateMinRtt(rs: RateSample): void {
    const expired = rs.now > this.minRttAt + MIN_RTT_WINDOW_MS;
    if (rs.rttMs >= 0 && (rs.rttMs < this.minRtt || expired)) {
      this.minRtt = rs.rttMs;
      this.minRttAt = rs.now;
    }
    if (expired && !this.idleRestart && this.mode !== 'probe-rtt') {
      this.mode = 'probe-rtt';
      this.saveCwnd();
      this.probeRttDoneAt = 0;
    }
    if (this.mode === 'probe-rtt') {
      if (this.probeRttDoneAt === 0 && rs.inflight <= CWND_MIN_SEGMENTS) {
        this.probeRttDoneAt = rs.now + PROBE_RTT_MS;
        this.probeRttRoundDone = false;
        this.nextRoundDelivered = rs.totalDelivered;
      } else if (this.probeRttDoneAt !== 0) {
        if (this.roundStart) this.probeRttRoundDone = true;
        if (this.probeRttRoundDone && rs.now > this.probeRttDoneAt) {
          // bbr_check_probe_rtt_done: a fresh min_rtt; back to the saved window.
          this.minRttAt = rs.now;
          this.cwnd = Math.max(this.cwnd, this.priorCwnd * this.mss);
          if (this.fullBandwidthReached) this.resetProbeBw(rs.deliveredAt);
          else this.mode = 'startup';
        }
      }
    }
    if (rs.delivered > 0) this.idleRestart = false;
  }

  /** bbr_update_gains. */
  private updateGains(): void {
    switch (this.mode) {
      case 'startup':
        this.pacingGain = HIGH_GAIN;
        this.cwndGain = HIGH_GAIN;
        break;
      case 'drain':
        this.pacingGain = DRAIN_GAIN;
        this.cwndGain = HIGH_GAIN;
        break;
      case 'probe-bw':
        this.pacingGain = PACING_GAINS[this.cycleIndex]!;
        this.cwndGain = CWND_GAIN;
        break;
      case 'probe-rtt':
        this.pacingGain = 1;
        this.cwndGain = 1;
        break;
    }
  }

  /**
   * bbr_bdp plus bbr_quantization_budget, in segments: gain x bandwidth x min_rtt, rounded
   * up, plus `extra`, then three frames more for the frames held back by TSO and the host,
   * rounded up to even, and two more while probing with gain 1.25.
   */
  private inflight(bw: number, gain: number, extra = 0): number {
    if (this.minRtt === Infinity) return INIT_CWND_SEGMENTS;
    const budgeted = Math.ceil(bw * this.minRtt * gain) + extra + 3 * (this.frameGoal(Infinity) / this.mss);
    const even = Math.ceil(budgeted / 2) * 2;
    return this.mode === 'probe-bw' && this.cycleIndex === 0 ? even + 2 : even;
  }

  /** bbr_set_cwnd with bbr_set_cwnd_to_recover_or_restore, in segments inside. */
  private setCwnd(rs: RateSample): void {
    const acked = rs.ackedSacked;
    const mss = this.mss;
    let cwnd = this.cwnd / mss;
    if (acked > 0) {
      let conserved = false;
      if (rs.losses > 0) cwnd = Math.max(cwnd - rs.losses, 1);
      const phase = rs.phase;
      const wasRecovering = this.previousPhase !== 'open';
      if (phase === 'recovery' && this.previousPhase !== 'recovery') {
        // Entering fast recovery: one round of packet conservation, from the flight.
        this.packetConservation = true;
        this.nextRoundDelivered = rs.totalDelivered;
        cwnd = rs.inflight + acked;
      } else if (wasRecovering && phase === 'open') {
        cwnd = Math.max(cwnd, this.priorCwnd);
        this.packetConservation = false;
      }
      this.previousPhase = phase;
      if (this.packetConservation) {
        cwnd = Math.max(cwnd, rs.inflight + acked);
        conserved = true;
      }
      if (!conserved) {
        // The window BBR aims at: cwnd_gain x BDP with the ACK aggregation allowance.
        const target = this.inflight(this.bandwidth, this.cwndGain, this.aggregationCwnd());
        if (this.fullBandwidthReached) cwnd = Math.min(cwnd + acked, target);
        else if (cwnd < target || rs.totalDelivered < INIT_CWND_SEGMENTS) cwnd += acked;
        cwnd = Math.max(cwnd, CWND_MIN_SEGMENTS);
      }
    }
    if (this.mode === 'probe-rtt') cwnd = Math.min(cwnd, CWND_MIN_SEGMENTS);
    this.cwnd = Math.max(1, Math.round(cwnd)) * mss;
  }

  /** bbr_save_cwnd: outside recovery and PROBE_RTT the window itself, else the larger. */
  private saveCwnd(): void {
    const segments = this.cwnd / this.mss;
    if (this.previousPhase === 'open' && this.mode !== 'probe-rtt') this.priorCwnd = segments;
    else this.priorCwnd = Math.max(this.priorCwnd, segments);
  }

  /** xorshift32: the cycle's start phase, from the connection's seed (deterministic runs). */
  private nextRandom(): number {
    let x = this.random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.random = x >>> 0;
    return this.random;
  }
}
