// One TCP connection: the transmission control block (RFC 9293 3.3.1) and the event
// processing of RFC 9293 3.10. Read it next to the RFC: receive() follows 3.10.7 step by
// step ("first check sequence number", "second check the RST bit", ...), output() is the
// sender with RFC 9293 3.8.6.2.1 silly window avoidance and Nagle (RFC 1122 4.2.3.4), and
// onTimer() dispatches the connection's one timer to retransmission (RFC 6298), persist
// (RFC 1122 4.2.2.17), delayed ACK (RFC 1122 4.2.3.2), keepalive (RFC 1122 4.2.3.6) and
// TIME-WAIT (RFC 9293 3.4.2).

import type { TcpConfig } from './config.ts';
import type { CongestionControl } from './congestion/congestion.ts';
import { Cubic } from './congestion/cubic.ts';
import { NewReno } from './congestion/newreno.ts';
import { systemError, type SystemError } from '../util/errors.ts';
import { ReassemblyQueue } from './reassembly.ts';
import { RtoEstimator } from './rto.ts';
import { SackScoreboard } from './sack.ts';
import { SendBuffer } from './send-buffer.ts';
import { seqAdd, seqGe, seqGt, seqInWindow, seqLe, seqLt, seqMax, seqSub } from './seq.ts';
import { ACK, FIN, PSH, RST, SYN, tcpHeaderLength, type TcpSegment } from './tcp-segment.ts';
import type { TcpLayer } from './tcp.ts';

export type TcpState =
  | 'CLOSED'
  | 'LISTEN'
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT';

/** What the connection tells its socket. */
export interface ConnectionUser {
  /** The handshake completed (active open), or the connection was accepted (passive). */
  onConnect(): void;
  /** In-order bytes, copied out of the frame: the application owns them. */
  onData(data: Buffer): void;
  /** The peer's FIN: no more data will come. */
  onEnd(): void;
  /** Room opened in the send buffer. */
  onDrain(): void;
  /** The connection is gone; err says why when it failed. */
  onClose(err: SystemError | null): void;
  /** Bytes delivered with onData that the application has not consumed yet. */
  unreadBytes(): number;
}

/** What a SYN cookie's timestamp carried back: the peer's SYN options (as Linux encodes them). */
export interface CookieOptions {
  windowScale: number;
  sackPermitted: boolean;
  tsRecent: number;
}

/** The window scale we offer for a receive buffer: the smallest shift that fits 16 bits. */
export function windowScaleFor(receiveBufferSize: number): number {
  let shift = 0;
  while (shift < 14 && receiveBufferSize >> shift > 0xffff) shift++;
  return shift;
}

/** MSS assumed when the peer sends none (RFC 9293 3.7.1, RFC 1122 4.2.2.6). */
export const DEFAULT_MSS = 536;

const TS_UNSET = -1;

export class Connection {
  state: TcpState = 'CLOSED';
  user: ConnectionUser | null = null;
  readonly localIp: number;
  readonly localPort: number;
  readonly remoteIp: number;
  readonly remotePort: number;
  /** Opened by a listener (passive) rather than by connect (active). */
  passive = false;
  /** Listener port that owns this connection until it is accepted. */
  listenerPort = -1;

  // Send sequence variables (RFC 9293 3.3.1).
  iss = 0;
  sndUna = 0;
  sndNxt = 0;
  /** Highest sequence number sent plus one; SND.NXT goes back below it after a timeout. */
  sndMax = 0;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  /** Largest window the peer ever offered (RFC 9293 3.8.6.2.1 Max(SND.WND), RFC 5961 MAX.SND.WND). */
  maxSndWnd = 0;
  /** Shift for the peer's window field (RFC 7323 2.3); 0 without scaling. */
  sndWscale = 0;

  // Receive sequence variables.
  irs = 0;
  rcvNxt = 0;
  /** Right edge of the window we advertised: RCV.NXT + RCV.WND; it never moves left (RFC 9293 3.8.6.2.2). */
  rcvAdv = 0;
  rcvWscale = 0;
  /** Our offered window scale before negotiation; -1 when we do not offer it. */
  private offeredWscale = -1;
  /** Both SYNs carried the window scale option (even a shift of 0). */
  wscaleAgreed = false;

  /** Largest segment payload we send (peer's MSS less our options). */
  sendMss = DEFAULT_MSS;
  /** MSS we announce (from our MTU). */
  readonly receiveMss: number;

  // RFC 7323 timestamps.
  tsEnabled = false;
  tsRecent = 0;
  private lastAckSent = 0;
  sackPermitted = false;

  // Application side.
  readonly sendBuffer: SendBuffer;
  readonly reassembly: ReassemblyQueue;
  /** The application asked to close our sending side: a FIN follows the buffered data. */
  finQueued = false;
  /** Sequence number of our FIN, fixed when the application closes (no data follows it). */
  private finSequence = 0;
  /** The peer's FIN has been received. */
  finReceived = false;
  /** The socket was closed by the application: nobody will read. */
  orphaned = false;
  noDelay = false;

  // Retransmission and congestion.
  readonly rto: RtoEstimator;
  cc: CongestionControl;
  retries = 0;
  private rttTiming = false;
  private rttSeq = 0;
  private rttStart = 0;
  dupAcks = 0;
  inRecovery = false;
  /** RFC 6582 "recover": highest sequence number sent when recovery started. */
  recover = 0;
  /** The current recovery is SACK-based (RFC 6675), not NewReno. */
  sackRecovery = false;
  /** What the peer's SACK blocks say it holds above SND.UNA (RFC 2018). */
  readonly scoreboard = new SackScoreboard();
  /** RFC 6675 HighRxt: the end of the highest byte retransmitted in this recovery. */
  highRxt = 0;
  private readonly nextSegStart = [0];
  /** SND.MAX when we last retransmitted: SACKs beyond it come from data sent afterwards. */
  private retransmitMark = 0;
  /** Tail loss probe (RFC 8985 7): deadline, and the probe's range while it is outstanding. */
  private tlpAt = 0;
  private tlpOutstanding = false;
  private tlpStart = 0;
  private tlpEnd = 0;
  private lastSendTime = 0;
  /** TSval clock at our last retransmission (RTO, fast retransmit, SYN again). */
  private lastRetransmitTs = 0;

  // ACK generation.
  /** Send an ACK at the end of this event even if no data goes out. */
  private ackNow = false;
  /** Full-sized segments received since our last ACK (RFC 5681 4.2: ACK every second one). */
  private segmentsSinceAck = 0;
  /** An ACK owed at the end of this event-loop turn (TcpLayer.deferAck), unless a segment carries it first. */
  ackDeferred = false;
  /** Queued in the layer for the end of the receive batch (TcpLayer.deferToBatchEnd). */
  batchPending = false;

  // Keepalive.
  keepAlive = false;
  keepAliveIdleMs: number;
  private keepAliveProbesSent = 0;
  private lastReceiveTime = 0;

  // The one timer: each deadline is an absolute time in ms, 0 when off.
  private rtoAt = 0;
  private persistAt = 0;
  private persistBackoff = 0;
  /** The SWS override timer expired: send even a small segment. */
  private forceSend = false;
  /** A zero-window probe byte is outstanding. */
  private probing = false;
  private delayedAckAt = 0;
  private keepAliveAt = 0;
  /** TIME-WAIT expiry, or the FIN-WAIT-2 timeout of an orphaned connection. */
  private closeAt = 0;
  /** When the layer's timer queue (TcpLayer.timers) calls onTimer(), and the place there. */
  timerAt = 0;
  timerIndex = -1;
  timerSeq = 0;

  /** The error the connection failed with, kept for late writers. */
  error: SystemError | null = null;

  constructor(
    readonly layer: TcpLayer,
    localIp: number,
    localPort: number,
    remoteIp: number,
    remotePort: number,
  ) {
    const config = layer.config;
    this.localIp = localIp;
    this.localPort = localPort;
    this.remoteIp = remoteIp;
    this.remotePort = remotePort;
    this.receiveMss = layer.mtu - 40;
    this.sendBuffer = new SendBuffer(config.sendBufferSize);
    this.reassembly = new ReassemblyQueue(config.maxOutOfOrderSegments);
    this.rto = new RtoEstimator({ minMs: config.rtoMinMs, maxMs: config.rtoMaxMs, initialMs: config.rtoInitialMs });
    this.cc = new NewReno(DEFAULT_MSS);
    this.keepAliveIdleMs = config.keepAliveIdleMs;
    if (config.windowScaling) this.offeredWscale = windowScaleFor(config.receiveBufferSize);
  }

  get config(): TcpConfig {
    return this.layer.config;
  }

  private now(): number {
    return this.layer.clock.now();
  }

  // ---------------------------------------------------------------------------------------
  // Opening (RFC 9293 3.10.1 OPEN call, 3.10.7.2 LISTEN state)

  /** Active open: send a SYN (RFC 9293 3.10.1). */
  openActive(): void {
    this.iss = this.layer.isn.next(this.localIp, this.localPort, this.remoteIp, this.remotePort);
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.recover = this.iss;
    this.setState('SYN-SENT');
    this.sendSyn();
  }

  /**
   * Passive open from a SYN that reached a listener (RFC 9293 3.10.7.2): record the peer's
   * sequence number and options and answer SYN-ACK. `iss` is given when it is a SYN cookie.
   */
  openPassive(seg: TcpSegment, iss?: number): void {
    this.passive = true;
    this.iss = iss ?? this.layer.isn.next(this.localIp, this.localPort, this.remoteIp, this.remotePort);
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.sndMax = this.iss;
    this.recover = this.iss;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.takeSynOptions(seg);
    // RFC 7323 2.2: the window in a SYN is never scaled.
    this.sndWnd = seg.window;
    this.maxSndWnd = this.sndWnd;
    this.sndWl1 = seg.seq;
    this.sndWl2 = this.iss;
    this.lastReceiveTime = this.now();
    this.setState('SYN-RECEIVED');
    this.sendSyn();
  }

  /**
   * A connection rebuilt from a valid SYN cookie (RFC 4987 3.6): our SYN-ACK went out
   * statelessly with ISS = cookie and only the MSS option, so nothing else was negotiated.
   */
  openFromCookie(irs: number, iss: number, mss: number, options: CookieOptions | null = null): void {
    this.passive = true;
    this.iss = iss;
    this.sndUna = iss;
    this.sndNxt = seqAdd(iss, 1);
    this.sndMax = this.sndNxt;
    this.recover = iss;
    this.irs = irs;
    this.rcvNxt = seqAdd(irs, 1);
    this.rcvAdv = seqAdd(this.rcvNxt, Math.min(this.config.receiveBufferSize, 0xffff));
    this.sndWl1 = irs;
    this.sendMss = Math.min(mss, this.layer.mtu - 40);
    if (options) {
      // The options came back in the echoed timestamp (see TcpLayer.sendSynCookie).
      this.tsEnabled = true;
      this.tsRecent = options.tsRecent;
      // The echoed value is not a clean send time: no RTT sample from it.
      this.lastRetransmitTs = this.layer.timestampNow();
      this.sendMss -= 12;
      this.sackPermitted = options.sackPermitted;
      if (options.windowScale >= 0 && this.offeredWscale >= 0) {
        this.wscaleAgreed = true;
        this.sndWscale = options.windowScale;
        this.rcvWscale = this.offeredWscale;
      }
    }
    this.cc = this.config.congestion === 'cubic' ? new Cubic(this.sendMss) : new NewReno(this.sendMss);
    this.lastReceiveTime = this.now();
    this.setState('SYN-RECEIVED');
  }

  /** Options of the peer's SYN decide what the connection uses (RFC 9293 3.7.1, RFC 7323, RFC 2018). */
  private takeSynOptions(seg: TcpSegment): void {
    const peerMss = seg.mss >= 0 ? seg.mss : DEFAULT_MSS;
    // Window scaling only when both sides offered it (RFC 7323 2.2).
    this.wscaleAgreed = seg.windowScale >= 0 && this.offeredWscale >= 0;
    if (this.wscaleAgreed) {
      this.sndWscale = seg.windowScale;
      this.rcvWscale = this.offeredWscale;
    } else {
      this.sndWscale = 0;
      this.rcvWscale = 0;
    }
    this.tsEnabled = seg.hasTimestamp && this.config.timestamps;
    if (this.tsEnabled) this.tsRecent = seg.tsVal;
    this.sackPermitted = seg.sackPermitted && this.config.sack;
    // RFC 9293 3.7.1: the effective send MSS is the smaller of the peer's MSS and ours, less
    // the options every segment carries (RFC 6691).
    const mss = Math.max(Math.min(peerMss, this.layer.mtu - 40) - (this.tsEnabled ? 12 : 0), 64);
    this.sendMss = mss;
    this.cc = this.config.congestion === 'cubic' ? new Cubic(mss) : new NewReno(mss);
  }

  // ---------------------------------------------------------------------------------------
  // Application calls (RFC 9293 3.10.2 SEND, 3.10.4 CLOSE, 3.10.5 ABORT)

  /** SEND: buffers what fits and sends what the windows allow; returns bytes taken. */
  send(data: Uint8Array, off: number, len: number): number {
    const n = this.sendBuffer.append(data, off, len);
    // Written while ACKs of a receive batch are processed: it goes out with the batch's output.
    if (n > 0 && this.canSendData() && !this.layer.deferToBatchEnd(this)) this.output();
    return n;
  }

  /** CLOSE: no more data from us; a FIN follows what is buffered. */
  close(): void {
    if (this.finQueued) return;
    const finSeq = this.finSeq();
    switch (this.state) {
      case 'SYN-SENT':
        // RFC 9293 3.10.4: delete the TCB.
        this.destroy(null);
        return;
      case 'SYN-RECEIVED':
        // The FIN is queued until ESTABLISHED (RFC 9293 3.10.4).
        this.finQueued = true;
        this.finSequence = finSeq;
        return;
      case 'ESTABLISHED':
        this.finQueued = true;
        this.finSequence = finSeq;
        this.setState('FIN-WAIT-1');
        break;
      case 'CLOSE-WAIT':
        this.finQueued = true;
        this.finSequence = finSeq;
        this.setState('LAST-ACK');
        break;
      default:
        return;
    }
    this.output();
  }

  /** ABORT (RFC 9293 3.10.5): send a reset in synchronized states and forget the connection. */
  abort(err: SystemError | null = null): void {
    if (this.state === 'CLOSED') return;
    if (this.isSynchronized() || this.state === 'SYN-RECEIVED') this.sendReset();
    this.destroy(err);
  }

  /** The application read data: a grown window may be worth announcing (RFC 9293 3.8.6.2.2). */
  onAppRead(): void {
    if (!this.isSynchronized() || this.finReceived) return;
    const free = this.freeReceiveSpace();
    const right = seqAdd(this.rcvNxt, free);
    // Announce when the right edge moves by at least min(half the buffer, one MSS) (RFC 9293
    // 3.8.6.2.2), and, as Linux (tcp_cleanup_rbuf), only once the window left to the peer has
    // fallen to half the buffer and would at least double: reads that keep up with the data
    // need no window updates of their own, the next ACK carries the window.
    const threshold = Math.min(this.config.receiveBufferSize >> 1, this.receiveMss);
    const current = seqSub(this.rcvAdv, this.rcvNxt);
    if (2 * current <= this.config.receiveBufferSize && free >= 2 * current && seqGe(right, seqAdd(this.rcvAdv, threshold))) {
      this.ackNow = true;
      this.output();
    }
  }

  /** Path MTU discovery (RFC 1191): a smaller MTU on the path lowers our segment size. */
  lowerMss(mss: number): void {
    const limit = Math.max(mss - (this.tsEnabled ? 12 : 0), 64);
    if (limit < this.sendMss) this.sendMss = limit;
  }

  setNoDelay(noDelay: boolean): void {
    this.noDelay = noDelay;
    if (noDelay && this.canSendData()) this.output();
  }

  setKeepAlive(enable: boolean, idleMs?: number): void {
    this.keepAlive = enable;
    if (idleMs !== undefined && idleMs > 0) this.keepAliveIdleMs = idleMs;
    this.keepAliveProbesSent = 0;
    this.keepAliveAt = enable && this.isSynchronized() ? this.now() + this.keepAliveIdleMs : 0;
    this.armTimer();
  }

  // ---------------------------------------------------------------------------------------
  // Segment arrival (RFC 9293 3.10.7)

  receive(seg: TcpSegment): void {
    if (this.state === 'SYN-SENT') {
      this.receiveInSynSent(seg);
    } else if (this.state !== 'CLOSED') {
      this.receiveSynchronizedOrSynReceived(seg);
    }
    // An ACK may have opened the windows: send what is waiting, or at least the ACK we owe.
    // Within a batch of received frames the data waits for the batch's end (one large frame
    // for all its ACKs); an ACK that must go at once (RFC 5681 4.2) still goes now.
    if (this.canSendData() && !this.layer.deferToBatchEnd(this)) this.output();
    else if (this.state !== 'CLOSED') this.flushAck();
  }

  /** The end of a receive batch: one ACK for the batch's data, and the data the ACKs let out. */
  onBatchEnd(): void {
    if (this.state === 'CLOSED') return;
    if (this.segmentsSinceAck >= 2) this.ackNow = true;
    if (this.canSendData()) this.output();
    else this.flushAck();
  }

  /** RFC 9293 3.10.7.3: SYN-SENT. */
  private receiveInSynSent(seg: TcpSegment): void {
    const flags = seg.flags;
    // First, check the ACK bit: it must acknowledge our SYN.
    if (flags & ACK) {
      if (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndMax)) {
        if (!(flags & RST)) this.layer.sendResetFor(seg, this.remoteIp, this.localIp);
        this.layer.counters.drop('tcp-syn-sent-bad-ack');
        return;
      }
    }
    // Second, the RST bit: acceptable only with an acceptable ACK (RFC 5961 3.2 last paragraph).
    if (flags & RST) {
      if (flags & ACK) this.destroy(systemError('ECONNREFUSED', 'connect', this.layer.formatAddress(this.remoteIp), this.remotePort));
      else this.layer.counters.drop('tcp-syn-sent-rst-without-ack');
      return;
    }
    if (!(flags & SYN)) {
      this.layer.counters.drop('tcp-syn-sent-no-syn');
      return;
    }
    // Fourth, the SYN bit.
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.takeSynOptions(seg);
    this.lastReceiveTime = this.now();
    if (flags & ACK) {
      this.sndWnd = seg.window; // never scaled in a SYN (RFC 7323 2.2)
      this.maxSndWnd = this.sndWnd;
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      this.ackAdvances(seg.ack, seg);
      this.establish();
      this.ackNow = true;
      // Data carried by the SYN-ACK is processed like any data (RFC 9293 3.10.7.3, "sixth").
      if (seg.payloadLength > 0 || flags & FIN) this.acceptData(seg, seqAdd(seg.seq, 1), seg.payloadOffset, seg.payloadLength, (flags & FIN) !== 0);
    } else {
      // Simultaneous open (RFC 9293 3.5 figure 8): answer SYN-ACK with our same ISS.
      this.sndWnd = seg.window;
      this.maxSndWnd = this.sndWnd;
      this.sndWl1 = seg.seq;
      this.setState('SYN-RECEIVED');
      this.sndNxt = this.iss;
      this.sendSyn();
    }
  }

  /** RFC 9293 3.10.7.4: every state after SYN-SENT. */
  private receiveSynchronizedOrSynReceived(seg: TcpSegment): void {
    let flags = seg.flags;
    let seq = seg.seq;
    let dataOff = seg.payloadOffset;
    let dataLen = seg.payloadLength;
    this.lastReceiveTime = this.now();

    // A retransmitted SYN in SYN-RECEIVED means our SYN-ACK was lost: send it again.
    if (this.state === 'SYN-RECEIVED' && flags & SYN && !(flags & (ACK | RST)) && seq === this.irs) {
      this.sndNxt = this.iss;
      this.sendSyn();
      return;
    }

    // RFC 7323 5.3 PAWS: a segment with a timestamp older than TS.Recent is an old duplicate.
    if (this.tsEnabled && seg.hasTimestamp && !(flags & RST) && ((seg.tsVal - this.tsRecent) | 0) < 0) {
      this.layer.counters.drop('tcp-paws');
      this.ackNow = true;
      return;
    }

    // First, check the sequence number (RFC 9293 3.10.7.4, the four cases of acceptability).
    const segLen = dataLen + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0);
    const rcvWnd = seqSub(this.rcvAdv, this.rcvNxt);
    let acceptable: boolean;
    if (segLen === 0) acceptable = rcvWnd === 0 ? seq === this.rcvNxt : seqInWindow(seq, this.rcvNxt, rcvWnd);
    else if (rcvWnd === 0) acceptable = seq === this.rcvNxt; // ACKs and RSTs still count; data is trimmed below
    else acceptable = seqInWindow(seq, this.rcvNxt, rcvWnd) || seqInWindow(seqAdd(seq, segLen - 1), this.rcvNxt, rcvWnd);
    if (!acceptable) {
      if (!(flags & RST)) this.ackNow = true; // RFC 9293: send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
      if (this.state === 'TIME-WAIT' && flags & FIN) this.restartTimeWait();
      this.layer.counters.drop('tcp-not-in-window');
      return;
    }

    // Second, the RST bit (RFC 5961 3.2: only an exact match resets; else a challenge ACK).
    if (flags & RST) {
      if (seq !== this.rcvNxt) {
        this.challengeAck();
        this.layer.counters.drop('tcp-rst-challenged');
        return;
      }
      this.receiveReset();
      return;
    }

    // Trim the segment to the window: bytes before RCV.NXT are duplicates, bytes past the
    // right edge do not fit (RFC 9293 3.10.7.4 "first").
    if (seqLt(seq, this.rcvNxt)) {
      let skip = seqSub(this.rcvNxt, seq);
      if (flags & SYN) {
        flags &= ~SYN;
        skip--;
        seq = seqAdd(seq, 1);
      }
      if (skip > dataLen) {
        // The FIN itself was a duplicate.
        flags &= ~FIN;
        skip = dataLen;
      }
      dataOff += skip;
      dataLen -= skip;
      seq = seqAdd(seq, skip);
      // A duplicate: the peer missed our ACK; tell it again at once (RFC 5681 4.2).
      if (skip > 0) this.ackNow = true;
    }
    const room = seqSub(this.rcvAdv, seq);
    if (dataLen > room) {
      // What does not fit is dropped and the peer told where the window ends.
      dataLen = room;
      flags &= ~FIN;
      this.ackNow = true;
    }

    // Fourth, the SYN bit (RFC 5961 4.2): in a synchronized state any SYN gets a challenge ACK.
    if (flags & SYN) {
      if (this.state === 'SYN-RECEIVED' && this.passive) {
        // RFC 9293 3.10.7.4: a passive SYN-RECEIVED connection returns to LISTEN.
        this.destroy(null);
        return;
      }
      this.challengeAck();
      this.layer.counters.drop('tcp-syn-challenged');
      return;
    }

    // Fifth, the ACK field.
    if (!(flags & ACK)) {
      this.layer.counters.drop('tcp-no-ack');
      return;
    }
    const ack = seg.ack;
    if (this.state === 'SYN-RECEIVED') {
      if (!(seqLt(this.sndUna, ack) && seqLe(ack, this.sndMax))) {
        this.layer.sendResetFor(seg, this.remoteIp, this.localIp);
        this.layer.counters.drop('tcp-syn-received-bad-ack');
        return;
      }
      this.sndWnd = seg.window << this.sndWscale;
      this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
      this.sndWl1 = seq;
      this.sndWl2 = ack;
      this.ackAdvances(ack, seg);
      this.establish();
      if ((this.state as TcpState) === 'CLOSED') return;
    }
    if (!this.processAck(seg, seq, ack, dataLen, flags)) return;

    // RFC 7323 4.3: TS.Recent follows the segment that covers the last ACK we sent.
    if (this.tsEnabled && seg.hasTimestamp && seqLe(seq, this.lastAckSent)) this.tsRecent = seg.tsVal;

    // Sixth (URG) is not supported: the urgent pointer is ignored, data stays in line
    // (RFC 6093 advises against new uses).

    // Seventh and eighth: the segment text and the FIN.
    if (dataLen > 0 || flags & FIN) this.acceptData(seg, seq, dataOff, dataLen, (flags & FIN) !== 0);
    if (this.state === 'TIME-WAIT' && flags & FIN) this.restartTimeWait();
  }

  /**
   * The ACK field in synchronized states (RFC 9293 3.10.7.4 "fifth", RFC 5961 5.2).
   * Returns false when the segment is to be dropped.
   */
  private processAck(seg: TcpSegment, seq: number, ack: number, dataLen: number, flags: number): boolean {
    // RFC 5961 5.2: acceptable ACKs are in [SND.UNA - MAX.SND.WND, SND.NXT].
    if (seqGt(ack, this.sndMax)) {
      this.ackNow = true;
      this.layer.counters.drop('tcp-ack-of-unsent');
      return false;
    }
    if (seqLt(ack, this.sndUna - this.maxSndWnd)) {
      this.challengeAck();
      this.layer.counters.drop('tcp-ack-too-old');
      return false;
    }
    const window = seg.window << this.sndWscale;
    // RFC 2018: record what the peer holds beyond the cumulative ACK.
    if (this.sackPermitted && seg.sackCount > 0) this.scoreboard.update(seqMax(ack, this.sndUna), this.sndMax, seg.sackBlocks, seg.sackCount);
    if (seqGt(ack, this.sndUna)) {
      this.ackAdvances(ack, seg);
      if (this.state === 'CLOSED') return false;
    } else if (
      ack === this.sndUna &&
      dataLen === 0 &&
      !(flags & (SYN | FIN)) &&
      // RFC 5681 2 asks for an unchanged window; Linux receivers shrink it as out-of-order
      // data fills their buffer, so, like Linux's sender, only a window that grew disqualifies.
      window <= this.sndWnd &&
      window > 0 &&
      !this.probing &&
      this.sndMax !== this.sndUna
    ) {
      // RFC 5681 2 (DUPLICATE ACKNOWLEDGMENT); answers to zero-window probes are not.
      this.duplicateAck();
    } else if (this.sackPermitted && seg.sackCount > 0 && !this.inRecovery && ack === this.sndUna && this.sndMax !== this.sndUna) {
      // A window change or data kept this from counting as a duplicate, but SACK blocks can
      // still show a loss (RFC 6675 5: IsLost(HighACK + 1)).
      this.maybeEnterRecovery();
    }
    if (this.sackPermitted) this.checkTailLossProbe(ack);
    if (this.inRecovery && this.sackRecovery) this.sackRecoveryStep();
    // Window update (RFC 9293 3.10.7.4): only from a segment newer than the last update.
    if (seqLt(this.sndWl1, seq) || (this.sndWl1 === seq && seqLe(this.sndWl2, ack))) {
      this.sndWnd = window;
      this.sndWl1 = seq;
      this.sndWl2 = ack;
      if (window > this.maxSndWnd) this.maxSndWnd = window;
      if (window > 0 && (this.persistAt !== 0 || this.probing)) {
        this.persistAt = 0;
        this.persistBackoff = 0;
        // The probe byte was beyond the window: it goes again with the data that follows.
        if (this.probing) this.sndNxt = this.sndUna;
        this.probing = false;
      }
    }
    // State transitions that depend on our FIN being acknowledged.
    const finAcked = this.finQueued && this.sndUna === seqAdd(this.finSeq(), 1);
    switch (this.state) {
      case 'FIN-WAIT-1':
        if (finAcked) {
          this.setState('FIN-WAIT-2');
          this.sendBuffer.release();
          if (this.orphaned) {
            this.closeAt = this.now() + this.config.finWait2Ms;
            this.armTimer();
          }
        }
        break;
      case 'CLOSING':
        if (finAcked) this.enterTimeWait();
        break;
      case 'LAST-ACK':
        if (finAcked) {
          this.destroy(null);
          return false;
        }
        break;
      default:
        break;
    }
    return true;
  }

  /** An ACK for new data: drop it from the send buffer, measure, grow cwnd (RFC 5681, RFC 6582). */
  private ackAdvances(ack: number, seg: TcpSegment): void {
    const now = this.now();
    let acked = seqSub(ack, this.sndUna);
    // Our SYN and FIN occupy a sequence number each but no buffer space.
    if (this.sndUna === this.iss) acked--;
    if (this.finQueued && seqGt(ack, this.finSeq())) acked--;
    const bytesAcked = Math.min(acked, this.sendBuffer.length);
    this.sendBuffer.consume(bytesAcked);
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.scoreboard.advance(ack);
    if (seqLt(this.highRxt, ack)) this.highRxt = ack;
    this.retries = 0;
    // RTT: from the echoed timestamp (RFC 7323 4.1), else from the one timed segment, never
    // from a retransmitted one (Karn, RFC 6298 3).
    // An echo older than our last retransmission measures the loss recovery too, not the
    // path: like Karn's rule, such echoes give no sample.
    if (this.tsEnabled && seg.hasTimestamp && seg.tsEcr !== 0 && ((seg.tsEcr - this.lastRetransmitTs) | 0) >= 0) {
      const rtt = (this.layer.timestampNow() - seg.tsEcr) >>> 0;
      if (rtt < 0x7fffffff) this.rto.sample(Math.max(rtt, 1));
      this.rttTiming = false;
    } else if (this.rttTiming && seqGt(ack, this.rttSeq)) {
      this.rto.sample(now - this.rttStart);
      this.rttTiming = false;
    }
    if (this.isSynchronized() && bytesAcked > 0) {
      if (this.inRecovery) {
        if (seqGe(ack, this.recover)) {
          this.inRecovery = false;
          this.sackRecovery = false;
          this.cc.exitRecovery(seqSub(this.sndMax, this.sndUna));
        } else if (!this.sackRecovery) {
          // RFC 6582 3.2 step 5: a partial ACK; the next hole is lost too.
          this.retransmitFirst();
          this.cc.onPartialAck(bytesAcked);
        }
      } else {
        this.cc.onAck(bytesAcked, now, this.rto.srtt);
      }
    }
    this.dupAcks = 0;
    this.rtoAt = this.sndUna === this.sndMax ? 0 : now + this.rto.rto;
    this.tlpAt = 0;
    if (this.sndUna !== this.sndMax) this.scheduleTailLossProbe();
    this.armTimer();
    if (bytesAcked > 0 && this.user && !this.finQueued) this.user.onDrain();
  }

  /** RFC 5681 3.2 fast retransmit, with RFC 6582 NewReno recovery. */
  private duplicateAck(): void {
    this.dupAcks++;
    if (this.inRecovery) {
      // NewReno inflates the window per duplicate (RFC 5681 3.2 step 4); SACK recovery
      // counts the network's contents instead (pipe, RFC 6675).
      if (!this.sackRecovery) {
        this.cc.onRecoveryDupAck();
        this.output();
      }
      return;
    }
    this.maybeEnterRecovery();
  }

  /**
   * Fast retransmit on DupThresh duplicate ACKs, or as soon as SACK blocks show the first
   * segment lost (RFC 6675 5), and only if the ACK covers more than "recover" (RFC 6582 3.2
   * step 2: one reduction per window of losses).
   */
  private maybeEnterRecovery(): void {
    const sack = this.sackPermitted && !this.scoreboard.isEmpty;
    const lost = this.dupAcks >= 3 || (sack && this.scoreboard.lostBoundary(this.sndUna, this.sendMss) !== this.sndUna);
    if (!lost || !seqGt(this.sndUna, this.recover)) return;
    this.recover = this.sndMax;
    this.inRecovery = true;
    this.sackRecovery = sack;
    this.tlpAt = 0;
    this.layer.fastRetransmits++;
    this.cc.enterRecovery(seqSub(this.sndMax, this.sndUna), this.now());
    // RFC 6675 5 step (4.2): cwnd = ssthresh, without the NewReno inflation.
    if (sack) this.cc.cwnd = this.cc.ssthresh;
    this.rttTiming = false;
    this.highRxt = this.sndUna;
    this.retransmitFirst();
    if (sack) this.sackRecoveryStep();
    else this.output();
  }

  /**
   * RFC 6675 5 step (C): while cwnd - pipe allows a segment, retransmit the next lost one
   * (NextSeg rule 1); then new data goes out through output(), limited by the same pipe.
   */
  private sackRecoveryStep(): void {
    const mss = this.sendMss;
    // RFC 6675 cannot see a lost retransmission. Like Linux (tcp_mark_lost_retrans): once data
    // first sent after our latest retransmission is SACKed while a hole we retransmitted is
    // still missing, that retransmission was lost, and the holes go again.
    if (seqGt(this.highRxt, this.sndUna) && seqGt(this.scoreboard.highestSacked(this.sndUna), this.retransmitMark)) {
      const hole = this.scoreboard.nextLost(this.sndUna, this.sndUna, mss, mss, this.nextSegStart);
      if (hole > 0 && seqLt(this.nextSegStart[0]!, this.highRxt)) {
        this.highRxt = this.sndUna;
        this.retransmitMark = this.sndMax;
      }
    }
    for (let guard = 0; guard < 1000; guard++) {
      const pipe = this.scoreboard.pipe(this.sndUna, this.sndMax, this.highRxt, mss);
      if (this.cc.cwnd - pipe < mss) return;
      const len = this.scoreboard.nextLost(this.highRxt, this.sndUna, mss, mss, this.nextSegStart);
      if (len === 0) break;
      const start = this.nextSegStart[0]!;
      const offset = seqSub(start, this.sndUna);
      const n = Math.min(len, this.sendBuffer.length - offset);
      if (n <= 0) break;
      this.layer.retransmits++;
      this.lastRetransmitTs = this.layer.timestampNow();
      this.emit(ACK, start, offset, n);
      this.highRxt = seqAdd(start, n);
      this.retransmitMark = this.sndMax;
    }
    this.output();
  }

  /** RST in a synchronized or SYN-RECEIVED state, after RFC 5961 checks (RFC 9293 3.10.7.4 "second"). */
  private receiveReset(): void {
    switch (this.state) {
      case 'SYN-RECEIVED':
        if (this.passive) this.destroy(null); // back to LISTEN: the listener never saw it
        else this.destroy(systemError('ECONNREFUSED', 'connect', this.layer.formatAddress(this.remoteIp), this.remotePort));
        return;
      case 'ESTABLISHED':
      case 'FIN-WAIT-1':
      case 'FIN-WAIT-2':
      case 'CLOSE-WAIT':
        this.destroy(systemError('ECONNRESET', 'read'));
        return;
      default:
        // CLOSING, LAST-ACK, TIME-WAIT: just close.
        this.destroy(null);
    }
  }

  /** RFC 5961 3.2 / 4.2 challenge ACK, rate limited across the layer (RFC 5961 7). */
  private challengeAck(): void {
    if (this.layer.allowChallengeAck()) this.sendAck();
    else this.layer.counters.drop('tcp-challenge-ack-limited');
  }

  /** Seventh and eighth steps: text and FIN (RFC 9293 3.10.7.4). */
  private acceptData(seg: TcpSegment, seq: number, off: number, len: number, fin: boolean): void {
    if (this.state !== 'ESTABLISHED' && this.state !== 'FIN-WAIT-1' && this.state !== 'FIN-WAIT-2') {
      // After the peer's FIN no text can follow; a duplicate FIN is only acknowledged.
      if (fin || len > 0) this.ackNow = true;
      return;
    }
    if (seq !== this.rcvNxt) {
      // Out of order: keep it (bounded) and tell the sender at once with a duplicate ACK
      // (RFC 5681 4.2).
      if (!this.reassembly.insert(seq, seg.buf, off, len, fin)) this.layer.counters.drop('tcp-ooo-queue-full');
      this.ackNow = true;
      return;
    }
    const filledHole = !this.reassembly.isEmpty;
    if (len > 0) {
      const data = this.layer.copyPayload(seg.buf, off, len);
      this.rcvNxt = seqAdd(this.rcvNxt, len);
      this.deliver(data);
      // The application may have destroyed the socket from its 'data' handler.
      if ((this.state as TcpState) === 'CLOSED') return;
      // Count full-sized segments (a coalesced super-frame from the kernel counts as several).
      const full = this.receiveMss - 40;
      this.segmentsSinceAck += len >= full ? Math.floor(len / full) : 0.5;
    }
    let finNow = fin;
    if (filledHole) {
      // RFC 5681 4.2: ACK at once a segment that fills a gap.
      this.ackNow = true;
      this.rcvNxt = this.reassembly.drain(
        this.rcvNxt,
        (d) => this.deliver(d),
        () => (finNow = true),
      );
      if ((this.state as TcpState) === 'CLOSED') return;
    }
    if (finNow) {
      this.receiveFin();
      return;
    }
    // RFC 1122 4.2.3.2 / RFC 5681 4.2: ACK at least every second full-sized segment (once
    // for a whole receive batch, at its end); else delay.
    if (this.segmentsSinceAck >= 2) {
      if (!this.layer.deferToBatchEnd(this)) this.ackNow = true;
    } else if (!this.ackNow && this.delayedAckAt === 0) {
      this.delayedAckAt = this.now() + this.config.delayedAckMs;
      this.armTimer();
    }
  }

  private deliver(data: Buffer): void {
    this.layer.bytesReceived += data.length;
    if (this.user && !this.orphaned) this.user.onData(data);
    else if (this.orphaned) {
      // Data for a socket nobody reads any more: Linux answers with a reset (RFC 2525 2.17).
      this.abort(null);
    }
  }

  /** The FIN came in order (RFC 9293 3.10.7.4 "eighth"). */
  private receiveFin(): void {
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.finReceived = true;
    if (this.state === 'ESTABLISHED' && !this.ackNow) {
      // A passive close: the application usually answers the end of the data with its own
      // FIN (or data) at once. Like Linux (tcp_fin enters "pingpong" mode and delays the
      // ACK), the ACK waits for that, here only until the end of this event-loop turn, and
      // rides on our FIN: one segment instead of two (RFC 1122 4.2.3.2 allows the delay).
      this.layer.deferAck(this);
    } else {
      this.ackNow = true;
    }
    this.delayedAckAt = 0;
    this.user?.onEnd();
    switch (this.state) {
      case 'ESTABLISHED':
        this.setState('CLOSE-WAIT');
        break;
      case 'FIN-WAIT-1':
        // Our FIN not yet acknowledged: simultaneous close (RFC 9293 3.6 figure 13).
        if (this.sndUna === seqAdd(this.finSeq(), 1)) this.enterTimeWait();
        else this.setState('CLOSING');
        break;
      case 'FIN-WAIT-2':
        this.enterTimeWait();
        break;
      default:
        break;
    }
  }

  /** A retransmitted FIN in TIME-WAIT: acknowledge it and restart the 2 MSL wait (RFC 9293 3.10.7.4). */
  private restartTimeWait(): void {
    this.ackNow = true;
    this.closeAt = this.now() + this.config.timeWaitMs;
    this.armTimer();
  }

  private enterTimeWait(): void {
    this.setState('TIME-WAIT');
    // TIME-WAIT only answers retransmitted FINs (RFC 9293 3.10.7.4): no buffers for 2*MSL.
    this.sendBuffer.release();
    this.reassembly.clear();
    this.scoreboard.clear();
    this.rtoAt = 0;
    this.persistAt = 0;
    this.keepAliveAt = 0;
    this.delayedAckAt = 0;
    this.closeAt = this.now() + this.config.timeWaitMs;
    this.armTimer();
  }

  private establish(): void {
    this.sndUna = seqGt(this.sndUna, this.iss) ? this.sndUna : seqAdd(this.iss, 1);
    this.rcvAdv = seqAdd(this.rcvNxt, this.freeReceiveSpace());
    this.setState('ESTABLISHED');
    this.retries = 0;
    this.rtoAt = 0;
    if (this.keepAlive) this.keepAliveAt = this.now() + this.keepAliveIdleMs;
    this.armTimer();
    if (this.passive) this.layer.accept(this);
    else this.user?.onConnect();
    if (this.finQueued && this.state === 'ESTABLISHED') {
      this.setState('FIN-WAIT-1');
      this.output();
    }
  }

  // ---------------------------------------------------------------------------------------
  // Sending

  private isSynchronized(): boolean {
    const s = this.state;
    return s !== 'CLOSED' && s !== 'LISTEN' && s !== 'SYN-SENT' && s !== 'SYN-RECEIVED';
  }

  /** States in which new data (and our FIN) may go out. */
  private canSendData(): boolean {
    const s = this.state;
    return s === 'ESTABLISHED' || s === 'CLOSE-WAIT' || s === 'FIN-WAIT-1' || s === 'LAST-ACK' || s === 'CLOSING';
  }

  /** Sequence number of our FIN: right after all data the application gave us. */
  finSeq(): number {
    if (this.finQueued) return this.finSequence;
    return seqAdd(this.sndUna, this.sendBuffer.length + (this.sndUna === this.iss ? 1 : 0));
  }

  /** Free space in the receive buffer: what we can offer as window. */
  private freeReceiveSpace(): number {
    const unread = this.user ? this.user.unreadBytes() : 0;
    return Math.max(0, this.config.receiveBufferSize - unread - this.reassembly.bytes);
  }

  /**
   * The window to advertise (RFC 9293 3.8.6.2.2 receiver SWS avoidance): the right edge
   * moves only by at least min(buffer/2, MSS), and never left. Returns the field value.
   */
  private advertiseWindow(): number {
    const free = this.freeReceiveSpace();
    const right = seqAdd(this.rcvNxt, free);
    const threshold = Math.min(this.config.receiveBufferSize >> 1, this.receiveMss);
    if (seqGe(right, seqAdd(this.rcvAdv, threshold)) || (free >= threshold && seqGt(right, this.rcvAdv))) this.rcvAdv = right;
    if (seqLt(this.rcvAdv, this.rcvNxt)) this.rcvAdv = this.rcvNxt;
    const window = seqSub(this.rcvAdv, this.rcvNxt) >>> this.rcvWscale;
    return Math.min(window, 0xffff);
  }

  /**
   * Sends what the windows and the send rules allow (RFC 9293 3.8.6.2.1, RFC 1122 4.2.3.4),
   * then our FIN, then an ACK if one is owed and nothing carried it.
   */
  output(): void {
    if (!this.canSendData()) {
      this.flushAck();
      return;
    }
    const now = this.now();
    // RFC 5681 4.1: after an idle period longer than the RTO, restart from the initial window.
    if (this.sndUna === this.sndMax && this.lastSendTime > 0 && now - this.lastSendTime > this.rto.rto) this.cc.onIdleRestart();
    const finSeq = this.finSeq();
    const goal = this.sizeGoal();
    for (;;) {
      const inFlight = seqSub(this.sndNxt, this.sndUna);
      const offset = inFlight - (this.sndUna === this.iss ? 1 : 0);
      const unsent = this.sendBuffer.length - offset;
      if (unsent > 0) {
        // In SACK recovery the congestion window limits the pipe estimate (RFC 6675), not
        // everything between SND.UNA and SND.NXT.
        const flight = this.sackRecovery ? this.scoreboard.pipe(this.sndUna, this.sndMax, this.highRxt, this.sendMss) : inFlight;
        // Limited transmit (RFC 3042): the first two duplicate ACKs each let one new segment
        // out beyond cwnd, so that a small window still gathers the ACKs fast retransmit needs.
        const cwnd = this.inRecovery ? this.cc.cwnd : this.cc.cwnd + Math.min(this.dupAcks, 2) * this.sendMss;
        const usable = Math.min(this.sndWnd - inFlight, cwnd - flight);
        let len = Math.min(unsent, this.layer.maxSegmentPayload(this.sendMss), usable);
        if (len <= 0) break;
        // A super-frame (segmentation offload) carries whole MSS-sized segments only.
        if (len > this.sendMss) len -= len % this.sendMss;
        const idle = inFlight === 0;
        const last = len === unsent;
        // Super-frame sizing (as Linux's tcp_tso_should_defer and autocorking): a frame
        // short of the size goal waits while at least a goal's worth is in flight, since its
        // ACK comes soon and lets out a full frame with whatever was written meanwhile. A
        // segment shorter than the MSS is Nagle's business: with TCP_NODELAY it goes now.
        const defer = len < goal && inFlight >= goal && (len >= this.sendMss || !this.noDelay);
        if (defer && !this.forceSend && !this.inRecovery && !(last && this.finQueued)) break;
        let go = len >= this.sendMss;
        // Nagle (RFC 1122 4.2.3.4): a short segment waits while data is unacknowledged,
        // unless TCP_NODELAY; a FIN that can ride along lets it go (as Linux does).
        if (!go && last && (this.noDelay || idle || this.finQueued)) go = true;
        // Sender SWS avoidance (RFC 9293 3.8.6.2.1): a window-limited segment of at least
        // half the largest window the peer offered may go.
        if (!go && !last && len >= this.maxSndWnd >> 1 && (this.noDelay || idle)) go = true;
        if (this.forceSend) go = true;
        if (!go) break;
        const fin = this.finQueued && last && this.finAllowed();
        this.sendData(this.sndNxt, offset, len, fin);
        continue;
      }
      if (this.finQueued && this.finAllowed() && this.sndNxt === finSeq) {
        this.sendData(this.sndNxt, offset, 0, true);
      }
      break;
    }
    this.maybeStartPersist();
    this.flushAck();
  }

  /**
   * Payload goal of one frame: with segmentation offload, whole MSS-sized segments up to the
   * link's limit but at most a third of the window (Linux's tcp_tso_win_divisor), so that a
   * small window still has several frames in flight; without offload, one MSS.
   */
  private sizeGoal(): number {
    const max = this.layer.maxSegmentPayload(this.sendMss);
    if (max <= this.sendMss) return max;
    const third = Math.floor(Math.min(this.sndWnd, this.cc.cwnd) / 3);
    return Math.max(this.sendMss, Math.min(max, third - (third % this.sendMss)));
  }

  private finAllowed(): boolean {
    const s = this.state;
    return s === 'FIN-WAIT-1' || s === 'LAST-ACK' || s === 'CLOSING';
  }

  /**
   * Data waits and nothing is in flight to bring an ACK: with a zero window, probe it later
   * (RFC 9293 3.8.6.1, RFC 1122 4.2.2.17); with a window too small for the SWS rules, send
   * what fits when this override timer expires (RFC 9293 3.8.6.2.1).
   */
  private maybeStartPersist(): void {
    const inFlight = seqSub(this.sndNxt, this.sndUna);
    const offset = inFlight - (this.sndUna === this.iss ? 1 : 0);
    const waiting = this.sendBuffer.length - offset > 0;
    if (waiting && this.sndUna === this.sndMax && this.persistAt === 0) {
      this.rtoAt = 0;
      this.persistAt = this.now() + this.persistTimeout();
      this.armTimer();
    }
  }

  private persistTimeout(): number {
    return Math.min(this.config.rtoMaxMs, Math.max(this.config.rtoMinMs, this.rto.rto * 2 ** this.persistBackoff));
  }

  /** Sends a segment with data from the send buffer (offset bytes after SND.UNA's data). */
  private sendData(seq: number, offset: number, len: number, fin: boolean): void {
    const flags = ACK | (fin ? FIN : 0) | (len > 0 && (fin || offset + len === this.sendBuffer.length) ? PSH : 0);
    this.emit(flags, seq, offset, len);
    const end = seqAdd(seq, len + (fin ? 1 : 0));
    const isNew = seqGe(seq, this.sndMax);
    if (!isNew) {
      this.layer.retransmits++;
      this.lastRetransmitTs = this.layer.timestampNow();
    }
    if (seqGt(end, this.sndNxt)) this.sndNxt = end;
    if (seqGt(end, this.sndMax)) this.sndMax = end;
    if (isNew && !this.rttTiming && len > 0) {
      this.rttTiming = true;
      this.rttSeq = seq;
      this.rttStart = this.now();
    }
    this.lastSendTime = this.now();
    if (this.rtoAt === 0 && this.persistAt === 0) {
      this.rtoAt = this.now() + this.rto.rto;
      this.armTimer();
    }
    if (isNew && len > 0) this.scheduleTailLossProbe();
  }

  /**
   * RFC 8985 7.2: with SACK, a probe timeout of two round trips after the last new data
   * (plus the peer's delayed ACK when only one segment is out), so that a lost tail of the
   * flight is found by SACK in a few round trips rather than by the retransmission timeout.
   */
  private scheduleTailLossProbe(): void {
    if (!this.sackPermitted || !this.config.tailLossProbe || this.inRecovery || this.tlpOutstanding || !this.rto.hasSample) {
      return;
    }
    const inFlight = seqSub(this.sndMax, this.sndUna);
    if (inFlight === 0) {
      this.tlpAt = 0;
      return;
    }
    let pto = Math.max(2 * this.rto.srtt, 10);
    if (inFlight <= this.sendMss) pto += 200; // RFC 8985 7.2: WCDelAckT
    const at = this.now() + pto;
    if (this.rtoAt !== 0 && at >= this.rtoAt) return;
    this.tlpAt = at;
    this.armTimer();
  }

  /**
   * RFC 8985 7.3: the probe is new data if the windows allow it, else the last segment sent
   * again. Its SACK then shows what before it is missing.
   */
  private onTailLossProbe(): void {
    if (!this.canSendData() || this.inRecovery || this.sndUna === this.sndMax || this.tlpOutstanding) return;
    const dataEnd = seqAdd(this.sndUna, this.sendBuffer.length);
    const dataSent = seqGt(this.sndMax, dataEnd) ? dataEnd : this.sndMax;
    let start: number;
    let len: number;
    const unsent = seqSub(dataEnd, this.sndNxt);
    if (this.sndNxt === this.sndMax && seqLt(this.sndNxt, dataEnd) && seqSub(this.sndNxt, this.sndUna) + this.sendMss <= this.sndWnd) {
      start = this.sndNxt;
      len = Math.min(unsent, this.sendMss);
    } else {
      len = Math.min(seqSub(dataSent, this.sndUna), this.sendMss);
      start = seqAdd(dataSent, -len);
    }
    if (len <= 0) return;
    this.layer.tailLossProbes++;
    this.tlpOutstanding = true;
    this.tlpStart = start;
    this.tlpEnd = seqAdd(start, len);
    if (seqLt(start, this.sndMax)) {
      this.layer.retransmits++;
      this.emit(ACK, start, seqSub(start, this.sndUna), len);
    } else {
      this.sendData(start, seqSub(start, this.sndUna), len, false);
    }
    this.rtoAt = this.now() + this.rto.rto;
  }

  /** An ACK after a probe: if it SACKs the probe, what is missing before it was lost (RFC 8985 7.4). */
  private checkTailLossProbe(ack: number): void {
    if (!this.tlpOutstanding) return;
    if (seqGe(ack, this.tlpEnd)) {
      this.tlpOutstanding = false;
      return;
    }
    if (this.scoreboard.covers(seqMax(this.tlpStart, ack), this.tlpEnd)) {
      this.tlpOutstanding = false;
      if (seqGt(this.tlpStart, this.sndUna)) {
        this.scoreboard.lostBelow = this.tlpStart;
        this.scoreboard.hasLostBelow = true;
        this.maybeEnterRecovery();
      }
    }
  }

  /** Retransmits the first unacknowledged segment (fast retransmit, partial ACK). */
  private retransmitFirst(): void {
    const outstanding = seqSub(this.sndMax, this.sndUna);
    const dataOutstanding = Math.min(this.sendBuffer.length, outstanding);
    const len = Math.min(dataOutstanding, this.sendMss);
    const fin = this.finQueued && len === this.sendBuffer.length && seqGt(this.sndMax, this.finSeq());
    if (len === 0 && !fin) return;
    this.layer.retransmits++;
    this.lastRetransmitTs = this.layer.timestampNow();
    this.emit(ACK | (fin ? FIN : 0), this.sndUna, 0, len);
    if (seqLt(this.highRxt, seqAdd(this.sndUna, len))) this.highRxt = seqAdd(this.sndUna, len);
    this.retransmitMark = this.sndMax;
    this.rtoAt = this.now() + this.rto.rto;
    this.armTimer();
  }

  private sendSyn(): void {
    const flags = this.state === 'SYN-SENT' ? SYN : SYN | ACK;
    this.emit(flags, this.iss, 0, 0);
    if (seqLe(this.sndNxt, this.iss)) this.sndNxt = seqAdd(this.iss, 1);
    this.sndMax = seqAdd(this.iss, 1);
    if (this.retries === 0 && !this.rttTiming) {
      this.rttTiming = true;
      this.rttSeq = this.iss;
      this.rttStart = this.now();
    }
    this.rtoAt = this.now() + this.rto.rto;
    this.armTimer();
  }

  /**
   * A bare ACK (RFC 9293 3.10.7.4: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>). While going back
   * after a timeout SND.NXT is below what the peer has seen, and a segment with such an old
   * sequence number would be unacceptable to it, ACK and all: like BSD, bare ACKs carry the
   * highest sequence number sent instead.
   */
  sendAck(): void {
    this.emit(ACK, this.sndMax, 0, 0);
  }

  /** The end of the turn in which an ACK was deferred (TcpLayer.deferAck): send it if still owed. */
  flushDeferredAck(): void {
    if (!this.ackDeferred) return;
    this.ackDeferred = false;
    if (this.isSynchronized()) this.sendAck();
  }

  /** Sends an ACK now if one is owed. */
  private flushAck(): void {
    if (this.ackNow && this.state !== 'CLOSED' && this.state !== 'SYN-SENT') this.sendAck();
    this.ackNow = false;
  }

  private sendReset(): void {
    // Linux sends RST|ACK with the current ACK (tcp_send_active_reset).
    this.emit(RST | ACK, this.sndMax, 0, 0);
  }

  /** Builds and sends one segment; every segment but a SYN carries ACK = RCV.NXT. */
  private emit(flags: number, seq: number, offset: number, len: number): void {
    const r = this.layer.beginSegment(this);
    r.seq = seq;
    r.flags = flags;
    if (flags & SYN) {
      r.mss = this.receiveMss;
      // Options in a SYN-ACK only if the peer offered them (RFC 7323 1.3, RFC 2018 2).
      const active = this.state === 'SYN-SENT';
      if (this.offeredWscale >= 0 && (active || this.wscaleAgreed)) r.windowScale = this.offeredWscale;
      if (this.config.timestamps && (active || this.tsEnabled)) r.hasTimestamp = true;
      if (this.config.sack && (active || this.sackPermitted)) r.sackPermitted = true;
      // RFC 7323 2.2: the window in a SYN is not scaled.
      r.window = Math.min(this.config.receiveBufferSize, 0xffff);
      if (flags & ACK) {
        r.ack = this.rcvNxt;
        this.rcvAdv = seqAdd(this.rcvNxt, r.window);
      } else r.flags = SYN;
      if (r.hasTimestamp) {
        r.tsVal = this.layer.timestampNow();
        r.tsEcr = active ? 0 : this.tsRecent;
      }
    } else {
      r.ack = flags & ACK ? this.rcvNxt : 0;
      r.window = flags & RST ? 0 : this.advertiseWindow();
      if (this.tsEnabled) {
        r.hasTimestamp = true;
        r.tsVal = this.layer.timestampNow();
        r.tsEcr = this.tsRecent;
      }
      if (this.sackPermitted && !this.reassembly.isEmpty) {
        r.sackCount = this.reassembly.sackBlocks(r.sackBlocks, 3);
        // A full-sized segment has no room for them: fewer blocks rather than an IP fragment
        // (for a super-frame, each of the segments the link cuts from it carries the header).
        const segment = Math.min(len, this.sendMss);
        while (r.sackCount > 0 && tcpHeaderLength(r) + segment + 20 > this.layer.mtu) r.sackCount--;
      }
    }
    if (flags & ACK) {
      this.lastAckSent = this.rcvNxt;
      this.delayedAckAt = 0;
      this.segmentsSinceAck = 0;
      this.ackNow = false;
      this.ackDeferred = false;
    }
    this.layer.finishSegment(this, offset, len);
  }


  // ---------------------------------------------------------------------------------------
  // The timer

  /** The pending deadlines, relative to now (diagnostics). */
  debugTimers(): Record<string, number> {
    const now = this.now();
    const out: Record<string, number> = {};
    if (this.rtoAt) out.rto = this.rtoAt - now;
    if (this.tlpAt) out.tlp = this.tlpAt - now;
    if (this.persistAt) out.persist = this.persistAt - now;
    if (this.delayedAckAt) out.delayedAck = this.delayedAckAt - now;
    if (this.keepAliveAt) out.keepAlive = this.keepAliveAt - now;
    if (this.closeAt) out.close = this.closeAt - now;
    if (this.timerIndex >= 0) out.timer = this.timerAt - now;
    return out;
  }

  /** Queues the one timer for the earliest deadline (only ever earlier: a late fire re-arms). */
  private armTimer(): void {
    if (this.state === 'CLOSED') return;
    let next = Infinity;
    if (this.rtoAt !== 0 && this.rtoAt < next) next = this.rtoAt;
    if (this.persistAt !== 0 && this.persistAt < next) next = this.persistAt;
    if (this.tlpAt !== 0 && this.tlpAt < next) next = this.tlpAt;
    if (this.delayedAckAt !== 0 && this.delayedAckAt < next) next = this.delayedAckAt;
    if (this.keepAliveAt !== 0 && this.keepAliveAt < next) next = this.keepAliveAt;
    if (this.closeAt !== 0 && this.closeAt < next) next = this.closeAt;
    if (next === Infinity) return;
    if (this.timerIndex >= 0 && this.timerAt <= next) return;
    this.layer.timers.schedule(this, next);
  }

  /** The earliest deadline came (called by the layer's timer queue). */
  onTimer(): void {
    const now = this.now();
    if (this.closeAt !== 0 && this.closeAt <= now) {
      // TIME-WAIT over (RFC 9293 3.10.8), or an orphaned FIN-WAIT-2 given up.
      this.closeAt = 0;
      this.destroy(null);
      return;
    }
    if (this.rtoAt !== 0 && this.rtoAt <= now) {
      this.rtoAt = 0;
      this.onRetransmitTimeout();
      if ((this.state as TcpState) === 'CLOSED') return;
    }
    if (this.tlpAt !== 0 && this.tlpAt <= now) {
      this.tlpAt = 0;
      this.onTailLossProbe();
    }
    if (this.persistAt !== 0 && this.persistAt <= now) {
      this.persistAt = 0;
      this.onPersistTimeout();
      if ((this.state as TcpState) === 'CLOSED') return;
    }
    if (this.delayedAckAt !== 0 && this.delayedAckAt <= now) {
      this.delayedAckAt = 0;
      if (this.isSynchronized()) this.sendAck();
    }
    if (this.keepAliveAt !== 0 && this.keepAliveAt <= now) {
      this.keepAliveAt = 0;
      this.onKeepAliveTimeout();
      if ((this.state as TcpState) === 'CLOSED') return;
    }
    this.armTimer();
  }

  /** RFC 6298 5.4-5.6: retransmit the earliest segment, back off, and give up after the limit. */
  private onRetransmitTimeout(): void {
    if (this.sndUna === this.sndMax && this.state !== 'SYN-SENT' && this.state !== 'SYN-RECEIVED') return;
    this.retries++;
    this.layer.timeouts++;
    const limit =
      this.state === 'SYN-SENT' ? this.config.synRetries : this.state === 'SYN-RECEIVED' ? this.config.synAckRetries : this.config.maxRetries;
    if (this.retries > limit) {
      const err =
        this.state === 'SYN-SENT'
          ? systemError('ETIMEDOUT', 'connect', this.layer.formatAddress(this.remoteIp), this.remotePort)
          : systemError('ETIMEDOUT', 'read');
      this.destroy(this.state === 'SYN-RECEIVED' && this.passive ? null : err);
      return;
    }
    this.rto.backoff();
    this.rttTiming = false; // Karn: nothing sent before now may be timed
    if (this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED') {
      this.sndNxt = this.iss;
      this.lastRetransmitTs = this.layer.timestampNow();
      this.sendSyn();
      return;
    }
    // RFC 5681 3.1 eq. 4 and RFC 6582 4: collapse cwnd, remember the highest sent, and go
    // back to SND.UNA (go-back-N, as BSD and Linux do after a timeout).
    this.cc.onTimeout(seqSub(this.sndMax, this.sndUna), this.now());
    this.inRecovery = false;
    this.sackRecovery = false;
    // RFC 6675 5.1: after a timeout the SACK information is not trusted (the receiver may
    // have reneged); everything from SND.UNA goes again.
    this.scoreboard.clear();
    this.highRxt = this.sndUna;
    this.tlpAt = 0;
    this.tlpOutstanding = false;
    this.dupAcks = 0;
    this.recover = this.sndMax;
    this.sndNxt = this.sndUna;
    this.rtoAt = 0;
    this.output();
    if (this.rtoAt === 0 && this.persistAt === 0 && this.sndUna !== this.sndMax) {
      // Nothing could be sent (the window shrank to zero): keep the timer going.
      this.rtoAt = this.now() + this.rto.rto;
      this.armTimer();
    }
  }

  /**
   * RFC 1122 4.2.2.17 / RFC 9293 3.8.6.1: probe a zero window with one byte of new data,
   * with exponential backoff; the connection stays open however long the window stays shut.
   */
  private onPersistTimeout(): void {
    if (!this.canSendData()) return;
    if (this.sndWnd > 0) {
      // The SWS override: send what the small window allows.
      this.persistBackoff = 0;
      this.forceSend = true;
      this.output();
      this.forceSend = false;
      return;
    }
    const waiting = this.sendBuffer.length - seqSub(this.sndNxt, this.sndUna);
    if (waiting <= 0 && this.sndUna === this.sndMax) return;
    this.layer.persistProbes++;
    const len = Math.min(1, this.sendBuffer.length);
    if (len > 0) {
      this.probing = true;
      this.emit(ACK, this.sndUna, 0, 1);
      if (seqLt(this.sndNxt, seqAdd(this.sndUna, 1))) this.sndNxt = seqAdd(this.sndUna, 1);
      if (seqLt(this.sndMax, this.sndNxt)) this.sndMax = this.sndNxt;
    } else {
      this.sendAck();
    }
    if (this.persistBackoff < 16) this.persistBackoff++;
    this.persistAt = this.now() + this.persistTimeout();
  }

  /** RFC 1122 4.2.3.6: an idle connection is probed with SEG.SEQ = SND.NXT - 1 and no data. */
  private onKeepAliveTimeout(): void {
    if (!this.keepAlive || !this.isSynchronized() || this.state === 'TIME-WAIT') return;
    const now = this.now();
    const idle = now - this.lastReceiveTime;
    if (idle < this.keepAliveIdleMs && this.keepAliveProbesSent === 0) {
      this.keepAliveAt = this.lastReceiveTime + this.keepAliveIdleMs;
      return;
    }
    if (this.keepAliveProbesSent > 0 && this.lastReceiveTime > now - this.config.keepAliveIntervalMs * this.keepAliveProbesSent - 1) {
      // The peer answered since the first probe: start over.
      this.keepAliveProbesSent = 0;
      this.keepAliveAt = this.lastReceiveTime + this.keepAliveIdleMs;
      return;
    }
    if (this.keepAliveProbesSent >= this.config.keepAliveProbes) {
      this.destroy(systemError('ETIMEDOUT', 'read'));
      return;
    }
    this.keepAliveProbesSent++;
    this.emit(ACK, seqAdd(this.sndMax, -1), 0, 0);
    this.keepAliveAt = now + this.config.keepAliveIntervalMs;
  }

  // ---------------------------------------------------------------------------------------

  setState(state: TcpState): void {
    this.state = state;
  }

  /** Enters CLOSED: stops the timer, leaves the layer's tables and tells the socket. */
  destroy(err: SystemError | null): void {
    if (this.state === 'CLOSED') return;
    this.setState('CLOSED');
    this.layer.timers.cancel(this);
    this.rtoAt = this.persistAt = this.delayedAckAt = this.keepAliveAt = this.closeAt = this.tlpAt = 0;
    this.reassembly.clear();
    this.error = err;
    this.layer.remove(this);
    const user = this.user;
    this.user = null;
    user?.onClose(err);
  }
}

