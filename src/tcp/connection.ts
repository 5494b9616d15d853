// One TCP connection: the TCB (tcb.ts) with the calls its socket and its layer make, each
// handed to the file that holds the rule: opening here (RFC 9293 3.10.1, 3.10.7.2), segment
// arrival in input.ts (3.10.7), sending in output.ts, closing in closing.ts (3.10.4, 3.10.5),
// the timers in timers/timeouts.ts.

import { abort, close } from './closing.ts';
import { createCongestionControl } from './congestion/choose.ts';
import { flushAck, flushEndOfTurnAck, sendSyn } from './emit.ts';
import { segmentArrives, takeSynOptions } from './input.ts';
import { output } from './output.ts';
import { seqAdd } from './seq.ts';
import { canSendData, isSynchronized, TCP_EVENTS } from './state.ts';
import { Tcb, type TcpContext } from './tcb.ts';
import { FIN, type TcpSegment } from './tcp-segment.ts';
import { MEMORY_MIN } from './memory.ts';
import { Deadline } from './timers/deadlines.ts';
import { onTimer } from './timers/timeouts.ts';
import { windowScaleFor, windowUpdateDue } from './window.ts';
import type { SystemError } from '../util/errors.ts';

/** What a SYN cookie's timestamp carried back: the peer's SYN options (as Linux encodes them). */
export interface CookieOptions {
  windowScale: number;
  sackPermitted: boolean;
  tsRecent: number;
}

export class Connection extends Tcb {
  constructor(ctx: TcpContext, localIp: number, localPort: number, remoteIp: number, remotePort: number) {
    super(ctx, localIp, localPort, remoteIp, remotePort);
    if (ctx.config.windowScaling) this.offeredWscale = windowScaleFor(ctx.config.receiveBufferSize);
  }

  // ---------------------------------------------------------------------------------------
  // Opening (RFC 9293 3.10.1 OPEN call, 3.10.7.2 LISTEN state)

  private startSequence(iss: number): void {
    const snd = this.snd;
    snd.iss = iss;
    snd.una = iss;
    snd.nxt = iss;
    snd.max = iss;
    this.recovery.recover = iss;
  }

  /** Active open: send a SYN (RFC 9293 3.10.1). */
  openActive(): void {
    this.startSequence(this.ctx.isn(this.localIp, this.localPort, this.remoteIp, this.remotePort));
    this.transition(TCP_EVENTS.activeOpen);
    sendSyn(this, 'syn');
  }

  /**
   * Passive open from a SYN that reached a listener (RFC 9293 3.10.7.2): record the peer's
   * sequence number and options and answer SYN-ACK. `iss` is given when it is a SYN cookie.
   */
  openPassive(seg: TcpSegment, iss?: number): void {
    this.passive = true;
    this.startSequence(iss ?? this.ctx.isn(this.localIp, this.localPort, this.remoteIp, this.remotePort));
    this.rcv.irs = seg.seq;
    this.rcv.nxt = seqAdd(seg.seq, 1);
    takeSynOptions(this, seg);
    // RFC 7323 2.2: the window in a SYN is never scaled.
    const snd = this.snd;
    snd.wnd = seg.window;
    snd.maxWnd = snd.wnd;
    snd.wl1 = seg.seq;
    snd.wl2 = snd.iss;
    this.lastReceiveTime = this.now();
    this.transition(TCP_EVENTS.synOnListener);
    sendSyn(this, 'syn');
  }

  /**
   * A connection rebuilt from a valid SYN cookie (RFC 4987 3.6): our SYN-ACK went out
   * statelessly with ISS = cookie and only the MSS option, so nothing else was negotiated.
   */
  openFromCookie(irs: number, iss: number, mss: number, options: CookieOptions | null = null): void {
    this.passive = true;
    this.startSequence(iss);
    const snd = this.snd;
    const rcv = this.rcv;
    snd.nxt = seqAdd(iss, 1);
    snd.max = snd.nxt;
    rcv.irs = irs;
    rcv.nxt = seqAdd(irs, 1);
    rcv.adv = seqAdd(rcv.nxt, Math.min(this.config.receiveBufferSize, 0xffff));
    snd.wl1 = irs;
    snd.mss = Math.min(mss, this.ctx.mtu - 40);
    if (options) {
      // The options came back in the echoed timestamp (see syn-cookies.ts).
      this.tsEnabled = true;
      this.tsRecent = options.tsRecent;
      // The echoed value is not a clean send time: no RTT sample from it.
      this.rtt.onRetransmit(this.ctx.timestampNow());
      snd.mss -= 12;
      this.sackPermitted = options.sackPermitted;
      if (options.windowScale >= 0 && this.offeredWscale >= 0) {
        this.wscaleAgreed = true;
        snd.wscale = options.windowScale;
        rcv.wscale = this.offeredWscale;
      }
    }
    this.cc = createCongestionControl(this.config.congestion, snd.mss, snd.iss);
    this.lastReceiveTime = this.now();
    this.transition(TCP_EVENTS.cookieAck);
  }

  // ---------------------------------------------------------------------------------------
  // Application calls (RFC 9293 3.10.2 SEND, 3.10.4 CLOSE, 3.10.5 ABORT)

  /** SEND: buffers what fits and sends what the windows allow; returns bytes taken. */
  send(data: Uint8Array, off: number, len: number): number {
    const sb = this.sendBuffer;
    let room = len;
    const grow = sb.capacityFor(sb.length + Math.min(len, sb.free)) - sb.capacity;
    if (grow > 0 && !this.ctx.memory.allows(this.sendCharged, this.sendCharged + this.receiveCharged, grow)) {
      // No memory for a larger ring (Linux sk_wmem_schedule fails): it grows to tcp_wmem[0]
      // at most and the write waits for ACKs to free room in what the connection holds.
      room = Math.max(0, Math.max(sb.capacity, MEMORY_MIN) - sb.length);
    }
    const n = sb.append(data, off, Math.min(len, room));
    // Linux's tcp_push marks the tail of what a write queued, all of it or what fitted.
    if (n > 0) this.pushMarks.add(this.finSeq());
    this.syncMemory();
    // Written while ACKs of a receive batch are processed: it goes out with the batch's output.
    if (n > 0 && canSendData(this.state) && !this.ctx.deferToBatchEnd(this)) output(this);
    return n;
  }

  /** CLOSE: no more data from us; a FIN follows what is buffered. */
  close(): void {
    close(this);
  }

  /** ABORT: a reset in synchronized states, and the connection is forgotten. */
  abort(err: SystemError | null = null): void {
    abort(this, err);
  }

  /** The application read data: a grown window may be worth announcing (RFC 9293 3.8.6.2.2). */
  onAppRead(): void {
    this.syncMemory();
    if (!isSynchronized(this.state) || this.finReceived) return;
    if (windowUpdateDue(this)) {
      this.ack.ackNow();
      output(this);
    }
  }

  /** Path MTU discovery (RFC 1191): a smaller MTU on the path lowers our segment size. */
  lowerMss(mss: number): void {
    const limit = Math.max(mss - (this.tsEnabled ? 12 : 0), 64);
    if (limit < this.snd.mss) this.snd.mss = limit;
    this.pathMtu = Math.min(this.pathMtu, mss + 40);
  }

  setNoDelay(noDelay: boolean): void {
    this.noDelay = noDelay;
    if (noDelay && canSendData(this.state)) output(this);
  }

  /** TCP_USER_TIMEOUT (RFC 5482): 0 turns it off. */
  setUserTimeout(ms: number): void {
    this.userTimeoutMs = Math.max(0, ms);
  }

  setKeepAlive(enable: boolean, idleMs?: number): void {
    this.keepAlive = enable;
    if (idleMs !== undefined && idleMs > 0) this.keepAliveIdleMs = idleMs;
    this.keepAliveProbesSent = 0;
    if (enable && isSynchronized(this.state)) this.timers.set(Deadline.KeepAlive, this.now() + this.keepAliveIdleMs);
    else this.timers.clear(Deadline.KeepAlive);
    this.armTimer();
  }

  // ---------------------------------------------------------------------------------------
  // Calls from the layer

  /** A segment for this connection (RFC 9293 3.10.7). */
  receive(seg: TcpSegment): void {
    const len = seg.payloadLength;
    if (len > 0 && this.receiveCharged > 0 && !this.mayReceive(len) && !this.takeText(seg, len)) return;
    segmentArrives(this, seg);
    this.syncMemory();
  }

  private mayReceive(len: number): boolean {
    return this.ctx.memory.allows(this.receiveCharged, this.sendCharged + this.receiveCharged, len);
  }

  /**
   * No memory for the segment's text (Linux tcp_try_rmem_schedule): the out-of-order queue
   * goes first (tcp_prune_ofo_queue); if that is not enough the text is dropped, its ACK
   * still processed, and the peer told our window at once. A connection holding nothing
   * always takes one segment (sk_forced_mem_schedule). Returns false to drop the segment
   * whole (its FIN cannot be taken without the text before it).
   */
  private takeText(seg: TcpSegment, len: number): boolean {
    const counters = this.ctx.counters;
    if (!this.reassembly.isEmpty) {
      this.reassembly.clear();
      counters.ofoPruned++;
      this.syncMemory();
      if (this.receiveCharged === 0 || this.mayReceive(len)) return true;
    }
    counters.drop('tcp-memory-limit');
    if (seg.flags & FIN) return false;
    seg.length = seg.headerLength;
    this.ack.ackNow();
    return true;
  }

  /** The end of a receive batch: one ACK for the batch's data, and the data the ACKs let out. */
  override onBatchEnd(): void {
    if (this.state === 'CLOSED') return;
    this.ack.onBatchEnd();
    if (canSendData(this.state)) output(this);
    else flushAck(this);
  }

  /** The end of the turn in which an ACK was deferred (ack-policy.ts). */
  override flushEndOfTurnAck(): void {
    flushEndOfTurnAck(this);
  }

  override onTimer(): void {
    onTimer(this);
  }

  /** The pending deadlines, relative to now (diagnostics). */
  debugTimers(): Record<string, number> {
    const now = this.now();
    const out = this.timers.describe(now);
    if (this.timerIndex >= 0) out.timer = this.timerAt - now;
    return out;
  }
}
