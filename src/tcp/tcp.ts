// The TCP layer: demultiplexes segments to connections by 4-tuple, answers for listening
// ports (RFC 9293 3.10.7.2) with a bounded SYN queue and SYN cookies, resets segments for
// closed ports (RFC 9293 3.10.7.1), and owns the one transmit buffer all connections share.

import type { Clock } from '../util/clock.ts';
import { LayerCounters } from '../util/counters.ts';
import { seededRandom } from '../util/random.ts';
import { formatIpv4 } from '../ipv4/address.ts';
import { IPV4_MIN_HEADER, type Ipv4Packet, PROTO_TCP } from '../ipv4/ipv4-packet.ts';
import { ICMP_DEST_UNREACHABLE, UNREACH_FRAG_NEEDED, UNREACH_PORT, UNREACH_PROTOCOL } from '../ipv4/icmp-packet.ts';
import { type IcmpErrorInfo, type Ipv4Layer, TX_HEADROOM } from '../ipv4/ipv4.ts';
import { DEFAULT_TCP_CONFIG, type TcpConfig } from './config.ts';
import { Connection, type CookieOptions, DEFAULT_MSS, windowScaleFor } from './connection.ts';
import { IsnGenerator } from './isn.ts';
import { TimerQueue } from './timer-queue.ts';
import { systemError } from '../util/errors.ts';
import { seqAdd, seqBetween } from './seq.ts';
import {
  ACK,
  clearTcpOptions,
  emitTcp,
  newTcpRepr,
  RST,
  SYN,
  TCP_MAX_HEADER,
  tcpHeaderLength,
  type TcpRepr,
  TcpSegment,
} from './tcp-segment.ts';

/**
 * Received payloads of at least this size are carved from a shared slab rather than given an
 * ArrayBuffer each (smaller ones come from Node's own Buffer pool): one backing store per
 * SLAB_SIZE bytes instead of one per segment keeps the garbage collector's work per 64 KB
 * super-frame small. A chunk the application keeps holds its slab, as Node's pool does.
 */
const SLAB_MIN_PAYLOAD = 4096;
const SLAB_SIZE = 1024 * 1024;

/** Linux's default ip_local_port_range. */
export const EPHEMERAL_FIRST = 32768;
export const EPHEMERAL_LAST = 60999;

/** MSS values a SYN cookie can carry in 2 bits (as Linux's msstab). */
const COOKIE_MSS = [536, 1300, 1440, 1460];
/** A cookie's time counter ticks every 64 s; one tick of slack is accepted. */
const COOKIE_PERIOD_MS = 64_000;
/** Window scale value in a cookie's timestamp meaning "the peer offered none". */
const COOKIE_NO_WSCALE = 0xf;

export interface TcpLayerHost {
  readonly clock: Clock;
  readonly ipv4: Ipv4Layer;
  readonly ip: number;
  readonly mtu: number;
  readonly seed: number | undefined;
  /** True while a batch of received frames is processed; onBatchEnd handlers run after it. */
  readonly inReceiveBatch?: boolean;
  onBatchEnd?(handler: () => void): () => void;
}

/** A listening port: the server side of passive opens. */
export class Listener {
  /** Half-open connections (SYN-RECEIVED) counted against the SYN queue bound. */
  halfOpen = 0;
  constructor(
    readonly port: number,
    readonly synBacklog: number,
    readonly onAccept: (conn: Connection) => void,
  ) {}
}

export class TcpLayer {
  readonly counters = new LayerCounters();
  readonly config: TcpConfig;
  readonly clock: Clock;
  readonly ipv4: Ipv4Layer;
  readonly ip: number;
  readonly mtu: number;
  readonly isn: IsnGenerator;
  /** Every connection's one timer, in one heap under one clock timer. */
  readonly timers: TimerQueue<Connection>;
  /**
   * Connections by ports (local << 16 | remote): no key is built per segment. Most port pairs
   * have one connection, stored as is; only pairs shared by several remote addresses get a
   * Map by remote address (thousands of connections then cost no Map each).
   */
  private readonly connections = new Map<number, Connection | Map<number, Connection>>();
  private connectionCount = 0;
  readonly listeners = new Map<number, Listener>();
  private readonly segment = new TcpSegment();
  private readonly repr: TcpRepr = newTcpRepr();
  private readonly txBuffer: Buffer;
  /** Largest IPv4 datagram to send as one super-frame (the link segments it); else the MTU. */
  private readonly gsoMaxSize: number;
  /** One options object for every ipv4.send: IPv4 completes (or offloads) our checksum. */
  private readonly sendOptions = { checksumField: 16, segmentSize: 0 };
  private readonly random: () => number;
  private readonly host: TcpLayerHost;
  /** Connections whose output (and ACK) waits for the end of the current receive batch. */
  private readonly batchPending: Connection[] = [];
  private slab: Buffer = Buffer.alloc(0);
  private slabUsed = 0;
  private challengeTokens: number;
  /** Connections owing an ACK at the end of this turn (deferAck). */
  private deferredAcks: Connection[] = [];
  private challengeStamp: number;
  private closed = false;

  // Statistics beyond frames in and out.
  bytesReceived = 0;
  retransmits = 0;
  fastRetransmits = 0;
  tailLossProbes = 0;
  timeouts = 0;
  persistProbes = 0;
  resetsSent = 0;
  synCookiesSent = 0;
  synCookiesAccepted = 0;

  constructor(host: TcpLayerHost, config: Partial<TcpConfig> = {}) {
    this.config = { ...DEFAULT_TCP_CONFIG, ...config };
    this.host = host;
    this.clock = host.clock;
    this.ipv4 = host.ipv4;
    this.ip = host.ip;
    this.mtu = host.mtu;
    this.isn = new IsnGenerator(host.clock, host.seed);
    this.timers = new TimerQueue(host.clock);
    this.random = host.seed === undefined ? Math.random : seededRandom(host.seed ^ 0x7c9);
    // Room for a TCP super-frame when the link segments for us (offloads: gsoMaxSize).
    this.txBuffer = Buffer.alloc(TX_HEADROOM + Math.max(host.mtu, host.ipv4.gsoMaxSize, TCP_MAX_HEADER + 1));
    this.gsoMaxSize = host.ipv4.gsoMaxSize;
    this.challengeTokens = this.config.challengeAckLimit;
    this.challengeStamp = host.clock.now();
    // With offloads the kernel has checked (or will complete) the checksum: we skip ours then.
    host.ipv4.register(
      PROTO_TCP,
      (ip, off, len, checksumTrusted) => this.receive(ip, off, len, checksumTrusted),
      (info, quoted, off, len) => this.receiveIcmpError(info, quoted, off, len),
      { checksumOffload: true },
    );
    host.onBatchEnd?.(() => this.endBatch());
  }

  /**
   * Inside a batch of received frames, a connection's output waits for the batch's end
   * (returns true and queues it): the batch's ACKs then release one large frame, and one
   * ACK covers the batch's data (RFC 5681 4.2 allows ACKing more than two segments at once,
   * as Linux does for GRO-coalesced packets). Outside a batch it returns false: send now.
   */
  deferToBatchEnd(conn: Connection): boolean {
    if (this.host.inReceiveBatch !== true) return false;
    if (!conn.batchPending) {
      conn.batchPending = true;
      this.batchPending.push(conn);
    }
    return true;
  }

  private endBatch(): void {
    const pending = this.batchPending;
    try {
      for (let i = 0; i < pending.length; i++) {
        const conn = pending[i]!;
        conn.batchPending = false;
        conn.onBatchEnd();
      }
    } finally {
      for (let i = 0; i < pending.length; i++) pending[i]!.batchPending = false;
      pending.length = 0;
    }
  }

  get size(): number {
    return this.connectionCount;
  }

  formatAddress(addr: number): string {
    return formatIpv4(addr);
  }

  /** RFC 7323 3: TSval from a millisecond clock. */
  timestampNow(): number {
    return Math.floor(this.clock.now()) >>> 0;
  }

  /**
   * A copy of buf[off, off+len) that the application will own: the one copy of received
   * payload (from the device's buffer, which the next frame overwrites).
   */
  copyPayload(buf: Buffer, off: number, len: number): Buffer {
    let data: Buffer;
    if (len < SLAB_MIN_PAYLOAD) {
      data = Buffer.allocUnsafe(len);
    } else {
      if (this.slabUsed + len > this.slab.length) {
        this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, len));
        this.slabUsed = 0;
      }
      data = this.slab.subarray(this.slabUsed, this.slabUsed + len);
      // The next chunk starts 8-byte aligned, as Node's pool aligns its slices.
      this.slabUsed = (this.slabUsed + len + 7) & ~7;
    }
    buf.copy(data, 0, off, off + len);
    return data;
  }

  // ---------------------------------------------------------------------------------------
  // Tables

  find(localPort: number, remoteIp: number, remotePort: number): Connection | undefined {
    const entry = this.connections.get(localPort * 65536 + remotePort);
    if (entry === undefined) return undefined;
    if (entry instanceof Connection) return entry.remoteIp === remoteIp ? entry : undefined;
    return entry.get(remoteIp);
  }

  private add(conn: Connection): void {
    const key = conn.localPort * 65536 + conn.remotePort;
    const entry = this.connections.get(key);
    if (entry === undefined) {
      this.connections.set(key, conn);
    } else if (entry instanceof Connection) {
      const byAddress = new Map<number, Connection>([[entry.remoteIp, entry]]);
      byAddress.set(conn.remoteIp, conn);
      this.connections.set(key, byAddress);
    } else {
      entry.set(conn.remoteIp, conn);
    }
    this.connectionCount++;
  }

  /** Called by a connection entering CLOSED. */
  remove(conn: Connection): void {
    const key = conn.localPort * 65536 + conn.remotePort;
    const entry = this.connections.get(key);
    if (entry === conn) {
      this.connections.delete(key);
      this.connectionCount--;
    } else if (entry instanceof Map && entry.get(conn.remoteIp) === conn) {
      entry.delete(conn.remoteIp);
      if (entry.size === 0) this.connections.delete(key);
      this.connectionCount--;
    }
    if (conn.listenerPort >= 0) {
      const l = this.listeners.get(conn.listenerPort);
      if (l) l.halfOpen--;
      conn.listenerPort = -1;
    }
  }

  /** Every connection (for tests and statistics). */
  *all(): IterableIterator<Connection> {
    for (const entry of this.connections.values()) {
      if (entry instanceof Connection) yield entry;
      else yield* entry.values();
    }
  }

  listen(port: number, backlog: number, onAccept: (conn: Connection) => void): Listener | 'EADDRINUSE' {
    if (this.listeners.has(port)) return 'EADDRINUSE';
    const listener = new Listener(port, Math.max(1, Math.min(backlog, this.config.maxSynBacklog)), onAccept);
    this.listeners.set(port, listener);
    return listener;
  }

  /** Stops listening; connections not yet accepted are reset, as Linux does on close(). */
  unlisten(listener: Listener): void {
    if (this.listeners.get(listener.port) !== listener) return;
    this.listeners.delete(listener.port);
    for (const conn of [...this.all()]) if (conn.listenerPort === listener.port && conn.state === 'SYN-RECEIVED') conn.abort();
  }

  /** A free local port for a connection to remoteIp:remotePort (Linux's range, random start). */
  ephemeralPort(remoteIp: number, remotePort: number): number | null {
    const span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
    const start = Math.floor(this.random() * span);
    for (let i = 0; i < span; i++) {
      const port = EPHEMERAL_FIRST + ((start + i) % span);
      if (!this.listeners.has(port) && !this.find(port, remoteIp, remotePort)) return port;
    }
    return null;
  }

  /** Creates a connection in SYN-SENT and sends its SYN. */
  connect(remoteIp: number, remotePort: number, localPort?: number): Connection | 'EADDRINUSE' | 'EADDRNOTAVAIL' {
    const port = localPort || this.ephemeralPort(remoteIp, remotePort);
    if (port === null) return 'EADDRNOTAVAIL';
    if (this.find(port, remoteIp, remotePort)) return 'EADDRINUSE';
    const conn = new Connection(this, this.ip, port, remoteIp, remotePort);
    this.add(conn);
    return conn;
  }

  /** A passive connection reached ESTABLISHED: hand it to its listener. */
  accept(conn: Connection): void {
    const listener = this.listeners.get(conn.listenerPort);
    if (listener) listener.halfOpen--;
    conn.listenerPort = -1;
    if (!listener) {
      conn.abort();
      return;
    }
    listener.onAccept(conn);
  }

  /**
   * Owes conn's peer an ACK at the end of this event-loop turn (a clock timer of 0 ms, shared
   * by every connection deferring in the same turn), unless a segment of conn carries it first.
   */
  deferAck(conn: Connection): void {
    if (conn.ackDeferred) return;
    conn.ackDeferred = true;
    this.deferredAcks.push(conn);
    if (this.deferredAcks.length === 1) this.clock.setTimer(0, this.flushDeferredAcks);
  }

  private readonly flushDeferredAcks = (): void => {
    const list = this.deferredAcks;
    this.deferredAcks = [];
    for (const conn of list) conn.flushDeferredAck();
  };

  /** RFC 5961 7: a global budget of challenge ACKs per second (Linux tcp_challenge_ack_limit). */
  allowChallengeAck(): boolean {
    const now = this.clock.now();
    const limit = this.config.challengeAckLimit;
    this.challengeTokens = Math.min(limit, this.challengeTokens + ((now - this.challengeStamp) * limit) / 1000);
    this.challengeStamp = now;
    if (this.challengeTokens < 1) return false;
    this.challengeTokens--;
    return true;
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
    const remotePort = seg.srcPort;
    const conn = this.find(localPort, remoteIp, remotePort);
    if (conn) {
      // A new SYN for a TIME-WAIT connection with a higher sequence number may reopen it
      // (RFC 6191 2, as Linux does): the old incarnation is forgotten.
      const f = seg.flags;
      if (
        conn.state === 'TIME-WAIT' &&
        (f & (SYN | ACK | RST)) === SYN &&
        ((seg.seq - conn.rcvNxt) | 0) > 0 &&
        this.listeners.has(localPort)
      ) {
        conn.destroy(null);
      } else {
        conn.receive(seg);
        return;
      }
    }
    const listener = this.listeners.get(localPort);
    if (!listener) {
      this.counters.drop('tcp-port-closed');
      this.sendResetFor(seg, remoteIp, this.ip);
      return;
    }
    this.receiveOnListener(listener, seg, remoteIp);
  }

  /** RFC 9293 3.10.7.2: LISTEN state. */
  private receiveOnListener(listener: Listener, seg: TcpSegment, remoteIp: number): void {
    const flags = seg.flags;
    if (flags & RST) return this.counters.drop('tcp-listen-rst'); // first: an RST is ignored
    if (flags & ACK) {
      // second: an ACK is bad here, unless it completes a SYN cookie handshake.
      if (!(flags & SYN) && this.config.synCookies && this.acceptCookie(listener, seg, remoteIp)) return;
      this.counters.drop('tcp-listen-ack');
      this.sendResetFor(seg, remoteIp, this.ip);
      return;
    }
    if (!(flags & SYN)) return this.counters.drop('tcp-listen-no-syn');
    if (listener.halfOpen >= listener.synBacklog) {
      // The SYN queue is full: answer statelessly with a cookie, or drop (RFC 4987 3.6).
      if (this.config.synCookies) this.sendSynCookie(seg, remoteIp);
      else this.counters.drop('tcp-syn-queue-full');
      return;
    }
    const conn = new Connection(this, this.ip, seg.dstPort, remoteIp, seg.srcPort);
    conn.listenerPort = listener.port;
    listener.halfOpen++;
    this.add(conn);
    conn.openPassive(seg);
  }

  /**
   * ICMP errors about our segments (RFC 1122 4.2.3.9, RFC 5927 4.1: only when the quoted
   * sequence number is in flight). Port and protocol unreachable abort a connection being
   * opened with ECONNREFUSED, as Linux does; "fragmentation needed" lowers the MSS (RFC 1191).
   */
  private receiveIcmpError(info: IcmpErrorInfo, quoted: Ipv4Packet, off: number, len: number): void {
    if (len < 8) return;
    const buf = quoted.buf;
    const conn = this.find(buf.readUInt16BE(off), quoted.dst, buf.readUInt16BE(off + 2));
    if (!conn) return this.counters.drop('tcp-icmp-no-connection');
    const seq = buf.readUInt32BE(off + 4);
    if (!seqBetween(conn.sndUna, seq, conn.sndMax)) return this.counters.drop('tcp-icmp-seq-not-in-flight');
    if (info.type === ICMP_DEST_UNREACHABLE) {
      if (info.code === UNREACH_FRAG_NEEDED) {
        if (info.mtu >= 68) conn.lowerMss(info.mtu - 40);
        return;
      }
      if ((info.code === UNREACH_PORT || info.code === UNREACH_PROTOCOL) && conn.state === 'SYN-SENT') {
        conn.destroy(systemError('ECONNREFUSED', 'connect', formatIpv4(conn.remoteIp), conn.remotePort));
        return;
      }
    }
    this.counters.drop('tcp-icmp-soft-error');
  }

  // ---------------------------------------------------------------------------------------
  // SYN cookies (RFC 4987 3.6): the ISN carries a time counter (5 bits), an MSS index
  // (2 bits... stored in 3) and a keyed hash (24 bits) of the 4-tuple, the peer's ISN and the counter.

  private cookieHash(seg: TcpSegment, remoteIp: number, irs: number, counter: number): number {
    return this.isn.hash(this.ip, seg.dstPort, remoteIp, seg.srcPort, (irs ^ Math.imul(counter, 0x9e3779b1)) >>> 0) & 0xffffff;
  }

  private cookieCounter(): number {
    return Math.floor(this.clock.now() / COOKIE_PERIOD_MS);
  }

  private sendSynCookie(seg: TcpSegment, remoteIp: number): void {
    const peerMss = seg.mss >= 0 ? seg.mss : DEFAULT_MSS;
    let mssIndex = 0;
    for (let i = COOKIE_MSS.length - 1; i >= 0; i--) {
      if (COOKIE_MSS[i]! <= peerMss) {
        mssIndex = i;
        break;
      }
    }
    const counter = this.cookieCounter();
    const cookie = (((counter & 31) << 27) | (mssIndex << 24) | this.cookieHash(seg, remoteIp, seg.seq, counter)) >>> 0;
    const r = this.repr;
    clearTcpOptions(r);
    r.srcPort = seg.dstPort;
    r.dstPort = seg.srcPort;
    r.seq = cookie;
    r.ack = seqAdd(seg.seq, 1);
    r.flags = SYN | ACK;
    r.window = Math.min(this.config.receiveBufferSize, 0xffff);
    r.urgentPointer = 0;
    r.mss = this.mtu - 40;
    // With timestamps the peer echoes our TSval: like Linux, its low 6 bits carry the peer's
    // window scale (4 bits, 15 = none) and SACK-permitted (1 bit), so the connection rebuilt
    // from the cookie keeps them. The value stays at or below the clock, as PAWS needs.
    if (seg.hasTimestamp && this.config.timestamps) {
      const wscale = seg.windowScale >= 0 && this.config.windowScaling ? seg.windowScale : COOKIE_NO_WSCALE;
      const sack = seg.sackPermitted && this.config.sack;
      r.hasTimestamp = true;
      const now = this.timestampNow();
      let tsVal = ((now & ~0x3f) | wscale | (sack ? 0x10 : 0)) >>> 0;
      if (((tsVal - now) | 0) > 0) tsVal = (tsVal - 0x40) >>> 0;
      r.tsVal = tsVal;
      r.tsEcr = seg.tsVal;
      if (wscale !== COOKIE_NO_WSCALE) r.windowScale = windowScaleFor(this.config.receiveBufferSize);
      r.sackPermitted = sack;
    }
    this.synCookiesSent++;
    this.transmit(remoteIp, 0);
  }

  private acceptCookie(listener: Listener, seg: TcpSegment, remoteIp: number): boolean {
    const cookie = (seg.ack - 1) >>> 0;
    const irs = (seg.seq - 1) >>> 0;
    const now = this.cookieCounter();
    for (const counter of [now, now - 1]) {
      if (cookie >>> 27 !== (counter & 31)) continue;
      if ((cookie & 0xffffff) !== this.cookieHash(seg, remoteIp, irs, counter)) continue;
      const mss = COOKIE_MSS[(cookie >>> 24) & 3]!;
      const conn = new Connection(this, this.ip, seg.dstPort, remoteIp, seg.srcPort);
      conn.listenerPort = listener.port;
      listener.halfOpen++;
      this.add(conn);
      let options: CookieOptions | null = null;
      if (seg.hasTimestamp && this.config.timestamps) {
        const wscale = seg.tsEcr & 0xf;
        options = {
          windowScale: wscale === COOKIE_NO_WSCALE ? -1 : wscale,
          sackPermitted: (seg.tsEcr & 0x10) !== 0 && this.config.sack,
          tsRecent: seg.tsVal,
        };
      }
      conn.openFromCookie(irs, cookie, mss, options);
      this.synCookiesAccepted++;
      conn.receive(seg);
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------------------------------
  // Transmit

  /** Starts a segment for conn in the shared repr (ports set, options cleared). */
  beginSegment(conn: Connection): TcpRepr {
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
  finishSegment(conn: Connection, offset: number, len: number): void {
    if (len > 0) {
      const headerLength = tcpHeaderLength(this.repr);
      conn.sendBuffer.copyOut(offset, this.txBuffer, TX_HEADROOM + headerLength, len);
    }
    this.transmit(conn.remoteIp, len, len > conn.sendMss ? conn.sendMss : 0);
  }

  /** segmentSize: the MSS when the payload is a super-frame for the link to segment (TSO). */
  private transmit(remoteIp: number, payloadLength: number, segmentSize = 0): void {
    if (this.closed) return;
    const headerLength = emitTcp(this.txBuffer, TX_HEADROOM, this.repr, payloadLength, this.ip, remoteIp, false);
    this.counters.tx++;
    if (this.repr.flags & RST) this.resetsSent++;
    this.sendOptions.segmentSize = segmentSize;
    const err = this.ipv4.send(PROTO_TCP, remoteIp, this.txBuffer, TX_HEADROOM, headerLength + payloadLength, this.sendOptions);
    if (err) this.counters.drop(`tcp-send-${err}`);
  }

  /**
   * A reset in answer to a segment that has no connection to go to (RFC 9293 3.10.7.1):
   * with ACK set, <SEQ=SEG.ACK><CTL=RST>; else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
   * Never in answer to a reset.
   */
  sendResetFor(seg: TcpSegment, remoteIp: number, _localIp: number): void {
    const flags = seg.flags;
    if (flags & RST) return;
    const r = this.repr;
    clearTcpOptions(r);
    r.srcPort = seg.dstPort;
    r.dstPort = seg.srcPort;
    r.window = 0;
    r.urgentPointer = 0;
    if (flags & ACK) {
      r.seq = seg.ack;
      r.ack = 0;
      r.flags = RST;
    } else {
      r.seq = 0;
      r.ack = seqAdd(seg.seq, seg.segmentLength);
      r.flags = RST | ACK;
    }
    this.transmit(remoteIp, 0);
  }

  // ---------------------------------------------------------------------------------------

  stats(): Record<string, number> {
    return {
      connections: this.connectionCount,
      listeners: this.listeners.size,
      bytesReceived: this.bytesReceived,
      retransmits: this.retransmits,
      fastRetransmits: this.fastRetransmits,
      tailLossProbes: this.tailLossProbes,
      timeouts: this.timeouts,
      persistProbes: this.persistProbes,
      resetsSent: this.resetsSent,
      synCookiesSent: this.synCookiesSent,
      synCookiesAccepted: this.synCookiesAccepted,
    };
  }

  /** Closing the stack resets every connection, as a host going down would. */
  close(): void {
    for (const conn of [...this.all()]) conn.abort();
    this.listeners.clear();
    this.timers.stop();
    this.closed = true;
  }
}
