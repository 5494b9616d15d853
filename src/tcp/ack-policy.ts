// When to acknowledge (RFC 9293 3.8.6.3, RFC 1122 4.2.3.2, RFC 5681 4.2): the one place
// that decides it. An ACK is owed in one of four ways:
//   - now: at the end of the current event (out-of-order data, a filled gap, a duplicate, a
//     window that must be told, every second full-sized segment: RFC 5681 4.2, Linux's
//     __tcp_ack_snd_check; a super-frame from segmentation offload counts as its segments,
//     so it is acknowledged once, as Linux acknowledges a GRO packet);
//   - at the end of the receive batch: a quick-ACK owed for less than two segments' worth;
//   - at the end of this event-loop turn: the ACK of a peer's FIN waits for the
//     application's answer, so that our FIN carries it (Linux's delayed ACK in "pingpong"
//     mode after tcp_fin);
//   - delayed: on the delayed ACK deadline, unless a segment carries it first.
// Any segment with ACK set pays every debt (onAckSent).
//
// Quick-ACK mode (Linux's icsk_ack.quick): the first data segments of a connection, and the
// segments after a duplicate or an out-of-order arrival, are acknowledged without delay, so
// that the sender's slow start and loss recovery are not held up by our delayed ACK.

/** What the policy needs from its connection to act on a decision. */
export interface AckHost {
  /** Inside a receive batch: queue the connection for the batch's end and return true. */
  deferToBatchEnd(): boolean;
  /** Queue the connection for the end of this event-loop turn. */
  deferToEndOfTurn(): void;
  readonly delayedAckArmed: boolean;
  armDelayedAck(): void;
  cancelDelayedAck(): void;
}

export class AckPolicy {
  /** An ACK is owed at the end of this event. */
  now = false;
  /** An ACK is owed at the end of this event-loop turn (the layer keeps the list). */
  endOfTurn = false;
  /** Full-sized segments received since our last ACK (a super-frame counts as several). */
  private segments = 0;
  /** ACKs still to send without delay (quick-ACK mode). */
  private quick = 0;
  /** In-order data has arrived before (Linux: icsk_ack.ato is set). */
  private dataSeen = false;

  constructor(private readonly host: AckHost) {}

  /** Owe an ACK at the end of this event. */
  ackNow(): void {
    this.now = true;
  }

  /**
   * Linux's tcp_incr_quickack: the next ACKs go at once, as many as half the window holds
   * full segments (at least 2), at most `max`.
   */
  enterQuickAck(max: number, window: number, mss: number): void {
    const n = Math.min(max, Math.max(2, Math.floor(window / (2 * mss))));
    if (n > this.quick) this.quick = n;
  }

  /**
   * In-order data of len bytes was delivered (fullSize: one peer segment's payload). RFC
   * 1122 4.2.3.2 / RFC 5681 4.2: ACK at least every second full-sized segment (once for a
   * whole receive batch, at its end); else delay.
   */
  onInOrderData(len: number, fullSize: number, maxQuick: number, window: number, mss: number): void {
    // Linux tcp_event_data_recv: the first data of a connection starts quick-ACK mode.
    if (!this.dataSeen) {
      this.dataSeen = true;
      if (maxQuick > 0) this.enterQuickAck(maxQuick, window, mss);
    }
    this.segments += len >= fullSize ? Math.floor(len / fullSize) : 0.5;
  }

  /** After in-order data that did not need an ACK at once for another reason. */
  afterInOrderData(): void {
    if (this.segments >= 2) {
      // Not put off to the end of a receive batch: a Linux sender clocked by one ACK per
      // batch (about 8 segments on a TAP without offloads) kept a quarter of its rate at 3%
      // loss (bench:loss, push: 4.9 MB/s against 12 to 20 with an ACK per 2 segments).
      this.now = true;
    } else if (this.quick > 0) {
      if (!this.host.deferToBatchEnd()) this.now = true;
    } else if (!this.now && !this.host.delayedAckArmed) {
      this.host.armDelayedAck();
    }
  }

  /**
   * The peer's FIN arrived in order. In a passive close the application usually answers at
   * once with its own FIN: the ACK waits for the end of this turn and rides on it (RFC 1122
   * 4.2.3.2 allows the delay); otherwise it goes now.
   */
  onFinReceived(passiveClose: boolean): void {
    if (passiveClose && !this.now) this.host.deferToEndOfTurn();
    else this.now = true;
    this.host.cancelDelayedAck();
  }

  /** The end of a receive batch: its data gets one ACK if two segments' worth came. */
  onBatchEnd(): void {
    if (this.segments >= 2 || (this.quick > 0 && this.segments > 0)) this.now = true;
  }

  /** A segment with ACK set went out: every ACK owed is paid. */
  onAckSent(): void {
    this.host.cancelDelayedAck();
    // Linux tcp_dec_quickack_mode: one quick ACK used per segment acknowledged.
    if (this.quick > 0 && this.segments > 0) this.quick = Math.max(0, this.quick - Math.max(1, Math.floor(this.segments)));
    this.segments = 0;
    this.now = false;
    this.endOfTurn = false;
  }

  /** Takes the "now" debt (the caller sends the ACK when it returns true). */
  takeNow(): boolean {
    const owed = this.now;
    this.now = false;
    return owed;
  }

  /** Takes the end-of-turn debt. */
  takeEndOfTurn(): boolean {
    const owed = this.endOfTurn;
    this.endOfTurn = false;
    return owed;
  }
}
