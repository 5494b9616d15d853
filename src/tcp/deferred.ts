// Work the layer's connections put off (the ACK policy's "end of the batch" and "end of the
// turn", ack-policy.ts): inside a batch of received frames a connection's output and its ACK
// wait for the batch's end, so that the batch's ACKs release one large frame and one ACK
// covers the batch's data (RFC 5681 4.2 allows acknowledging more than two segments at once,
// as Linux does for GRO-coalesced packets); the ACK of a peer's FIN waits for the end of the
// event-loop turn, to ride on the application's answer.

import { type Clock, reportTimerError } from '../util/clock.ts';

/** What a connection does when its deferred work comes due. */
export interface DeferredWorker {
  /** Queued for the end of the current receive batch (the list's own flag). */
  batchPending: boolean;
  onBatchEnd(): void;
  flushEndOfTurnAck(): void;
}

export class DeferredWork<C extends DeferredWorker> {
  /** Connections whose output (and ACK) waits for the end of the current receive batch. */
  private readonly batch: C[] = [];
  /** Connections owing an ACK at the end of this turn. */
  private endOfTurn: C[] = [];

  constructor(private readonly clock: Clock) {}

  /** Queues conn for the end of the receive batch (once). */
  toBatchEnd(conn: C): void {
    if (conn.batchPending) return;
    conn.batchPending = true;
    this.batch.push(conn);
  }

  /** The receive batch ended: every queued connection's output, once. */
  endBatch(): void {
    const pending = this.batch;
    try {
      for (let i = 0; i < pending.length; i++) {
        const conn = pending[i]!;
        conn.batchPending = false;
        // One connection's bug must not cost the others their output.
        try {
          conn.onBatchEnd();
        } catch (err) {
          reportTimerError(this.clock, err);
        }
      }
    } finally {
      for (let i = 0; i < pending.length; i++) pending[i]!.batchPending = false;
      pending.length = 0;
    }
  }

  /** Queues conn for the end of this event-loop turn: a 0 ms clock timer shared by every connection of the turn. */
  toEndOfTurn(conn: C): void {
    this.endOfTurn.push(conn);
    if (this.endOfTurn.length === 1) this.clock.setTimer(0, (this.onEndOfTurn ??= () => this.flushEndOfTurn()));
  }

  /** The 0 ms timer's callback, made at the first use. */
  private onEndOfTurn: (() => void) | null = null;

  private flushEndOfTurn(): void {
    const list = this.endOfTurn;
    this.endOfTurn = [];
    for (const conn of list) {
      try {
        conn.flushEndOfTurnAck();
      } catch (err) {
        reportTimerError(this.clock, err);
      }
    }
  }
}
