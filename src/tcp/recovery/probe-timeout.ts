// RFC 8985 7.2: when a tail loss probe is due. With SACK, a probe timeout (PTO) of two round
// trips after the last new data (plus the peer's delayed ACK when only one segment is out),
// so that a lost tail of the flight is found by SACK in a few round trips rather than by the
// retransmission timeout; never later than the RTO, which the probe then replaces (the
// timer code runs a due probe before a due RTO). The probe itself is in recovery/tlp.ts.

import { seqSub } from '../seq.ts';
import type { Tcb } from '../tcb.ts';
import { Deadline } from '../timers/deadlines.ts';

/** RFC 8985 7.2: WCDelAckT, the worst-case delayed ACK timer of the peer. */
const WORST_CASE_DELAYED_ACK_MS = 200;
/** Linux's TCP_TIMEOUT_MIN_US (2 ms), added so that timer slack does not fire it early. */
const TIMEOUT_MIN_MS = 2;

export function armTailLossProbe(c: Tcb): void {
  const r = c.recovery;
  if (!c.sackPermitted || !c.config.tailLossProbe || r.inRecovery || r.tlpOutstanding || !c.rtt.hasSample) return;
  const inFlight = seqSub(c.snd.max, c.snd.una);
  if (inFlight === 0) {
    c.timers.clear(Deadline.TailLossProbe);
    return;
  }
  // Linux tcp_schedule_loss_probe: 2 SRTT, plus tcp_rto_min for a lone segment (the
  // peer's delayed ACK), else plus TCP_TIMEOUT_MIN.
  const pto = 2 * c.rtt.srtt + (inFlight <= c.snd.mss ? WORST_CASE_DELAYED_ACK_MS : TIMEOUT_MIN_MS);
  let at = c.now() + pto;
  // RFC 8985 7.2 TLP_calc_PTO and Linux: "If the RTO formula yields an earlier time, then
  // use that time" (a probe rather than a timeout: an RTO this close to 2 SRTT is a short one).
  const rto = c.timers.get(Deadline.Retransmit);
  if (rto !== 0 && at > rto) at = rto;
  c.setDeadline(Deadline.TailLossProbe, at);
}
