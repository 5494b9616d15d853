// The TCP layer: demultiplexes segments to connections by 4-tuple, answers for listening
// ports (RFC 9293 3.10.7.2) with a bounded SYN queue and SYN cookies, resets segments for
// closed ports (RFC 9293 3.10.7.1), and is the context of its connections (tcb.ts
// TcpContext): their clock, their timers, the batching of their output and ACKs, and the one
// transmit buffer they all share.

import { sharedTxScratch } from '../util/tx-scratch.ts';
import { formatIpv4 } from '../ipv4/address.ts';
import { ICMP_DEST_UNREACHABLE, UNREACH_FRAG_NEEDED, UNREACH_PORT, UNREACH_PROTOCOL } from '../ipv4/icmp-packet.ts';
import { IPV4_MIN_HEADER, type Ipv4Packet, PROTO_TCP } from '../ipv4/ipv4-packet.ts';
import { type IcmpErrorInfo, type Ipv4Layer, TX_HEADROOM } from '../ipv4/ipv4.ts';
import type { Clock } from '../util/clock.ts';
import { systemError } from '../util/errors.ts';
import { seededRandom } from '../util/random.ts';
import { abort } from './closing.ts';
import { DEFAULT_TCP_CONFIG, type TcpConfig } from './config.ts';
import { Connection } from './connection.ts';
import { ConnectionTable } from './connection-table.ts';
import { DeferredWork } from './deferred.ts';
import { TcpCounters } from './counters.ts';
import { IsnGenerator } from './isn.ts';
import { PayloadSlab } from './payload-slab.ts';
import { PortSelector } from './ports.ts';
import { ChallengeAckBudget } from './rate-limit.ts';
import { seqAdd, seqBetween } from './seq.ts';
import { TCP_EVENTS } from './state.ts';
import { SYNCOOKIE_VALID_MS, SynCookies } from './syn-cookies.ts';
import type { SendReason, Tcb, TcpContext, TcpProbe } from './tcb.ts';
import { reportSendReason } from './probe-report.ts';
import { ACK, clearTcpOptions, emitTcp, newTcpRepr, RST, SYN, TCP_MAX_HEADER, tcpHeaderLength, type TcpRepr, TcpSegment } from './tcp-segment.ts';
import { TimeWaitEntry, TimeWaitTable } from './time-wait.ts';
import { type TimerEntry, TimerQueue } from './timers/queue.ts';
import { MEMORY_MIN, MemoryBudget } from './memory.ts';
import { LoopHold } from '../util/loop-hold.ts';
import { defaultLookup, type LookupFunction } from './lookup.ts';

export interface TcpLayerHost {
  readonly clock: Clock;
  readonly ipv4: Ipv4Layer;
  readonly ip: number;
  readonly mtu: number;
  readonly seed: number | undefined;
  /** True while a batch of received frames is processed; onBatchEnd handlers run after it. */
  readonly inReceiveBatch?: boolean;
  /** Runs handler.endBatch() after each receive batch (Stack.onBatchEnd). */
  onBatchEnd?(handler: { endBatch(): void }): unknown;
  /** Counts the ref'd sockets and servers that keep Node's event loop alive (ref/unref). */
  readonly loopHold?: LoopHold;
  /** Name resolution for connect and listen (Node's lookup contract); default defaultLookup. */
  readonly lookup?: LookupFunction;
}

/** A listening port: the server side of passive opens. */
export class Listener {
  /** Half-open connections (SYN-RECEIVED) counted against the SYN queue bound. */
  halfOpen = 0;
  /** When the SYN queue last overflowed (Linux's tcp_synq_overflow stamp). */
  lastOverflow = -Infinity;
  constructor(
    readonly port: number,
    readonly synBacklog: number,
    /** Called with the listener itself, so that one function can serve many (the built-in services). */
    readonly onAccept: (conn: Connection, listener: Listener) => void,
    /** Whatever the owner keeps with the listener (a service's set and handler). */
    readonly context: unknown = null,
  ) {}
}

export class TcpLayer implements TcpContext {
  readonly counters = new TcpCounters();
  readonly config: TcpConfig;
  readonly clock: Clock;
  readonly ipv4: Ipv4Layer;
  /** The stack's address; Stack.setAddress changes it (DHCP). */
  ip: number;
  readonly timerSlackMs: number;
  readonly mtu: number;
  private isns: IsnGenerator | null = null;
  /** Made at the first connection (the fleet's idle devices never need one), from the stack's seed. */
  get isnGenerator(): IsnGenerator {
    return (this.isns ??= new IsnGenerator(this.clock, this.host.seed));
  }
  /** The observer of every segment, state change and congestion change (Stack.setProbe). */
  probe: TcpProbe | null = null;
  /** Every connection's one timer (and every TIME-WAIT entry's), in one heap under one clock timer. */
  readonly timers: TimerQueue<TimerEntry>;
  private readonly table = new ConnectionTable<Connection>();
  /** Compact TIME-WAIT entries (Linux inet_timewait_sock), capped by maxTimeWait. */
  private readonly timeWait: TimeWaitTable;
  /** The buffers of all connections against tcp_mem-like limits. */
  readonly memory: MemoryBudget;
  readonly listeners = new Map<number, Listener>();
  private readonly segment = new TcpSegment();
  /** A second view, for the probe's look at what we send. */
  private readonly sentSegment = new TcpSegment();
  private readonly repr: TcpRepr = newTcpRepr();
  private readonly txBuffer: Buffer;
  /** Largest IPv4 datagram to send as one super-frame (the link segments it); else the MTU. */
  private readonly gsoMaxSize: number;
  /** One options object for every ipv4.send: IPv4 completes (or offloads) our checksum. */
  private readonly sendOptions = { checksumField: 16, segmentSize: 0 };
  private portSelector: PortSelector | null = null;
  private get ports(): PortSelector {
    return (this.portSelector ??= new PortSelector(this.host.seed));
  }
  private readonly host: TcpLayerHost;
  private cookieJar: SynCookies | null = null;
  /** SYN cookies' secrets are made when a listener first needs them (a fleet's devices mostly never do). */
  private get cookies(): SynCookies {
    return (this.cookieJar ??= new SynCookies(this.host.seed, this.clock, this.config, this.ip, this.mtu));
  }
  private readonly slab = new PayloadSlab();
  private readonly challengeAcks: ChallengeAckBudget;
  /** Output and ACKs put off to the end of the receive batch or of the turn. */
  private readonly deferred: DeferredWork<Tcb>;
  private closed = false;
  readonly loopHold: LoopHold;
  readonly lookup: LookupFunction;

  constructor(host: TcpLayerHost, config: Partial<TcpConfig> = {}) {
    // A copy of its own: drill's sysctls change a running layer's config in place.
    this.config = { ...DEFAULT_TCP_CONFIG, ...config };
    this.host = host;
    this.clock = host.clock;
    this.ipv4 = host.ipv4;
    this.ip = host.ip;
    this.mtu = host.mtu;
    this.timerSlackMs = host.clock.timerSlackMs ?? 0;
    this.loopHold = host.loopHold ?? new LoopHold();
    this.lookup = host.lookup ?? defaultLookup(host.ip);
    this.timers = new TimerQueue(host.clock);
    this.timeWait = new TimeWaitTable(this, this.config.timeWaitMs, this.config.invalidRateLimitMs);
    this.memory = new MemoryBudget(this.config, this.counters);
    // Room for a TCP super-frame when the link segments for us (offloads: gsoMaxSize).
    this.txBuffer = sharedTxScratch('tcp', TX_HEADROOM + Math.max(host.mtu, host.ipv4.gsoMaxSize, TCP_MAX_HEADER + 1));
    this.gsoMaxSize = host.ipv4.gsoMaxSize;
    const challengeRandom = host.seed === undefined ? Math.random : seededRandom(host.seed ^ 0xc4a11);
    this.challengeAcks = new ChallengeAckBudget(host.clock, this.config.challengeAckLimit, challengeRandom);
    // With offloads the kernel has checked (or will complete) the checksum: we skip ours then.
    host.ipv4.register(PROTO_TCP, this, undefined, { checksumOffload: true });
    this.deferred = new DeferredWork(host.clock);
    host.onBatchEnd?.(this.deferred);
  }

  /** Connections and TIME-WAIT entries held. */
  get size(): number {
    return this.table.size + this.timeWait.size;
  }

  // ---------------------------------------------------------------------------------------
  // TcpContext: what connections use

  now(): number {
    return this.clock.now();
  }

  /** RFC 7323 3: TSval from a millisecond clock. */
  timestampNow(): number {
    return Math.floor(this.clock.now()) >>> 0;
  }

  isn(localIp: number, localPort: number, remoteIp: number, remotePort: number): number {
    return this.isnGenerator.next(localIp, localPort, remoteIp, remotePort);
  }

  formatAddress(addr: number): string {
    return formatIpv4(addr);
  }

  copyPayload(buf: Buffer, off: number, len: number): Buffer {
    return this.slab.copy(buf, off, len);
  }

  allowChallengeAck(): boolean {
    return this.challengeAcks.allow();
  }

  schedule(conn: Tcb, at: number): void {
    this.timers.schedule(conn, at);
  }

  cancelTimer(conn: Tcb): void {
    this.timers.cancel(conn);
  }

  /** Inside a receive batch: conn's output waits for the batch's end (deferred.ts); else send now. */
  deferToBatchEnd(conn: Tcb): boolean {
    if (this.host.inReceiveBatch !== true) return false;
    this.deferred.toBatchEnd(conn);
    return true;
  }

  /** conn owes its peer an ACK at the end of this event-loop turn, unless a segment carries it first. */
  deferToEndOfTurn(conn: Tcb): void {
    this.deferred.toEndOfTurn(conn);
  }

  /** A passive connection reached ESTABLISHED: hand it to its listener. */
  accept(tcb: Tcb): void {
    // Every Tcb the layer's connections pass here is a Connection the layer created.
    const conn = tcb as Connection;
    const listener = this.listeners.get(conn.listenerPort);
    if (listener) listener.halfOpen--;
    conn.listenerPort = -1;
    if (!listener) {
      abort(conn, null, TCP_EVENTS.listenerGone);
      return;
    }
    listener.onAccept(conn, listener);
  }

  /** Called by a connection entering CLOSED. */
  remove(conn: Tcb): void {
    if (this.table.remove(conn)) this.counters.connections--;
    if (conn.orphaned) this.orphanCount(-1);
    if (conn.listenerPort >= 0) {
      const l = this.listeners.get(conn.listenerPort);
      if (l) l.halfOpen--;
      conn.listenerPort = -1;
    }
  }

  /**
   * The connection reached TIME-WAIT: a compact entry answers for it from now on and the
   * connection is done (Linux tcp_time_wait). With maxTimeWait entries already, it closes
   * without TIME-WAIT ("TCP: time wait bucket table overflow"), counted.
   */
  enterTimeWait(conn: Tcb): void {
    if (this.timeWait.size >= this.config.maxTimeWait) {
      this.counters.timeWaitOverflows++;
      conn.destroy(null, TCP_EVENTS.timeWaitOverflow);
      return;
    }
    const rcv = conn.rcv;
    // Rounded up as advertiseWindow rounds it, so that the edge does not move left (RFC 7323 2.4).
    const window = Math.min(Math.ceil(((rcv.adv - rcv.nxt) >>> 0) / 2 ** rcv.wscale), 0xffff);
    const tw = new TimeWaitEntry(this.timeWait, conn.localIp, conn.localPort, conn.remoteIp, conn.remotePort, conn.snd.max, rcv.nxt, window, conn.tsEnabled, conn.tsRecent);
    conn.destroy(null, TCP_EVENTS.timeWaitTimeout, false);
    this.timeWait.add(tw);
  }

  /** <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> from a TIME-WAIT entry (Linux tcp_v4_timewait_ack). */
  sendTimeWaitAck(tw: TimeWaitEntry): void {
    const r = this.repr;
    clearTcpOptions(r);
    r.srcPort = tw.localPort;
    r.dstPort = tw.remotePort;
    r.seq = tw.sndNxt;
    r.ack = tw.rcvNxt;
    r.flags = ACK;
    r.window = tw.window;
    r.urgentPointer = 0;
    if (tw.tsEnabled) {
      r.hasTimestamp = true;
      r.tsVal = this.timestampNow();
      r.tsEcr = tw.tsRecent;
    }
    this.send(null, tw.remoteIp, 0, 0, 'ack');
  }

  orphanCount(delta: number): void {
    const before = this.counters.orphans;
    this.counters.orphans += delta;
    // Orphans still have data or a FIN to deliver, which Linux would deliver after the
    // process exits: the loop is held until they are done (FIN-WAIT-2 at most
    // tcp_fin_timeout; TIME-WAIT entries hold nothing).
    if (before === 0 && this.counters.orphans > 0) this.loopHold.ref();
    else if (before > 0 && this.counters.orphans === 0) this.loopHold.unref();
  }

  /**
   * Linux tcp_check_oom: orphans too many (tcp_too_many_orphans, shifted to count an idle
   * one double), or the budget past its high mark while conn holds more than its minimum
   * (tcp_out_of_memory).
   */
  checkOom(conn: Tcb, shift: number): boolean {
    if (this.counters.orphans << shift > this.config.maxOrphans) return true;
    return this.memory.exhausted && conn.sendCharged > MEMORY_MIN;
  }

  /** Starts a segment for conn in the shared repr (ports set, options cleared). */
  beginSegment(conn: Tcb): TcpRepr {
    const r = this.repr;
    clearTcpOptions(r);
    r.srcPort = conn.localPort;
    r.dstPort = conn.remotePort;
    r.ack = 0;
    r.urgentPointer = 0;
    return r;
  }

  /**
   * Most payload one segment may carry: the MSS, or with segmentation offload a super-frame
   * of whole MSS-sized segments up to gsoMaxSize, which the link cuts into segments.
   */
  maxSegmentPayload(mss: number): number {
    if (this.gsoMaxSize <= this.mtu) return mss;
    const room = this.gsoMaxSize - IPV4_MIN_HEADER - TCP_MAX_HEADER;
    return Math.max(mss, room - (room % mss));
  }

  /** Copies len bytes of conn's send buffer (from offset) after the header and sends. */
  transmit(conn: Tcb, offset: number, len: number, reason: SendReason): void {
    if (len > 0) {
      const headerLength = tcpHeaderLength(this.repr);
      conn.sendBuffer.copyOut(offset, this.txBuffer, TX_HEADROOM + headerLength, len);
    }
    this.send(conn, conn.remoteIp, len, len > conn.snd.mss ? conn.snd.mss : 0, reason);
  }

  // ---------------------------------------------------------------------------------------
  // Tables and opens

  find(localPort: number, remoteIp: number, remotePort: number): Connection | undefined {
    return this.table.find(localPort, remoteIp, remotePort);
  }

  /** Is the 4-tuple taken, by a connection or a TIME-WAIT entry (Linux __inet_check_established, tcp_tw_reuse off)? */
  private inUse(localPort: number, remoteIp: number, remotePort: number): boolean {
    return this.find(localPort, remoteIp, remotePort) !== undefined || this.timeWait.find(localPort, remoteIp, remotePort) !== undefined;
  }

  /** The TIME-WAIT entry of a 4-tuple, if it is waiting. */
  findTimeWait(localPort: number, remoteIp: number, remotePort: number): TimeWaitEntry | undefined {
    return this.timeWait.find(localPort, remoteIp, remotePort);
  }

  private add(conn: Connection): void {
    this.table.add(conn);
    this.counters.connections++;
  }

  /** Every connection (for tests and statistics). */
  all(): IterableIterator<Connection> {
    return this.table.all();
  }

  /** Every TIME-WAIT entry (for tests and statistics). */
  allTimeWait(): IterableIterator<TimeWaitEntry> {
    return this.timeWait.all();
  }

  listen(port: number, backlog: number, onAccept: (conn: Connection, listener: Listener) => void, context: unknown = null): Listener | 'EADDRINUSE' {
    if (this.listeners.has(port)) return 'EADDRINUSE';
    const listener = new Listener(port, Math.max(1, Math.min(backlog, this.config.maxSynBacklog)), onAccept, context);
    this.listeners.set(port, listener);
    this.counters.listeners = this.listeners.size;
    return listener;
  }

  /** Stops listening; connections not yet accepted are reset, as Linux does on close(). */
  unlisten(listener: Listener): void {
    if (this.listeners.get(listener.port) !== listener) return;
    this.listeners.delete(listener.port);
    this.counters.listeners = this.listeners.size;
    for (const conn of [...this.all()]) {
      if (conn.listenerPort === listener.port && conn.state === 'SYN-RECEIVED') abort(conn, null, TCP_EVENTS.listenerGone);
    }
  }

  /** A free local port for a connection to remoteIp:remotePort (RFC 6056 algorithm 4, ports.ts). */
  ephemeralPort(remoteIp: number, remotePort: number): number | null {
    return this.ports.select(this.ip, remoteIp, remotePort, (port) => !this.listeners.has(port) && !this.inUse(port, remoteIp, remotePort));
  }

  /**
   * Creates a connection in CLOSED, ready for openActive (which sends its SYN). Past
   * maxConnections: ENOBUFS, what Linux's connect() says when it cannot get the resources
   * for a connection (EADDRNOTAVAIL already means the ports ran out).
   */
  connect(remoteIp: number, remotePort: number, localPort?: number): Connection | 'EADDRINUSE' | 'EADDRNOTAVAIL' | 'ENOBUFS' {
    if (this.table.size >= this.config.maxConnections) {
      this.counters.drop('tcp-connection-limit');
      return 'ENOBUFS';
    }
    const port = localPort || this.ephemeralPort(remoteIp, remotePort);
    if (port === null) return 'EADDRNOTAVAIL';
    if (this.inUse(port, remoteIp, remotePort)) return 'EADDRINUSE';
    const conn = new Connection(this, this.ip, port, remoteIp, remotePort);
    this.add(conn);
    return conn;
  }

  private newPassive(listener: Listener, seg: TcpSegment, remoteIp: number): Connection {
    const conn = new Connection(this, this.ip, seg.dstPort, remoteIp, seg.srcPort);
    conn.listenerPort = listener.port;
    // The SYN (or the cookie's ACK) is its first segment in (as Linux's child: segs_in = 1).
    conn.stats.segmentsIn = 1;
    listener.halfOpen++;
    this.add(conn);
    return conn;
  }

  // ---------------------------------------------------------------------------------------
  // Receive

  /** Entry point from IPv4. Never throws; bad segments are counted with a reason. */
  receive(ip: Ipv4Packet, off: number, len: number, checksumTrusted = false): void {
    this.counters.rx++;
    const seg = this.segment;
    const bad = seg.parse(ip.buf, off, len, ip.src, ip.dst, !checksumTrusted);
    if (bad) return this.counters.drop(bad);
    // RFC 1122 4.2.3.10: segments to broadcast or multicast addresses are not for TCP.
    if (ip.dst !== this.ip) return this.counters.drop('tcp-not-unicast');
    const remoteIp = ip.src;
    const localPort = seg.dstPort;
    const conn = this.find(localPort, remoteIp, seg.srcPort);
    const probe = this.probe;
    if (probe !== null) probe.tcpSegment('in', conn ?? null, seg, null);
    if (conn) {
      // A coalesced super-frame (offloads) counts as the segments it holds, as Linux's
      // gso_segs: no single segment is longer than the MSS we announced.
      const stats = conn.stats;
      const length = seg.payloadLength;
      const segments = length > conn.rcv.mss ? Math.ceil(length / conn.receiveEstimates.mss) : 1;
      stats.segmentsIn += segments;
      if (length > 0) stats.dataSegmentsIn += segments;
      conn.receive(seg);
      return;
    }
    if (this.timeWait.size > 0) {
      const tw = this.timeWait.find(localPort, remoteIp, seg.srcPort);
      // A new SYN that ends the wait goes on to the listener (time-wait.ts).
      if (tw !== undefined && this.timeWait.receive(tw, seg, this.listeners.has(localPort))) return;
    }
    const listener = this.listeners.get(localPort);
    if (!listener) {
      this.counters.drop('tcp-port-closed');
      this.sendResetFor(seg, remoteIp);
      return;
    }
    this.receiveOnListener(listener, seg, remoteIp);
  }

  /** RFC 9293 3.10.7.2: LISTEN state. */
  private receiveOnListener(listener: Listener, seg: TcpSegment, remoteIp: number): void {
    const flags = seg.flags;
    if (flags & RST) return this.counters.drop('tcp-listen-rst'); // first: an RST is ignored
    if (flags & ACK) {
      // second: an ACK is bad here, unless it completes a SYN cookie handshake; cookies are
      // checked only after a recent overflow (Linux tcp_synq_no_recent_overflow).
      const recentOverflow = this.clock.now() - listener.lastOverflow <= SYNCOOKIE_VALID_MS;
      if (!(flags & SYN) && this.config.synCookies && recentOverflow && this.acceptCookie(listener, seg, remoteIp)) return;
      this.counters.drop('tcp-listen-ack');
      this.sendResetFor(seg, remoteIp);
      return;
    }
    if (!(flags & SYN)) return this.counters.drop('tcp-listen-no-syn');
    if (listener.halfOpen >= listener.synBacklog) {
      // The SYN queue is full: answer statelessly with a cookie, or drop (RFC 4987 3.6).
      listener.lastOverflow = this.clock.now();
      if (this.config.synCookies) this.sendSynCookie(seg, remoteIp);
      else this.counters.drop('tcp-syn-queue-full');
      return;
    }
    // Past maxConnections a SYN is dropped, as Linux drops one for a full accept queue (tcp_abort_on_overflow = 0).
    if (this.table.size >= this.config.maxConnections) return this.counters.drop('tcp-connection-limit');
    this.newPassive(listener, seg, remoteIp).openPassive(seg);
  }

  /** Starts the shared repr as an answer to seg (ports swapped, options cleared). */
  private beginReply(seg: TcpSegment): TcpRepr {
    const r = this.repr;
    clearTcpOptions(r);
    r.srcPort = seg.dstPort;
    r.dstPort = seg.srcPort;
    r.window = 0;
    r.urgentPointer = 0;
    return r;
  }

  private sendSynCookie(seg: TcpSegment, remoteIp: number): void {
    this.cookies.synAck(seg, this.beginReply(seg), this.timestampNow(), remoteIp);
    this.counters.synCookiesSent++;
    this.send(null, remoteIp, 0, 0, 'syn-cookie');
  }

  private acceptCookie(listener: Listener, seg: TcpSegment, remoteIp: number): boolean {
    const cookie = this.cookies.check(seg, remoteIp);
    if (cookie === null) {
      this.counters.synCookiesFailed++;
      return false;
    }
    if (this.table.size >= this.config.maxConnections) {
      this.counters.drop('tcp-connection-limit');
      return true;
    }
    const conn = this.newPassive(listener, seg, remoteIp);
    conn.openFromCookie(cookie.irs, cookie.iss, cookie.mss, cookie.options);
    this.counters.synCookiesAccepted++;
    conn.receive(seg);
    return true;
  }

  /**
   * ICMP errors about our segments (RFC 1122 4.2.3.9, RFC 5927 4.1: only when the quoted
   * sequence number is in flight). Port and protocol unreachable abort a connection being
   * opened with ECONNREFUSED, as Linux does; "fragmentation needed" lowers the MSS (RFC 1191).
   * (Ipv4Transport.)
   */
  receiveIcmpError(info: IcmpErrorInfo, quoted: Ipv4Packet, off: number, len: number): void {
    if (len < 8) return;
    const buf = quoted.buf;
    const conn = this.find(buf.readUInt16BE(off), quoted.dst, buf.readUInt16BE(off + 2));
    if (!conn) return this.counters.drop('tcp-icmp-no-connection');
    const seq = buf.readUInt32BE(off + 4);
    if (!seqBetween(conn.snd.una, seq, conn.snd.max)) return this.counters.drop('tcp-icmp-seq-not-in-flight');
    if (info.type === ICMP_DEST_UNREACHABLE) {
      if (info.code === UNREACH_FRAG_NEEDED) {
        if (info.mtu >= 68) conn.lowerMss(info.mtu - 40);
        return;
      }
      if ((info.code === UNREACH_PORT || info.code === UNREACH_PROTOCOL) && conn.state === 'SYN-SENT') {
        conn.destroy(systemError('ECONNREFUSED', 'connect', formatIpv4(conn.remoteIp), conn.remotePort), TCP_EVENTS.refused);
        return;
      }
    }
    this.counters.drop('tcp-icmp-soft-error');
  }

  // ---------------------------------------------------------------------------------------
  // Transmit

  /** Sends the shared repr; segmentSize: the MSS when the payload is a super-frame for the link to segment (TSO). */
  private send(conn: Tcb | null, remoteIp: number, payloadLength: number, segmentSize: number, reason: SendReason): void {
    if (this.closed) return;
    const headerLength = emitTcp(this.txBuffer, TX_HEADROOM, this.repr, payloadLength, this.ip, remoteIp, false);
    this.counters.tx++;
    if (this.repr.flags & RST) this.counters.resetsSent++;
    const probe = this.probe;
    if (probe !== null) {
      const view = this.sentSegment;
      // The checksum is not filled in yet (IPv4 does it): parse without verifying.
      if (view.parse(this.txBuffer, TX_HEADROOM, headerLength + payloadLength, this.ip, remoteIp, false) === null) {
        if (conn !== null) reportSendReason(probe, conn, view, reason);
        probe.tcpSegment('out', conn, view, reason);
      }
    }
    this.sendOptions.segmentSize = segmentSize;
    const err = this.ipv4.send(PROTO_TCP, remoteIp, this.txBuffer, TX_HEADROOM, headerLength + payloadLength, this.sendOptions);
    if (err) this.counters.drop(`tcp-send-${err}`);
  }

  /**
   * A reset in answer to a segment that has no connection to go to (RFC 9293 3.10.7.1):
   * with ACK set, <SEQ=SEG.ACK><CTL=RST>; else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
   * Never in answer to a reset.
   */
  sendResetFor(seg: TcpSegment, remoteIp: number): void {
    const flags = seg.flags;
    if (flags & RST) return;
    const r = this.beginReply(seg);
    if (flags & ACK) {
      r.seq = seg.ack;
      r.ack = 0;
      r.flags = RST;
    } else {
      r.seq = 0;
      r.ack = seqAdd(seg.seq, seg.segmentLength);
      r.flags = RST | ACK;
    }
    this.send(null, remoteIp, 0, 0, 'reset-no-connection');
  }

  /** Closing the stack resets every connection, as a host going down would. */
  close(): void {
    for (const conn of [...this.all()]) abort(conn, null, TCP_EVENTS.stackClosed);
    this.timeWait.clear();
    this.listeners.clear();
    this.counters.listeners = 0;
    this.timers.stop();
    this.closed = true;
  }
}

