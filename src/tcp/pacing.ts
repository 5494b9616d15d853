// Pacing, as Linux's TCP-internal pacing (tcp_pacing_check, tcp_update_skb_after_send, with
// its earliest departure time tcp_wstamp_ns): a controller that sets a pacing rate (BBR,
// congestion/bbr.ts) has each data segment leave no earlier than its predecessor's length at
// that rate after the predecessor, instead of in bursts as ACKs open the window. A segment
// held back waits for Deadline.Pacing. Only data segments are paced; ACKs and the timers'
// probes are not (Linux paces tcp_write_xmit and the retransmit queue, not the timers' own
// sends).
//
// Linux wakes the sender with a high-resolution timer; Node's timers fire a millisecond late
// at best (the clock's timerSlackMs). A segment therefore may leave up to that much ahead of
// its time: waiting for a timer to come closer would idle the sender for a millisecond while
// nothing is in flight. In virtual time the slack is 0 and pacing is exact.

import type { Tcb } from './tcb.ts';
import { Deadline } from './timers/deadlines.ts';

/** True when pacing holds the next data segment back; the pacing timer is then set. */
export function pacingHolds(c: Tcb): boolean {
  const rate = c.cc.pacingRate;
  if (!rate) return false;
  const at = c.pacingNextAt - c.ctx.timerSlackMs;
  if (c.now() >= at) return false;
  c.setDeadline(Deadline.Pacing, at);
  return true;
}

/** `len` bytes of data went out: the next may go len / rate after this one's time. */
export function pacingSent(c: Tcb, len: number): void {
  const rate = c.cc.pacingRate;
  if (!rate) return;
  c.pacingNextAt = Math.max(c.pacingNextAt, c.now()) + len / rate;
}
