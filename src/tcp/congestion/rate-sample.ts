// What one ACK tells a model-based controller (congestion.ts RateSample), gathered from the
// sender's state as Linux's tcp_ack fills struct rate_sample (tcp_rate_gen, tcp_clean_rtx_queue)
// before calling the controller's cong_control. One sample object serves every connection:
// a controller reads it during control() and keeps nothing of it.

import type { Tcb } from '../tcb.ts';
import type { RateSample } from './congestion.ts';

const sample: RateSample = {
  now: 0,
  delivered: -1,
  intervalMs: -1,
  priorDelivered: 0,
  appLimited: false,
  ackedSacked: 0,
  losses: 0,
  rttMs: -1,
  srttMs: 0,
  priorInflight: 0,
  inflight: 0,
  totalDelivered: 0,
  deliveredAt: 0,
  phase: 'open',
};

/**
 * Runs c's controller on this ACK, after loss detection and before recovery sends (Linux's
 * tcp_cong_control comes between tcp_fastretrans_alert and tcp_xmit_recovery).
 * `priorInflight` is the pipe in bytes and `lostBefore` the lost count before the ACK.
 */
export function runRateControl(c: Tcb, priorInflight: number, lostBefore: number): void {
  const cc = c.cc;
  if (!cc.control) return;
  const log = c.sent;
  const rate = log.rate;
  const mss = c.snd.mss;
  const r = c.recovery;
  sample.now = c.now();
  sample.delivered = rate.sampleDelivered;
  sample.intervalMs = rate.sampleIntervalMs;
  sample.priorDelivered = rate.samplePriorDelivered;
  sample.appLimited = rate.sampleAppLimited;
  sample.ackedSacked = rate.newlyDelivered;
  sample.losses = log.lostTotal - lostBefore;
  // The RTT of the most recently sent segment this ACK delivered (rs->rtt_us, RACK's).
  sample.rttMs = rate.newlyDelivered > 0 && c.rack.hasDelivery ? c.rack.rtt : -1;
  sample.srttMs = c.rtt.srtt;
  sample.priorInflight = Math.ceil(priorInflight / mss);
  sample.inflight = Math.ceil(log.inFlight / mss);
  sample.totalDelivered = rate.delivered;
  sample.deliveredAt = rate.deliveredAt;
  sample.phase = !r.inRecovery ? 'open' : r.afterTimeout ? 'loss' : 'recovery';
  cc.control(sample);
  if (c.ctx.probe !== null) c.reportCongestion(cc.describe?.() ?? cc.name);
}
