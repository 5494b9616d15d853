// TIME-WAIT in a compact entry (RFC 9293 3.10.7.4 "TIME-WAIT STATE", 3.4.2), as Linux's
// inet_timewait_sock: once a connection reaches TIME-WAIT it is done (buffers, timers, the
// socket) and a small record of its 4-tuple, sequence numbers and timestamp answers for it
// for 2*MSL (tcp_timewait_state_process). The entries are capped (tcp_max_tw_buckets): past
// the cap a connection closes without TIME-WAIT, counted, as Linux does.

import { ConnectionTable } from './connection-table.ts';
import type { TcpCounters } from './counters.ts';
import { oowRateLimited } from './rate-limit.ts';
import { seqGt } from './seq.ts';
import { TCP_EVENTS, type TcpEvent } from './state.ts';
import type { TcpProbe } from './tcb.ts';
import { ACK, FIN, RST, SYN, type TcpSegment } from './tcp-segment.ts';
import type { TimerEntry, TimerQueue } from './timers/queue.ts';

/** What an entry remembers of its connection (about 150 bytes, against kilobytes for a Tcb). */
export class TimeWaitEntry implements TimerEntry {
  /** 'CLOSED' once the wait ended (what a probe sees). */
  state: 'TIME-WAIT' | 'CLOSED' = 'TIME-WAIT';
  timerAt = 0;
  timerIndex = -1;
  timerSeq = 0;
  /** When we last answered a segment we do not accept (Linux tw_last_oow_ack_time). */
  lastOowAckAt = -Infinity;

  constructor(
    private readonly table: TimeWaitTable,
    readonly localIp: number,
    readonly localPort: number,
    readonly remoteIp: number,
    readonly remotePort: number,
    /** SND.NXT (our FIN included) and RCV.NXT (the peer's FIN included). */
    readonly sndNxt: number,
    readonly rcvNxt: number,
    /** The window field of our last ACK (already scaled), as Linux's tw_rcv_wnd. */
    readonly window: number,
    readonly tsEnabled: boolean,
    readonly tsRecent: number,
  ) {}

  onTimer(): void {
    this.table.remove(this, TCP_EVENTS.timeWaitTimeout);
  }
}

/** What the table needs of its layer. */
export interface TimeWaitHost {
  readonly counters: TcpCounters;
  readonly probe: TcpProbe | null;
  readonly timers: TimerQueue<TimerEntry>;
  now(): number;
  /** RFC 5961 7: the challenge-ACK budget shared with the connections. */
  allowChallengeAck(): boolean;
  /** Sends <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> for the entry, with its window and timestamp. */
  sendTimeWaitAck(tw: TimeWaitEntry): void;
}

export class TimeWaitTable {
  private readonly table = new ConnectionTable<TimeWaitEntry>();

  constructor(
    private readonly host: TimeWaitHost,
    private readonly waitMs: number,
    /** tcp_invalid_ratelimit for the ACKs answering anything but the peer's FIN. */
    private readonly invalidRateLimitMs: number,
  ) {}

  get size(): number {
    return this.table.size;
  }

  find(localPort: number, remoteIp: number, remotePort: number): TimeWaitEntry | undefined {
    return this.table.find(localPort, remoteIp, remotePort);
  }

  all(): IterableIterator<TimeWaitEntry> {
    return this.table.all();
  }

  add(tw: TimeWaitEntry): void {
    this.table.add(tw);
    this.host.counters.timeWait = this.table.size;
    this.host.timers.schedule(tw, this.host.now() + this.waitMs);
  }

  /** The wait ended (timeout, reset, reuse): the entry is forgotten. */
  remove(tw: TimeWaitEntry, event: TcpEvent): void {
    if (tw.state === 'CLOSED') return;
    tw.state = 'CLOSED';
    this.host.timers.cancel(tw);
    this.table.remove(tw);
    this.host.counters.timeWait = this.table.size;
    const probe = this.host.probe;
    if (probe !== null) probe.tcpState(tw, 'TIME-WAIT', 'CLOSED', event);
  }

  /**
   * A segment for an entry (Linux tcp_timewait_state_process, RFC 9293 3.10.7.4). Returns
   * false when it is a new SYN that ends the wait (RFC 6191 2): the listener takes it then.
   */
  receive(tw: TimeWaitEntry, seg: TcpSegment, listening: boolean): boolean {
    const f = seg.flags;
    const counters = this.host.counters;
    if (f & RST) {
      // An exact reset ends the wait, as Linux with tcp_rfc1337 = 0 ("TIME-WAIT assassination", RFC 1337).
      if (seg.seq === tw.rcvNxt) this.remove(tw, TCP_EVENTS.resetReceived);
      else counters.drop('tcp-time-wait-rst');
      return true;
    }
    // RFC 7323 5.3 PAWS with the last timestamp the connection accepted.
    const paws = tw.tsEnabled && seg.hasTimestamp && ((seg.tsVal - tw.tsRecent) | 0) < 0;
    if (!paws && (f & (SYN | ACK)) === SYN && listening) {
      // RFC 6191 2: a SYN above RCV.NXT, or with a newer timestamp, reopens the 4-tuple.
      if (seqGt(seg.seq, tw.rcvNxt) || (tw.tsEnabled && seg.hasTimestamp && ((seg.tsVal - tw.tsRecent) | 0) > 0)) {
        this.remove(tw, TCP_EVENTS.timeWaitReused);
        return false;
      }
    }
    if (paws) counters.drop('tcp-paws');
    else if (seg.seq === tw.rcvNxt && seg.payloadLength === 0 && !(f & (SYN | FIN))) return true; // a bare ACK: nothing to say
    // "The only thing that can arrive in this state is a retransmission of the remote FIN.
    // Acknowledge it, and restart the 2 MSL timeout"; anything else gets the same ACK.
    if (f & FIN && !paws) this.host.timers.schedule(tw, this.host.now() + this.waitMs);
    else if (!paws) counters.drop('tcp-time-wait');
    // Anything but a retransmitted FIN is answered at most once per tcp_invalid_ratelimit
    // (Linux tcp_timewait_check_oow_rate_limit): two ends that disagree cannot ping-pong.
    if ((paws || !(f & FIN)) && oowRateLimited(tw, this.host.now(), this.invalidRateLimitMs)) {
      counters.invalidAcksSkipped++;
      return true;
    }
    // A SYN gets its ACK as a challenge ACK, within the shared budget (RFC 5961 4.2, 7).
    if (f & SYN && !this.host.allowChallengeAck()) {
      counters.drop('tcp-challenge-ack-limited');
      return true;
    }
    this.host.sendTimeWaitAck(tw);
    return true;
  }

  /** Every entry ends (the layer is closing). */
  clear(): void {
    for (const tw of [...this.table.all()]) this.remove(tw, TCP_EVENTS.stackClosed);
  }
}
