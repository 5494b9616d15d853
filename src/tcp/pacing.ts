// Pacing, as Linux's TCP-internal pacing (tcp_pacing_check, tcp_update_skb_after_send): a
// controller that sets a pacing rate (BBR, congestion/bbr.ts) has each data segment leave
// no earlier than its predecessor's length at that rate after the predecessor, instead of
// in bursts as ACKs open the window. A segment held back waits for Deadline.Pacing. Only
// data segments are paced; ACKs and the timers' probes are not (Linux paces tcp_write_xmit
// and the retransmit queue, not the timers' own sends).

import type { Tcb } from './tcb.ts';
import { Deadline } from './timers/deadlines.ts';

/** True when pacing holds the next data segment back; the pacing timer is then set. */
export function pacingHolds(c: Tcb): boolean {
  const rate = c.cc.pacingRate;
  if (!rate) return false;
  const at = c.pacingNextAt;
  if (c.now() >= at) return false;
  c.setDeadline(Deadline.Pacing, at);
  return true;
}

/**
 * `len` bytes of data went out: the next may go len / rate later. A timer that fires late
 * (Node's fire at millisecond granularity at best: the context's timerSlackMs) lets the
 * sender catch up by that much, else a late timer would lower the rate.
 */
export function pacingSent(c: Tcb, len: number): void {
  const rate = c.cc.pacingRate;
  if (!rate) return;
  c.pacingNextAt = Math.max(c.pacingNextAt, c.now() - c.ctx.timerSlackMs) + len / rate;
}
