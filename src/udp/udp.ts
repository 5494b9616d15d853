// The UDP layer (RFC 768, RFC 1122 4.1): a port table of sockets, demultiplexing of incoming
// datagrams, ICMP port unreachable for closed ports, ICMP errors about our own datagrams
// handed to connected sockets, and the transmit path with one preallocated buffer.

import { sharedTxScratch } from '../util/tx-scratch.ts';
import { isMulticast } from '../ipv4/address.ts';
import { LayerCounters } from '../util/counters.ts';
import { seededRandom } from '../util/random.ts';
import type { IcmpLayer } from '../ipv4/icmp.ts';
import { ICMP_DEST_UNREACHABLE, ICMP_PARAMETER_PROBLEM, UNREACH_FRAG_NEEDED, UNREACH_PORT } from '../ipv4/icmp-packet.ts';
import { IPV4_MIN_HEADER, type Ipv4Packet, PROTO_UDP } from '../ipv4/ipv4-packet.ts';
import { type IcmpErrorInfo, type Ipv4Layer, type SendError, type SendOptions, TX_HEADROOM } from '../ipv4/ipv4.ts';
import {
  type BufferLimits,
  type MulticastContext,
  type RemoteInfo,
  type SocketOptions,
  type SocketType,
  UdpSocket,
  type UdpSocketContext,
} from './socket.ts';
import { emitUdpHeader, UDP_CHECKSUM_FIELD, UDP_HEADER_LEN, UDP_MAX_PAYLOAD, UdpPacket } from './udp-packet.ts';

/** Linux's ip_local_port_range. */
export const EPHEMERAL_FIRST = 32768;
export const EPHEMERAL_LAST = 60999;

/**
 * Linux's icmp_err_convert (net/ipv4/icmp.c): the errno for each destination unreachable code
 * and whether it is "hard". A connected UDP socket without IP_RECVERR hears of hard errors only
 * (net/ipv4/udp.c __udp4_lib_err).
 */
const UNREACH_ERRORS: readonly (readonly [string, boolean])[] = [
  ['ENETUNREACH', false], // 0 net unreachable
  ['EHOSTUNREACH', false], // 1 host unreachable
  ['ENOPROTOOPT', true], // 2 protocol unreachable
  ['ECONNREFUSED', true], // 3 port unreachable
  ['EMSGSIZE', true], // 4 fragmentation needed (hard: path MTU discovery is on by default)
  ['EOPNOTSUPP', false], // 5 source route failed
  ['ENETUNREACH', true], // 6 network unknown
  ['EHOSTDOWN', true], // 7 host unknown
  ['ENONET', true], // 8 host isolated
  ['ENETUNREACH', true], // 9 network administratively prohibited
  ['EHOSTUNREACH', true], // 10 host administratively prohibited
  ['ENETUNREACH', false], // 11 network unreachable for TOS
  ['EHOSTUNREACH', false], // 12 host unreachable for TOS
  ['EHOSTUNREACH', true], // 13 communication administratively prohibited
  ['EHOSTUNREACH', true], // 14 host precedence violation
  ['EHOSTUNREACH', true], // 15 precedence cutoff
];

/** The errno Linux gives a UDP socket for an ICMP error, or null when it keeps quiet. */
export function icmpErrorToErrno(type: number, code: number): string | null {
  if (type === ICMP_DEST_UNREACHABLE) {
    if (code === UNREACH_FRAG_NEEDED) return 'EMSGSIZE';
    const entry = UNREACH_ERRORS[code];
    if (!entry) return null; // unknown codes give EHOSTUNREACH, not hard
    return entry[1] ? entry[0] : null;
  }
  if (type === ICMP_PARAMETER_PROBLEM) return 'EPROTO';
  // Time exceeded and the rest map to EHOSTUNREACH, which is not hard.
  return null;
}

export interface UdpLayerOptions {
  seed?: number;
  /** Linux net.core.rmem_default (212992): a socket's receive buffer unless it sets one. */
  rmemDefault?: number;
  /** Linux net.core.rmem_max (212992 by default): the most setRecvBufferSize may ask. */
  rmemMax?: number;
  /** Linux net.core.wmem_default and wmem_max (212992 each). */
  wmemDefault?: number;
  wmemMax?: number;
}

/** Who keeps the process alive: the stack (see Stack.refHandle). */
export interface HandleTracker {
  refHandle(owner: object): void;
  unrefHandle(owner: object): void;
  releaseHandle(owner: object): void;
}

/** What the layer needs of the stack around it (the Stack itself: no object or closure of its own). */
export interface UdpEnvironment extends HandleTracker {
  /** Group memberships: the IGMP layer. */
  readonly igmp: MulticastContext;
  /** Is a batch of received frames being processed? (Stack.inReceiveBatch.) */
  readonly inReceiveBatch: boolean;
}

/** What holds a port in the layer's table: a socket, or a port served inside the stack. */
interface UdpEndpoint {
  readonly reuseAddr: boolean;
  readonly hasPeer: boolean;
  readonly boundAddress: number;
  readonly remote: number;
  readonly remotePort: number;
  accepts(dst: number, src: number, srcPort: number): boolean;
  allowsGroup(group: number, src: number): boolean;
  /** false: no room (the receive buffer is full). */
  deliver(buf: Buffer, off: number, len: number, src: number, srcPort: number): boolean;
  reportError(code: string): void;
}

/** Handles one datagram to a served port: its payload is buf[off, off + len), valid only during the call. */
export type UdpPortHandler = (layer: UdpLayer, buf: Buffer, off: number, len: number, src: number, srcPort: number) => void;

/**
 * A port served inside the stack, with no socket, no queue and no events: each datagram to our
 * unicast address goes to the handler as it is received, as the kernel's own users of a port
 * take theirs (a fleet's 10,000 devices serve UDP echo each with this one small object, not
 * with a dgram socket). Broadcasts and group datagrams never reach it.
 */
export class UdpServedPort implements UdpEndpoint {
  constructor(
    private readonly layer: UdpLayer,
    readonly port: number,
    private readonly handler: UdpPortHandler,
  ) {}

  get reuseAddr(): boolean {
    return false;
  }
  get hasPeer(): boolean {
    return false;
  }
  /** Our unicast address as it is now (a DHCP lease may change it). */
  get boundAddress(): number {
    return this.layer.ipv4.ip;
  }
  get remote(): number {
    return 0;
  }
  get remotePort(): number {
    return 0;
  }

  accepts(dst: number): boolean {
    return dst !== 0 && dst === this.layer.ipv4.ip;
  }

  allowsGroup(): boolean {
    return false;
  }

  deliver(buf: Buffer, off: number, len: number, src: number, srcPort: number): boolean {
    this.handler(this.layer, buf, off, len, src, srcPort);
    return true;
  }

  reportError(): void {}
}

export class UdpLayer implements UdpSocketContext {
  readonly counters = new LayerCounters();
  /** Bound sockets and served ports by local port; more than one only with reuseAddr. Last bound last. */
  private readonly ports = new Map<number, UdpEndpoint[]>();
  private socketsMade: Set<UdpSocket> | null = null;
  /** Open sockets, made at the first (a fleet's devices serve their ports with none). */
  private get sockets(): Set<UdpSocket> {
    return (this.socketsMade ??= new Set());
  }
  private readonly view = new UdpPacket();
  private readonly txBuf = sharedTxScratch('udp', TX_HEADROOM + UDP_HEADER_LEN + UDP_MAX_PAYLOAD);
  private readonly random: () => number;
  private readonly sendOptions: SendOptions = { ttl: undefined, checksumField: undefined, multicastLoop: true };
  readonly buffers: BufferLimits;
  readonly multicast: MulticastContext;
  /** Sockets with datagrams waiting for the end of the receive batch. */
  private readonly pending: UdpSocket[] = [];

  constructor(
    readonly ipv4: Ipv4Layer,
    private readonly icmp: IcmpLayer,
    private readonly env: UdpEnvironment,
    options: UdpLayerOptions = {},
  ) {
    this.random = options.seed !== undefined ? seededRandom(options.seed ^ 0x75647000) : Math.random;
    this.multicast = env.igmp;
    this.buffers = {
      rmemDefault: options.rmemDefault ?? 212992,
      rmemMax: options.rmemMax ?? 212992,
      wmemDefault: options.wmemDefault ?? 212992,
      wmemMax: options.wmemMax ?? 212992,
    };
    // With offloads the kernel has checked the checksum or left it partial: we skip ours then.
    ipv4.register(PROTO_UDP, this, undefined, { checksumOffload: true });
  }

  /** Like dgram.createSocket: 'udp4' or { type: 'udp4', reuseAddr }, and a 'message' listener. */
  createSocket(type: SocketType | SocketOptions, listener?: (msg: Buffer, rinfo: RemoteInfo) => void): UdpSocket {
    return new UdpSocket(this, type, listener);
  }

  // --- what sockets ask of the stack (UdpSocketContext) ---

  adopt(socket: UdpSocket): void {
    this.sockets.add(socket);
  }

  refHandle(owner: object): void {
    this.env.refHandle(owner);
  }
  unrefHandle(owner: object): void {
    this.env.unrefHandle(owner);
  }
  releaseHandle(owner: object): void {
    this.env.releaseHandle(owner);
  }

  get inReceiveBatch(): boolean {
    return this.env.inReceiveBatch;
  }

  queued(socket: UdpSocket): void {
    this.pending.push(socket);
  }

  /** End of a receive batch (Stack.onBatchEnd): every socket's queued datagrams go to the application. */
  endBatch(): void {
    const list = this.pending;
    for (let i = 0; i < list.length; i++) list[i]!.drain();
    list.length = 0;
  }

  // --- port table (used by UdpSocket) ---

  /**
   * Takes `port` (0: an ephemeral one) for the socket. Returns the port, or the errno.
   * Like Linux, a port is free unless bound by another socket, except when every socket on
   * it asked for reuseAddr (SO_REUSEADDR).
   */
  bindPort(socket: UdpSocket, port: number, reuseAddr: boolean): number | 'EADDRINUSE' {
    if (port === 0) {
      const span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
      const start = Math.floor(this.random() * span);
      for (let i = 0; i < span; i++) {
        const candidate = EPHEMERAL_FIRST + ((start + i) % span);
        if (!this.ports.has(candidate)) return this.takePort(socket, candidate);
      }
      return 'EADDRINUSE';
    }
    const holders = this.ports.get(port);
    if (holders && !(reuseAddr && holders.every((s) => s.reuseAddr))) return 'EADDRINUSE';
    return this.takePort(socket, port);
  }

  /** Serves `port` inside the stack (see UdpServedPort), or EADDRINUSE when a socket holds it. */
  servePort(port: number, handler: UdpPortHandler): UdpServedPort | 'EADDRINUSE' {
    if (this.ports.has(port)) return 'EADDRINUSE';
    const served = new UdpServedPort(this, port, handler);
    this.takePort(served, port);
    return served;
  }

  unservePort(served: UdpServedPort): void {
    this.releasePort(served, served.port);
  }

  private takePort(socket: UdpEndpoint, port: number): number {
    const list = this.ports.get(port);
    if (list) list.push(socket);
    else this.ports.set(port, [socket]);
    return port;
  }

  releasePort(socket: UdpEndpoint, port: number): void {
    const list = this.ports.get(port);
    if (!list) return;
    const i = list.indexOf(socket);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.ports.delete(port);
  }

  forget(socket: UdpSocket): void {
    this.sockets.delete(socket);
  }

  // --- receive ---

  /** checksumTrusted: the kernel verified the checksum or left it partial (offloads). */
  receive(ip: Ipv4Packet, off: number, len: number, checksumTrusted = false): void {
    this.counters.rx++;
    const udp = this.view;
    const src = ip.src;
    const dst = ip.dst;
    const bad = udp.parse(ip.buf, off, len, src, dst, !checksumTrusted);
    if (bad) return this.counters.drop(bad);
    const dstPort = udp.dstPort;
    const srcPort = udp.srcPort;
    const list = this.ports.get(dstPort);
    const multicast = isMulticast(dst);
    if (multicast || this.ipv4.isBroadcast(dst)) {
      // Broadcasts and group datagrams go to every socket on the port that takes them
      // (Linux __udp4_lib_mcast_deliver, with ip_mc_sf_allow for groups), and a closed port
      // stays silent (RFC 1122 3.2.2).
      let delivered = 0;
      if (list)
        // A copy: a listener run from here may close its socket (outside a batch).
        for (const s of list.slice()) {
          if (!s.accepts(dst, src, srcPort) || (multicast && !s.allowsGroup(dst, src))) continue;
          if (s.deliver(ip.buf, udp.dataOffset, udp.dataLength, src, srcPort)) delivered++;
          else this.counters.drop('udp-rcvbuf-errors');
        }
      if (delivered === 0) this.counters.drop(multicast ? 'udp-multicast-no-socket' : 'udp-broadcast-no-socket');
      return;
    }
    const socket = list ? this.bestMatch(list, dst, src, srcPort) : null;
    if (!socket) {
      this.counters.drop('udp-port-unreachable');
      // RFC 1122 4.1.3.1; IcmpLayer applies Linux's rate limits.
      this.icmp.sendError(ICMP_DEST_UNREACHABLE, UNREACH_PORT, 0, ip);
      return;
    }
    // Linux UDP_MIB_RCVBUFERRORS: the socket's receive buffer is full.
    if (!socket.deliver(ip.buf, udp.dataOffset, udp.dataLength, src, srcPort)) this.counters.drop('udp-rcvbuf-errors');
  }

  /**
   * Linux scores sockets (udp4_lib_lookup2): a connected one that matches the sender beats a
   * bound one; among equals the most recently bound wins.
   */
  private bestMatch(list: UdpEndpoint[], dst: number, src: number, srcPort: number): UdpEndpoint | null {
    let best: UdpEndpoint | null = null;
    let bestScore = -1;
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i]!;
      if (!s.accepts(dst, src, srcPort)) continue;
      const score = (s.hasPeer ? 2 : 0) + (s.boundAddress !== 0 ? 1 : 0);
      if (score > bestScore) {
        best = s;
        bestScore = score;
      }
    }
    return best;
  }

  /** An ICMP error quoting a datagram we sent: tell the connected socket that sent it. */
  /** @internal (Ipv4Transport) */
  receiveIcmpError(info: IcmpErrorInfo, quoted: Ipv4Packet, off: number, len: number): void {
    if (len < UDP_HEADER_LEN) return this.counters.drop('udp-icmp-short-quote');
    const buf = quoted.buf;
    const localPort = buf.readUInt16BE(off);
    const remotePort = buf.readUInt16BE(off + 2);
    const list = this.ports.get(localPort);
    const socket = list?.find((s) => s.hasPeer && s.remote === quoted.dst && s.remotePort === remotePort);
    if (!socket) return this.counters.drop('udp-icmp-no-socket');
    const errno = icmpErrorToErrno(info.type, info.code);
    if (!errno) return this.counters.drop('udp-icmp-soft-error');
    socket.reportError(errno);
  }

  // --- transmit ---

  /**
   * Sends the concatenation of `chunks` from srcPort to dst:dstPort. Returns null or the
   * errno. The data is copied once, into the layer's transmit buffer, behind the headers.
   */
  send(chunks: readonly Uint8Array[], srcPort: number, dst: number, dstPort: number, ttl: number | undefined, multicastLoop = true): SendError | 'EACCES' | null {
    let size = 0;
    for (const c of chunks) size += c.byteLength;
    if (size > UDP_MAX_PAYLOAD) {
      this.counters.drop('udp-tx-too-big');
      return 'EMSGSIZE';
    }
    const buf = this.txBuf;
    let at = TX_HEADROOM + UDP_HEADER_LEN;
    for (const c of chunks) {
      buf.set(c, at);
      at += c.byteLength;
    }
    const len = UDP_HEADER_LEN + size;
    const options = this.sendOptions;
    options.ttl = ttl;
    options.multicastLoop = multicastLoop;
    // A datagram that fits one frame leaves its checksum to IPv4, which hands it to the link
    // when the TAP offloads checksums (else computes it, 0 sent as 0xffff); a fragmented one
    // is summed here, over the whole datagram.
    const whole = IPV4_MIN_HEADER + len <= this.ipv4.mtu;
    options.checksumField = whole ? UDP_CHECKSUM_FIELD : undefined;
    emitUdpHeader(buf, TX_HEADROOM, this.ipv4.ip, dst, srcPort, dstPort, size, !whole);
    this.counters.tx++;
    return this.ipv4.send(PROTO_UDP, dst, buf, TX_HEADROOM, len, options);
  }

  /** Closes every socket (StackModule). */
  close(): void {
    for (const s of [...this.sockets]) if (s.isRunning) s.close();
  }
}
