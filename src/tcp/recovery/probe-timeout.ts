// RFC 8985 7.2: when a tail loss probe is due. With SACK, a probe timeout (PTO) of two round
// trips after the last new data (plus the peer's delayed ACK when only one segment is out),
// so that a lost tail of the flight is found by SACK in a few round trips rather than by the
// retransmission timeout. The probe itself is in recovery/tlp.ts.

import { seqSub } from '../seq.ts';
import type { Tcb } from '../tcb.ts';
import { Deadline } from '../timers/deadlines.ts';

/** RFC 8985 7.2: WCDelAckT, the worst-case delayed ACK timer of the peer. */
const WORST_CASE_DELAYED_ACK_MS = 200;

export function armTailLossProbe(c: Tcb): void {
  const r = c.recovery;
  if (!c.sackPermitted || !c.config.tailLossProbe || r.inRecovery || r.tlpOutstanding || !c.rtt.hasSample) return;
  const inFlight = seqSub(c.snd.max, c.snd.una);
  if (inFlight === 0) {
    c.timers.clear(Deadline.TailLossProbe);
    return;
  }
  let pto = Math.max(2 * c.rtt.srtt, 10);
  if (inFlight <= c.snd.mss) pto += WORST_CASE_DELAYED_ACK_MS;
  const at = c.now() + pto;
  const rto = c.timers.get(Deadline.Retransmit);
  if (rto !== 0 && at >= rto) return;
  c.setDeadline(Deadline.TailLossProbe, at);
}
