// The transmission control block (RFC 9293 3.3.1): everything one connection remembers, and
// the context, the only things a connection may use of its layer. Like Linux's struct
// tcp_sock with tcp_input.c and tcp_output.c around it, the logic lives in files of its own
// that take a Tcb: input.ts (segment arrival, RFC 9293 3.10.7), receiver.ts (text and FIN),
// output.ts (the sender), emit.ts (building segments), closing.ts, recovery/, timers/.
// connection.ts is the TCB with its calls (open, send, close, ...) and dispatch.

import { AckPolicy, type AckHost } from './ack-policy.ts';
import type { TcpConfig } from './config.ts';
import { createCongestionControl } from './congestion/choose.ts';
import type { CongestionControl } from './congestion/congestion.ts';
import { ConnectionStats, type TcpCounters, type TcpEventName } from './counters.ts';
import { PushMarks } from './push-marks.ts';
import { ReassemblyQueue } from './reassembly.ts';
import { ReceiveEstimates } from './receive-estimates.ts';
import { RecoveryState } from './recovery/state.ts';
import { RackState } from './recovery/rack-state.ts';
import { SackScoreboard } from './recovery/scoreboard.ts';
import { SentSegments } from './recovery/sent-log.ts';
import { SendBuffer } from './send-buffer.ts';
import { seqAdd } from './seq.ts';
import type { TcpState, TcpEvent } from './state.ts';
import type { TcpRepr, TcpSegment } from './tcp-segment.ts';
import { Deadline, Deadlines } from './timers/deadlines.ts';
import { RttEstimator } from './timers/rtt.ts';
import type { MemoryBudget } from './memory.ts';
import type { SystemError } from '../util/errors.ts';

/** MSS assumed when the peer sends none (RFC 9293 3.7.1, RFC 1122 4.2.2.6). */
export const DEFAULT_MSS = 536;

/** Why a segment was sent: the trace and the probe say it with the segment. */
export type SendReason =
  | 'syn'
  | 'syn-retransmit'
  | 'data'
  | 'fin'
  | 'retransmit'
  | 'fast-retransmit'
  | 'partial-ack-retransmit'
  | 'sack-retransmit'
  | 'tail-loss-probe'
  | 'zero-window-probe'
  | 'keepalive'
  | 'ack'
  | 'delayed-ack'
  | 'challenge-ack'
  | 'reset'
  | 'reset-no-connection'
  | 'syn-cookie';

/**
 * The rule that retransmitted a segment: the retransmission timer (RFC 6298 5.4, also the
 * holes resent after it), RACK's time-based loss detection (RFC 8985 6.2), three duplicate
 * ACKs (RFC 5681 3.2), a SACK scoreboard hole (RFC 6675 5), a NewReno partial ACK (RFC 6582
 * 3.2), a tail loss probe (RFC 8985 7.3), or a SYN (or SYN-ACK) timing out (RFC 6298 5.7).
 */
export type RetransmitRule = 'rto' | 'rack' | 'dupacks' | 'sack' | 'partial-ack' | 'tlp' | 'syn';

/** The recovery phase as Linux names its congestion states (Open, Recovery) per algorithm. */
export type RecoveryPhase = 'open' | 'fast-recovery' | 'sack-recovery' | 'loss';

/**
 * An observer of TCP's inside. Every method is called only when a probe is set: the cost
 * without one is a null check per site. Arguments are valid only during the call.
 */
export interface TcpProbe {
  /** A segment in (conn null: no connection took it) or out, with why it was sent. */
  tcpSegment(direction: 'in' | 'out', conn: Tcb | null, seg: TcpSegment, reason: SendReason | null): void;
  /**
   * A state change, with the event and the RFC section that moved it. A connection hands
   * TIME-WAIT over to a compact entry (time-wait.ts): the end of the wait is the entry's.
   */
  tcpState(conn: Tcb | TimeWaitView, from: TcpState, to: TcpState, event: TcpEvent): void;
  /** cwnd, ssthresh or the recovery phase changed (conn.cc and conn.recoveryPhase hold the new values). */
  tcpCongestion(conn: Tcb, previous: CongestionSnapshot, cause: string): void;
  /** A new RTT sample or a backoff changed SRTT, RTTVAR or the RTO (read them from conn.rtt). */
  tcpRtt(conn: Tcb, cause: 'sample' | 'backoff'): void;
  /**
   * A segment carrying data (or a SYN or FIN) sent before goes again, by `rule`, with the
   * RTO's backoff count (conn.rtt.backoffs) at the time. Reported just before its segment.
   * Optional, as tcpProbeSent, for probes written before they existed.
   */
  tcpRetransmit?(conn: Tcb, rule: RetransmitRule, seq: number, len: number, backoff: number): void;
  /** A zero-window (persist) or keepalive probe goes, the count-th of its series (1 first). */
  tcpProbeSent?(conn: Tcb, kind: 'zero-window' | 'keepalive', count: number): void;
}

/** What a probe sees of a TIME-WAIT entry (time-wait.ts TimeWaitEntry). */
export interface TimeWaitView {
  readonly state: 'TIME-WAIT' | 'CLOSED';
  readonly localIp: number;
  readonly localPort: number;
  readonly remoteIp: number;
  readonly remotePort: number;
}

export interface CongestionSnapshot {
  cwnd: number;
  ssthresh: number;
  phase: RecoveryPhase;
}

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

/** All a connection may use of its layer (the layer implements it). */
export interface TcpContext {
  readonly config: TcpConfig;
  readonly mtu: number;
  /** How late the clock's timers may fire (Clock.timerSlackMs): pacing catches up by that much. */
  readonly timerSlackMs: number;
  readonly counters: TcpCounters;
  /** The observer, or null (the usual case). */
  readonly probe: TcpProbe | null;
  now(): number;
  /** RFC 7323 3: TSval from a millisecond clock. */
  timestampNow(): number;
  /** An initial sequence number for a 4-tuple (RFC 9293 3.4.1, RFC 6528). */
  isn(localIp: number, localPort: number, remoteIp: number, remotePort: number): number;
  formatAddress(addr: number): string;
  /** Most payload one segment may carry: the MSS, or a super-frame's worth with TSO. */
  maxSegmentPayload(mss: number): number;
  /** The layer's one segment repr, cleared, ports set, for conn's next segment. */
  beginSegment(conn: Tcb): TcpRepr;
  /** Sends that repr with len bytes of conn's send buffer from offset as payload. */
  transmit(conn: Tcb, offset: number, len: number, reason: SendReason): void;
  /** A reset for a segment no connection state can take (RFC 9293 3.10.7.1). */
  sendResetFor(seg: TcpSegment, remoteIp: number): void;
  /** A copy of received payload that the application will own. */
  copyPayload(buf: Buffer, off: number, len: number): Buffer;
  /** RFC 5961 7: whether a challenge ACK may go now (a budget shared by all connections). */
  allowChallengeAck(): boolean;
  /** Inside a receive batch: queue conn for its end (onBatchEnd) and return true. */
  deferToBatchEnd(conn: Tcb): boolean;
  /** Queue conn for the end of this event-loop turn (flushEndOfTurnAck). */
  deferToEndOfTurn(conn: Tcb): void;
  /** Queue conn's timer for `at` (its earliest deadline); cancelTimer takes it out. */
  schedule(conn: Tcb, at: number): void;
  cancelTimer(conn: Tcb): void;
  /** A passive connection reached ESTABLISHED: hand it to its listener. */
  accept(conn: Tcb): void;
  /** The connection entered CLOSED: forget it. */
  remove(conn: Tcb): void;
  /** The connection reached TIME-WAIT: a compact entry takes over (or none, the table full) and conn is done. */
  enterTimeWait(conn: Tcb): void;
  /** The buffer budget of all connections (Linux tcp_mem). */
  readonly memory: MemoryBudget;
  /** Orphans counted up (1) or down (-1). */
  orphanCount(delta: number): void;
  /** Linux tcp_check_oom: too many orphans (orphans << shift > maxOrphans), or conn out of memory. */
  checkOom(conn: Tcb, shift: number): boolean;
}

/** Send sequence variables (RFC 9293 3.3.1), grouped as gVisor's sender state. */
export class SendSequence {
  iss = 0;
  una = 0;
  nxt = 0;
  /** Highest sequence number sent plus one; SND.NXT goes back below it after a timeout. */
  max = 0;
  wnd = 0;
  wl1 = 0;
  wl2 = 0;
  /** Largest window the peer ever offered (RFC 9293 3.8.6.2.1 Max(SND.WND), RFC 5961 MAX.SND.WND). */
  maxWnd = 0;
  /** Shift for the peer's window field (RFC 7323 2.3); 0 without scaling. */
  wscale = 0;
  /** Largest segment payload we send (SMSS: the peer's MSS less our options). */
  mss = DEFAULT_MSS;
}

/** Receive sequence variables (RFC 9293 3.3.1). */
export class ReceiveSequence {
  irs = 0;
  nxt = 0;
  /** Right edge of the window we advertised: RCV.NXT + RCV.WND; it never moves left (RFC 9293 3.8.6.2.2). */
  adv = 0;
  wscale = 0;
  /** MSS we announce (from our MTU). */
  mss = 0;
}

export abstract class Tcb implements AckHost {
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

  readonly snd = new SendSequence();
  readonly rcv = new ReceiveSequence();

  // Options agreed in the handshake (RFC 7323, RFC 2018).
  /** Our offered window scale before negotiation; -1 when we do not offer it. */
  offeredWscale = -1;
  /** Both SYNs carried the window scale option (even a shift of 0). */
  wscaleAgreed = false;
  tsEnabled = false;
  tsRecent = 0;
  /** RCV.NXT in our last ACK (RFC 7323 4.3 Last.ACK.sent). */
  lastAckSent = 0;
  /** When we last answered an invalid segment with an ACK (Linux last_oow_ack_time; rate-limit.ts). */
  lastOowAckAt = -Infinity;
  sackPermitted = false;
  /**
   * A duplicate range to report in the first SACK block of our next ACK (RFC 2883 4), once;
   * dsackEnd === dsackStart when none is pending.
   */
  dsackStart = 0;
  dsackEnd = 0;

  // Application side.
  readonly sendBuffer: SendBuffer;
  /** Where PSH goes: the ends of the application's writes (push-marks.ts). */
  readonly pushMarks = new PushMarks();
  readonly reassembly: ReassemblyQueue;
  /** The application asked to close our sending side: a FIN follows the buffered data. */
  finQueued = false;
  /** Sequence number of our FIN, fixed when the application closes (no data follows it). */
  finSequence = 0;
  /** The peer's FIN has been received. */
  finReceived = false;
  /** The socket was closed by the application: nobody will read. */
  orphaned = false;
  noDelay = false;

  // Sending, retransmission and congestion.
  readonly rtt: RttEstimator;
  cc: CongestionControl;
  readonly recovery = new RecoveryState();
  /** What the peer's SACK blocks say it holds above SND.UNA (RFC 2018). */
  readonly scoreboard = new SackScoreboard();
  /** Each segment in flight with its send time and marks (SACKed, lost, retransmitted). */
  readonly sent: SentSegments;
  /** RACK's state (RFC 8985 6.1). */
  readonly rack = new RackState();
  /** Retransmissions of the same data in a row (RFC 1122 4.2.3.5 R2 counts them). */
  retries = 0;
  lastSendTime = 0;
  /** The SWS override timer expired: send even a small segment. */
  forceSend = false;
  /** A zero-window probe byte is outstanding. */
  probing = false;
  persistBackoff = 0;
  /** Zero-window probes unanswered (Linux icsk_probes_out; any acceptable ACK resets it), and when the first went. */
  probesOut = 0;
  probesStamp = 0;
  /** When the data now being retransmitted was first sent (Linux retrans_stamp), for the user timeout. */
  retransmitStamp = 0;
  /** TCP_USER_TIMEOUT in ms, 0 when off (config.userTimeoutMs, Socket.setUserTimeout). */
  userTimeoutMs: number;
  /** Buffer bytes this connection has charged to the layer's budget (memory.ts): send ring, received and unread. */
  sendCharged = 0;
  receiveCharged = 0;

  // Receiving.
  readonly ack: AckPolicy;
  lastReceiveTime = 0;

  // Keepalive (RFC 1122 4.2.3.6).
  keepAlive = false;
  keepAliveIdleMs: number;
  keepAliveProbesSent = 0;

  /** The named deadlines; the layer's queue holds the earliest (timerAt, timerIndex, timerSeq). */
  readonly timers = new Deadlines();
  timerAt = 0;
  timerIndex = -1;
  timerSeq = 0;
  /** Queued in the layer for the end of the receive batch. */
  batchPending = false;

  /** The error the connection failed with, kept for late writers. */
  error: SystemError | null = null;
  /** This connection's counters (the layer's TcpCounters sum them over all connections). */
  readonly stats = new ConnectionStats();

  /** When pacing lets the next data segment go (pacing.ts; Linux's tcp_wstamp_ns), ms. */
  pacingNextAt = 0;

  // What tcp_info reports (info.ts) that nothing else keeps.
  /** When data last went out, data last came in order, and an acceptable ACK last came (Linux lsndtime, icsk_ack.lrcvtime, rcv_tstamp). */
  lastDataSendTime: number;
  lastDataReceiveTime: number;
  lastAckReceiveTime: number;
  /** The path MTU our segments follow: the link's, lowered by ICMP fragmentation-needed (Linux icsk_pmtu_cookie). */
  pathMtu: number;
  /** The receiver's estimates of the peer's MSS, the receive RTT and rcv_space (receive-estimates.ts). */
  readonly receiveEstimates = new ReceiveEstimates();

  /** Last values told to the probe (made when a probe first asks). */
  private probed: CongestionSnapshot | null = null;

  constructor(
    readonly ctx: TcpContext,
    localIp: number,
    localPort: number,
    remoteIp: number,
    remotePort: number,
  ) {
    const config = ctx.config;
    this.localIp = localIp;
    this.localPort = localPort;
    this.remoteIp = remoteIp;
    this.remotePort = remotePort;
    this.rcv.mss = ctx.mtu - 40;
    this.sendBuffer = new SendBuffer(config.sendBufferSize);
    // One record per 256 bytes of send buffer (4,096 for 1 MiB), at least 1,024: MSS-sized
    // segments never fill it.
    this.sent = new SentSegments(Math.max(1024, config.sendBufferSize >> 8));
    this.reassembly = new ReassemblyQueue(config.maxOutOfOrderSegments > 0 ? config.maxOutOfOrderSegments : Math.ceil(config.receiveBufferSize / 512));
    this.rtt = new RttEstimator({ minMs: config.rtoMinMs, maxMs: config.rtoMaxMs, initialMs: config.rtoInitialMs });
    // Until the SYN's options tell the MSS (takeSynOptions chooses the configured one).
    this.cc = createCongestionControl('newreno', DEFAULT_MSS);
    this.keepAliveIdleMs = config.keepAliveIdleMs;
    this.userTimeoutMs = config.userTimeoutMs;
    this.ack = new AckPolicy(this);
    const now = ctx.now();
    this.lastDataSendTime = now;
    this.lastDataReceiveTime = now;
    this.lastAckReceiveTime = now;
    this.pathMtu = ctx.mtu;
  }

  get config(): TcpConfig {
    return this.ctx.config;
  }

  now(): number {
    return this.ctx.now();
  }

  /** The earliest deadline fired (called by the layer's timer queue). */
  abstract onTimer(): void;

  /** The receive batch this connection waited for ended (deferred.ts). */
  abstract onBatchEnd(): void;

  /** The end of the turn in which an ACK was put off (ack-policy.ts, deferred.ts). */
  abstract flushEndOfTurnAck(): void;

  /** Counts an event for this connection and for the layer. */
  count(event: TcpEventName, n = 1): void {
    this.stats[event] += n;
    this.ctx.counters[event] += n;
  }

  /** Sequence number of our FIN: right after all data the application gave us. */
  finSeq(): number {
    if (this.finQueued) return this.finSequence;
    return seqAdd(this.snd.una, this.sendBuffer.length + (this.snd.una === this.snd.iss ? 1 : 0));
  }

  get recoveryPhase(): RecoveryPhase {
    const r = this.recovery;
    if (!r.inRecovery) return 'open';
    return r.afterTimeout ? 'loss' : r.sackRecovery ? 'sack-recovery' : 'fast-recovery';
  }

  // ---------------------------------------------------------------------------------------
  // State changes

  /** Moves to the state the event leads to from the current one (state.ts). */
  transition(event: TcpEvent): void {
    const from = this.state;
    const to = event.next[from];
    if (to === undefined) throw new Error(`TCP event "${event.name}" does not apply in ${from}`);
    this.state = to;
    const probe = this.ctx.probe;
    if (probe !== null) probe.tcpState(this, from, to, event);
  }

  /**
   * Enters CLOSED: stops the timer, leaves the layer's tables, gives its buffers back to the
   * budget and tells the socket. Not reported to the probe when a TIME-WAIT entry took over.
   */
  destroy(err: SystemError | null, event: TcpEvent, report = true): void {
    const from = this.state;
    if (from === 'CLOSED') return;
    this.state = 'CLOSED';
    const probe = this.ctx.probe;
    if (probe !== null && report) probe.tcpState(this, from, 'CLOSED', event);
    this.ctx.cancelTimer(this);
    this.timers.clearAll();
    this.reassembly.clear();
    this.error = err;
    this.ctx.remove(this);
    this.ctx.memory.charge(-(this.sendCharged + this.receiveCharged));
    this.sendCharged = 0;
    this.receiveCharged = 0;
    const user = this.user;
    this.user = null;
    user?.onClose(err);
  }

  /**
   * Brings this connection's charge to the budget in line with what its buffers hold (Linux
   * sk_mem_charge, sk_mem_uncharge): the send ring's memory, and the bytes received that the
   * application has not read or that wait out of order. Under pressure an empty ring goes
   * back (sk_mem_reclaim).
   */
  syncMemory(): void {
    if (this.state === 'CLOSED') return; // destroy() gave everything back
    const m = this.ctx.memory;
    const sb = this.sendBuffer;
    if (m.underPressure && sb.length === 0) sb.release();
    const send = sb.capacity;
    if (send !== this.sendCharged) {
      m.charge(send - this.sendCharged);
      this.sendCharged = send;
    }
    const receive = (this.user !== null ? this.user.unreadBytes() : 0) + this.reassembly.bytes;
    if (receive !== this.receiveCharged) {
      m.charge(receive - this.receiveCharged);
      this.receiveCharged = receive;
    }
  }

  // ---------------------------------------------------------------------------------------
  // The timer

  /** Queues the one timer for the earliest deadline (only ever earlier: a late fire re-arms). */
  armTimer(): void {
    if (this.state === 'CLOSED') return;
    const next = this.timers.earliest();
    if (next === Infinity) return;
    if (this.timerIndex >= 0 && this.timerAt <= next) return;
    this.ctx.schedule(this, next);
  }

  /** Sets a deadline `ms` from now and arms the timer. */
  setDeadline(d: Deadline, at: number): void {
    this.timers.set(d, at);
    this.armTimer();
  }

  // ---------------------------------------------------------------------------------------
  // AckHost: how the ACK policy acts

  deferToBatchEnd(): boolean {
    return this.ctx.deferToBatchEnd(this);
  }

  deferToEndOfTurn(): void {
    if (this.ack.endOfTurn) return;
    this.ack.endOfTurn = true;
    this.ctx.deferToEndOfTurn(this);
  }

  get delayedAckArmed(): boolean {
    return this.timers.isSet(Deadline.DelayedAck);
  }

  armDelayedAck(): void {
    this.setDeadline(Deadline.DelayedAck, this.now() + this.config.delayedAckMs);
  }

  cancelDelayedAck(): void {
    this.timers.clear(Deadline.DelayedAck);
  }

  // ---------------------------------------------------------------------------------------
  // Probe reports (call only when ctx.probe is set)

  /** Tells the probe of cwnd, ssthresh or phase changes since the last report. */
  reportCongestion(cause: string): void {
    const probe = this.ctx.probe;
    if (probe === null) return;
    const last = (this.probed ??= { cwnd: 0, ssthresh: 0, phase: 'open' });
    const cwnd = this.cc.cwnd;
    const ssthresh = this.cc.ssthresh;
    const phase = this.recoveryPhase;
    if (cwnd === last.cwnd && ssthresh === last.ssthresh && phase === last.phase) return;
    const previous = { cwnd: last.cwnd, ssthresh: last.ssthresh, phase: last.phase };
    last.cwnd = cwnd;
    last.ssthresh = ssthresh;
    last.phase = phase;
    probe.tcpCongestion(this, previous, cause);
  }
}
