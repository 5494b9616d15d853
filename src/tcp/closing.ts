// Closing (RFC 9293 3.10.4 CLOSE, 3.10.5 ABORT, 3.6 and 3.4.2 TIME-WAIT): our FIN queued
// after the data, a reset to abort, and the 2*MSL wait.

import { sendReset } from './emit.ts';
import { output } from './output.ts';
import { isSynchronized, TCP_EVENTS, type TcpEvent } from './state.ts';
import type { Tcb } from './tcb.ts';
import { Deadline } from './timers/deadlines.ts';
import type { SystemError } from '../util/errors.ts';

/** CLOSE: no more data from us; a FIN follows what is buffered. */
export function close(c: Tcb): void {
  if (c.finQueued) return;
  const finSeq = c.finSeq();
  switch (c.state) {
    case 'SYN-SENT':
      // RFC 9293 3.10.4: delete the TCB.
      c.destroy(null, TCP_EVENTS.closeInSynSent);
      return;
    case 'SYN-RECEIVED':
      // The FIN is queued until ESTABLISHED (RFC 9293 3.10.4).
      c.finQueued = true;
      c.finSequence = finSeq;
      return;
    case 'ESTABLISHED':
    case 'CLOSE-WAIT':
      c.finQueued = true;
      c.finSequence = finSeq;
      c.transition(TCP_EVENTS.closeCall);
      break;
    default:
      return;
  }
  output(c);
}

/** ABORT (RFC 9293 3.10.5): send a reset in synchronized states and forget the connection. */
export function abort(c: Tcb, err: SystemError | null, event: TcpEvent = TCP_EVENTS.abortCall): void {
  if (c.state === 'CLOSED') return;
  if (isSynchronized(c.state) || c.state === 'SYN-RECEIVED') sendReset(c);
  c.destroy(err, event);
}

/** TIME-WAIT only answers retransmitted FINs (RFC 9293 3.10.7.4): no buffers for 2*MSL. */
export function enterTimeWait(c: Tcb, event: TcpEvent): void {
  c.transition(event);
  c.sendBuffer.release();
  c.sent.release();
  c.reassembly.clear();
  c.scoreboard.clear();
  const t = c.timers;
  t.clear(Deadline.Retransmit);
  t.clear(Deadline.Persist);
  t.clear(Deadline.KeepAlive);
  t.clear(Deadline.DelayedAck);
  c.setDeadline(Deadline.Close, c.now() + c.config.timeWaitMs);
}

/** A retransmitted FIN in TIME-WAIT: acknowledge it and restart the 2 MSL wait (RFC 9293 3.10.7.4). */
export function restartTimeWait(c: Tcb): void {
  c.ack.ackNow();
  c.setDeadline(Deadline.Close, c.now() + c.config.timeWaitMs);
}
