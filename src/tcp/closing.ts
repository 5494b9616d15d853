// Closing (RFC 9293 3.10.4 CLOSE, 3.10.5 ABORT, 3.6 and 3.4.2 TIME-WAIT): our FIN queued
// after the data, a reset to abort, the 2*MSL wait (handed to a compact entry, time-wait.ts),
// and the limits Linux puts on connections the application closed (orphans).

import { flushAck, sendReset } from './emit.ts';
import { output } from './output.ts';
import { isSynchronized, TCP_EVENTS, type TcpEvent, type TcpState } from './state.ts';
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

/**
 * The application closed the socket and nobody will read (Linux tcp_close with SOCK_DEAD):
 * the close goes on without it, unless orphans are too many (tcp_check_oom: reset); an
 * orphan that is or gets to FIN-WAIT-2 waits for the peer's FIN tcp_fin_timeout at most.
 */
export function orphan(c: Tcb): void {
  if (c.orphaned || c.state === 'CLOSED') return;
  c.orphaned = true;
  c.ctx.orphanCount(1);
  close(c);
  if ((c.state as TcpState) === 'CLOSED') return;
  if (c.ctx.checkOom(c, 0)) {
    c.ctx.counters.abortOnMemory++;
    abort(c, null, TCP_EVENTS.outOfResources);
    return;
  }
  if (c.state === 'FIN-WAIT-2') startFinWait2Timeout(c);
}

/** Linux tcp_fin_timeout: an orphan in FIN-WAIT-2 is dropped if the peer's FIN does not come. */
export function startFinWait2Timeout(c: Tcb): void {
  if (!c.timers.isSet(Deadline.Close)) c.setDeadline(Deadline.Close, c.now() + c.config.finWait2Ms);
}

/** Linux tcp_orphan_retries: the configured count; its 0 means 8 while the connection looks alive, else none. */
export function orphanRetries(c: Tcb, alive: boolean): number {
  const n = c.config.orphanRetries;
  return n === 0 && alive ? 8 : n;
}

/**
 * Linux tcp_out_of_resources, from an orphan's retransmission or probe timer: when orphans
 * are too many (counted double for one that sent nothing for 2 * RTO max) or the buffer
 * budget is past its high mark, the orphan is dropped, with a reset if it sent recently or
 * its peer's window is shut. Returns whether it was dropped.
 */
export function outOfResources(c: Tcb, doReset: boolean): boolean {
  const sinceSend = c.now() - c.lastSendTime;
  const shift = sinceSend > 2 * c.config.rtoMaxMs || !doReset ? 1 : 0;
  if (!c.ctx.checkOom(c, shift)) return false;
  c.ctx.counters.abortOnMemory++;
  if (sinceSend <= c.config.timeWaitMs || (c.snd.wnd === 0 && c.snd.una === c.snd.max)) doReset = true;
  if (doReset) abort(c, null, TCP_EVENTS.outOfResources);
  else c.destroy(null, TCP_EVENTS.outOfResources);
  return true;
}

/** ABORT (RFC 9293 3.10.5): send a reset in synchronized states and forget the connection. */
export function abort(c: Tcb, err: SystemError | null, event: TcpEvent = TCP_EVENTS.abortCall): void {
  if (c.state === 'CLOSED') return;
  if (isSynchronized(c.state) || c.state === 'SYN-RECEIVED') sendReset(c);
  c.destroy(err, event);
}

/**
 * TIME-WAIT only answers retransmitted FINs (RFC 9293 3.10.7.4): as Linux's tcp_time_wait,
 * a compact entry (time-wait.ts) takes over the 2*MSL wait and the connection is done. The
 * ACK of the peer's FIN owed now still goes (flushAck) before the connection is gone.
 */
export function enterTimeWait(c: Tcb, event: TcpEvent): void {
  c.transition(event);
  flushAck(c);
  c.ctx.enterTimeWait(c);
}

/** A retransmitted FIN reaching a connection in TIME-WAIT: acknowledge it (RFC 9293 3.10.7.4). */
export function restartTimeWait(c: Tcb): void {
  c.ack.ackNow();
}
