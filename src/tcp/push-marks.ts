// Where the sender sets PSH (RFC 9293 3.9.1, RFC 1122 4.2.2.2), as Linux does: at the end of
// every application write (tcp_push marks the tail of what sendmsg queued, also when it must
// wait for room), and at least every half of the peer's largest window (forced_push), beside
// the segment that empties the send buffer. A Linux receiver acknowledges pushed data as soon
// as the application has read it (ICSK_ACK_PUSHED in tcp_measure_rcv_mss, tcp_cleanup_rbuf)
// instead of on its delayed-ACK timer (40 ms): a sender whose last frame of a round trip
// carries no PSH waits that long whenever the ACK of the frame before it is lost.

import { seqGt, seqSub } from './seq.ts';

/** Write ends remembered at most; more (writes faster than segments go) merge into the newest. */
const MAX_MARKS = 16;

export class PushMarks {
  /** Sequence numbers just after each write's last byte, oldest first (a ring, made at the first write). */
  private marks: Uint32Array | null = null;
  private head = 0;
  private count = 0;
  /** The end of the last segment sent with PSH (Linux tp->pushed_seq). */
  private pushedSeq = 0;
  private pushedSet = false;

  /** An application write ended at sequence number `end`. */
  add(end: number): void {
    const marks = (this.marks ??= new Uint32Array(MAX_MARKS));
    if (this.count === MAX_MARKS) {
      marks[(this.head + this.count - 1) % MAX_MARKS] = end >>> 0;
      return;
    }
    marks[(this.head + this.count) % MAX_MARKS] = end >>> 0;
    this.count++;
  }

  /**
   * New data [start, end) is about to go: whether it carries PSH for a write end inside it
   * or because half of maxWindow has gone since the last PSH (Linux forced_push). Forgets
   * the marks it covers.
   */
  take(start: number, end: number, maxWindow: number): boolean {
    let push = false;
    const marks = this.marks;
    while (marks !== null && this.count > 0) {
      const m = marks[this.head]!;
      if (seqGt(m, end)) break;
      if (seqGt(m, start)) push = true;
      this.head = (this.head + 1) % MAX_MARKS;
      this.count--;
    }
    if (!push && this.pushedSet && seqSub(end, this.pushedSeq) > maxWindow >>> 1 && maxWindow > 0) push = true;
    if (!this.pushedSet) {
      this.pushedSeq = start;
      this.pushedSet = true;
    }
    if (push) this.pushedSeq = end;
    return push;
  }

}
