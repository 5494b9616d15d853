// The IPv4 layer (RFC 791, RFC 1122 3.2.1): validate, deliver by protocol, route, emit,
// and fragment on output. Reassembly of incoming fragments is delegated to a Reassembler.

import type { ArpLayer } from '../arp/arp.ts';
import type { Clock } from '../util/clock.ts';
import { LayerCounters } from '../util/counters.ts';
import { ETH_HEADER_LEN } from '../link/ethernet.ts';
import { LINK_HEADROOM } from '../link/link.ts';
import { clearTxOffload, completePartialChecksum, type RxFrameInfo, type TxOffload, VNET_GSO_TCPV4 } from '../link/vnet.ts';
import { IPV4_BROADCAST, isClassE, isLoopback, isMulticast, isZeroNet, prefixMask, sameSubnet } from './address.ts';
import { IpIdentGenerator } from './ip-ident.ts';
import { foldChecksum, internetChecksum, pseudoHeaderSum } from '../util/checksum.ts';
import { emitIpv4, FLAG_DF, FLAG_MF, IPV4_MIN_HEADER, ipv4HeaderLength, Ipv4Packet, type Ipv4Repr, PROTO_TCP, PROTO_UDP } from './ipv4-packet.ts';
import { PROTO_IGMP } from './igmp-packet.ts';
import { Ipv4Reassembler, type Reassembler, type ReassemblyOptions } from './reassembly.ts';

/** Where upper layers put their header: room for link, Ethernet and IPv4 headers before it. */
export const TX_HEADROOM = LINK_HEADROOM + ETH_HEADER_LEN + IPV4_MIN_HEADER;

/**
 * A transport's receive entry point: the IPv4 header view, then its payload. `checksumTrusted`:
 * the kernel verified the transport checksum or left it partial (offloads), so the handler
 * skips its verification. Only handlers registered with checksumOffload see it true.
 */
export type ProtocolHandler = (ip: Ipv4Packet, off: number, len: number, checksumTrusted: boolean) => void;

/**
 * An ICMP error about a datagram we sent: `quoted` is the view over the quoted IPv4 header,
 * and [off, off+len) the quoted transport bytes (at least 8, RFC 792).
 */
export interface IcmpErrorInfo {
  type: number;
  code: number;
  /** Next-hop MTU for "fragmentation needed" (RFC 1191), else 0. */
  mtu: number;
}
export type IcmpErrorHandler = (info: IcmpErrorInfo, quoted: Ipv4Packet, off: number, len: number) => void;

/**
 * A transport registered as itself (TCP, UDP, ICMP, IGMP): its datagrams and the ICMP errors
 * about what it sent reach its methods, with no closure per stack (a fleet has thousands).
 */
export interface Ipv4Transport {
  receive(ip: Ipv4Packet, off: number, len: number, checksumTrusted: boolean): void;
  receiveIcmpError?(info: IcmpErrorInfo, quoted: Ipv4Packet, off: number, len: number): void;
}

/** What the IPv4 layer asks of ICMP: errors about datagrams received (set by the ICMP layer). */
export interface Ipv4ErrorReporter {
  sendError(type: number, code: number, rest: number, offending: Ipv4Packet): unknown;
  /** A datagram for a protocol with no transport (RFC 1122 3.2.2.1: protocol unreachable). */
  protocolUnreachable(ip: Ipv4Packet): void;
}

/** One registered protocol. */
interface Registration {
  readonly protocol: number;
  readonly transport: Ipv4Transport;
  /** The transport takes checksumTrusted (see RegisterOptions). */
  readonly checksumOffload: boolean;
}

export type { Reassembler } from './reassembly.ts';

export type SendError = 'EHOSTUNREACH' | 'ENETUNREACH' | 'EMSGSIZE';

export interface SendOptions {
  ttl?: number;
  tos?: number;
  dontFragment?: boolean;
  /**
   * Offset of the transport's checksum field from the start of its header (16 for TCP, 6 for
   * UDP), the field left zero: IPv4 then completes the checksum (pseudo-header included),
   * in software or, when the link offloads it, by leaving the pseudo-header sum there for
   * the kernel to finish (virtio-net NEEDS_CSUM). Saves the transport a pass over the data.
   */
  checksumField?: number;
  /**
   * TCP segmentation offload: the datagram is a super-frame (up to gsoMaxSize bytes) whose
   * payload after the TCP header the link cuts into segments of this size (the MSS). Needs
   * checksumField. Without an offloading link a datagram above the MTU is refused (EMSGSIZE).
   */
  segmentSize?: number;
  /** IP options for the header (IGMP's Router Alert); only on datagrams that fit the MTU. */
  ipOptions?: Buffer;
  /**
   * To a group: loop a copy to this host's members too (Linux IP_MULTICAST_LOOP, on by
   * default; ip_mc_output loops when the socket asks and the host is a member).
   */
  multicastLoop?: boolean;
}

/** The host's group memberships, as IGMP keeps them (Linux's in_device mc_list). */
export interface MulticastMembership {
  /**
   * Does the host receive datagrams to this group from src (Linux ip_check_mc_rcu: joined,
   * and src passes the interface's source filter; IGMP to any joined group)?
   */
  accepts(group: number, src: number, protocol: number): boolean;
  /** Has the host joined the group (the all-systems group included)? */
  isMember(group: number): boolean;
}

export interface RegisterOptions {
  /**
   * The handler may be called with checksumTrusted true and then skips checksum verification.
   * Handlers without it get partial checksums completed before they see the datagram.
   */
  checksumOffload?: boolean;
}

/** The link's transmit offload state (see src/link/vnet.ts and Link). */
export interface Ipv4Offload {
  txOffload?: TxOffload;
  gsoMaxSize?: number;
}

export interface Ipv4Config {
  ip: number;
  prefix: number;
  gateway: number | null;
  mtu: number;
  ttl?: number;
  offload?: Ipv4Offload;
  /** Seeds the IP ID generator's key and counters; unset: crypto-random. */
  seed?: number;
  /** Fragment reassembly's limits (src/ipv4/reassembly.ts), for the reassembler made at the first fragment. */
  reassembly?: ReassemblyOptions;
}

export class Ipv4Layer {
  readonly counters = new LayerCounters();
  /** Our address, prefix and gateway: set at creation, changed by setAddress (DHCP). */
  ip: number;
  prefix: number;
  gateway: number | null;
  readonly mtu: number;
  readonly defaultTtl: number;
  /**
   * Largest datagram a transport may hand to send() with segmentSize (TSO super-frames):
   * the link's gsoMaxSize with offloads, else the MTU.
   */
  readonly gsoMaxSize: number;
  private readonly txOffload: TxOffload | null;
  /**
   * The transports, in the order registered: a few, searched in turn (not a table of 256
   * per stack); an exact-size array, replaced on register.
   */
  private registrations: readonly Registration[] = [];
  private subnetBroadcast: number;
  /** The subnet's network address, a broadcast too for Linux (fib_add_ifaddr); -1 on /31, /32. */
  private subnetNetwork: number;
  private identGenerator: IpIdentGenerator | null = null;
  private readonly seed: number | undefined;
  private readonly view = new Ipv4Packet();
  private fragmentBuf: Buffer | null = null;
  private readonly repr: Ipv4Repr = {
    tos: 0,
    id: 0,
    dontFragment: false,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    protocol: 0,
    src: 0,
    dst: 0,
  };
  private reassemblerMade: Reassembler | null = null;
  /** No reassembler made or set yet: the first fragment makes one (most stacks of a fleet never see one). */
  private reassemblerPending = true;
  private readonly reassemblyOptions: ReassemblyOptions | undefined;
  /**
   * Fragments are put back together here (RFC 791 3.2); null: they are dropped. Made at the
   * first use once ICMP is there (it reports reassembly timeouts), or set by hand.
   */
  get reassembler(): Reassembler | null {
    const icmp = this.icmp;
    if (this.reassemblerPending && icmp !== null) {
      this.reassemblerPending = false;
      this.reassemblerMade = new Ipv4Reassembler(this.clock, this.counters, (type, code, rest, first) => icmp.sendError(type, code, rest, first), this.reassemblyOptions);
    }
    return this.reassemblerMade;
  }
  set reassembler(r: Reassembler | null) {
    this.reassemblerMade = r;
    this.reassemblerPending = false;
  }
  /** The reassembler if one was made, without making it. */
  get reassemblerIfMade(): Reassembler | null {
    return this.reassemblerMade;
  }
  /** Group memberships (set by the IGMP layer); without it no multicast is received. */
  multicast: MulticastMembership | null = null;
  /** The ICMP layer, which sets itself here: protocol unreachable, reassembly time exceeded. */
  icmp: Ipv4ErrorReporter | null = null;

  constructor(
    private readonly arp: ArpLayer,
    private readonly clock: Clock,
    config: Ipv4Config,
  ) {
    this.ip = config.ip;
    this.seed = config.seed;
    this.reassemblyOptions = config.reassembly;
    this.prefix = config.prefix;
    this.gateway = config.gateway;
    this.mtu = config.mtu;
    this.defaultTtl = config.ttl ?? 64;
    this.subnetBroadcast = (config.ip | ~prefixMask(config.prefix)) >>> 0;
    this.subnetNetwork = config.prefix < 31 ? (config.ip & prefixMask(config.prefix)) >>> 0 : -1;
    this.txOffload = config.offload?.txOffload ?? null;
    this.gsoMaxSize = this.txOffload !== null ? Math.max(this.mtu, config.offload?.gsoMaxSize ?? this.mtu) : this.mtu;
  }

  /** Datagrams for other hosts, to a router (src/router.ts); null (a host's): dropped. */
  private forwarder: ((ip: Ipv4Packet) => void) | null = null;

  setForwarder(forwarder: ((ip: Ipv4Packet) => void) | null): void {
    this.forwarder = forwarder;
  }

  /**
   * Sends a whole IPv4 datagram, header included, at buf[ipOff, ipOff+len) to a next hop on
   * this interface (a router's forwarding): the Ethernet header goes before ipOff, which
   * leaves LINK_HEADROOM + ETH_HEADER_LEN bytes free.
   */
  sendDatagram(buf: Buffer, ipOff: number, len: number, hop: number): void {
    this.counters.tx++;
    this.arp.sendIpv4(buf, ipOff, len, hop, false);
  }

  /**
   * Changes the interface's address at run time (a DHCP lease bound, renewed elsewhere or
   * expired: 0.0.0.0/32, no gateway). Datagrams then leave with the new source address.
   */
  setAddress(ip: number, prefix: number, gateway: number | null): void {
    this.ip = ip;
    this.prefix = prefix;
    this.gateway = gateway;
    this.subnetBroadcast = (ip | ~prefixMask(prefix)) >>> 0;
    this.subnetNetwork = prefix < 31 ? (ip & prefixMask(prefix)) >>> 0 : -1;
  }

  /**
   * Sets the transport of one protocol: an object with receive() (and receiveIcmpError()), or
   * functions (as addEventListener takes either). A second registration replaces the first.
   */
  register(protocol: number, transport: Ipv4Transport | ProtocolHandler, errorHandler?: IcmpErrorHandler, options?: RegisterOptions): void {
    const t: Ipv4Transport = typeof transport === 'function' ? { receive: transport, receiveIcmpError: errorHandler } : transport;
    const registration: Registration = { protocol, transport: t, checksumOffload: options?.checksumOffload ?? false };
    this.registrations = this.registrations.filter((r) => r.protocol !== protocol).concat(registration);
  }

  private registration(protocol: number): Registration | null {
    const list = this.registrations;
    for (let i = 0; i < list.length; i++) if (list[i]!.protocol === protocol) return list[i]!;
    return null;
  }

  /** Is addr one this host receives for (its own, or a broadcast on its subnet)? */
  isLocal(addr: number): boolean {
    return addr === this.ip || this.isBroadcast(addr);
  }

  isBroadcast(addr: number): boolean {
    return addr === IPV4_BROADCAST || (addr === this.subnetBroadcast && this.prefix < 31);
  }

  /**
   * Handles an IPv4 packet (the Ethernet payload). Never throws: bad packets are counted.
   * `info`: the link's offload facts about this frame (see FrameReceiver), if it has any.
   */
  receive(buf: Buffer, off: number, len: number, info: RxFrameInfo | null = null): void {
    this.input(buf, off, len, info, false);
  }

  /**
   * `looped`: one of our own datagrams to ourselves (loopback()). Like a Linux datagram on lo
   * it keeps the route it went out with and skips the martian checks; a datagram from the
   * link with our address as source is a martian (the LAND attack loops a stack onto itself).
   */
  private input(buf: Buffer, off: number, len: number, info: RxFrameInfo | null, looped: boolean): void {
    this.counters.rx++;
    let ip = this.view;
    const bad = ip.parse(buf, off, len);
    if (bad) return this.counters.drop(bad);
    const dst = ip.dst;
    if (!looped) {
      const martian = this.martian(ip.src, dst, ip.protocol);
      if (martian !== null) return this.counters.drop(martian);
    }
    if (dst !== this.ip && !this.isBroadcast(dst)) {
      if (!isMulticast(dst)) {
        // A router's interface hands it on (RFC 1812 5.2); a host drops it (RFC 1122 3.3.4.2).
        if (this.forwarder !== null && !looped) return this.forwarder(ip);
        return this.counters.drop('ip-not-for-us');
      }
      const m = this.multicast;
      if (m === null || !m.accepts(dst, ip.src, ip.protocol)) return this.counters.drop('ip-multicast-not-joined');
    }
    if (info !== null && (info.checksumPartial || info.checksumValid)) {
      // A fragment's checksum cannot be partial (the kernel completes it before cutting);
      // one said to be valid is reassembled and verified as any other.
      if (!ip.isFragment) return this.deliverOffloaded(ip, info);
      if (info.checksumPartial) return this.counters.drop('ip-offload-fragment');
    }
    if (ip.isFragment) {
      if (!this.reassembler) return this.counters.drop('ip-fragment-unsupported');
      const whole = this.reassembler.add(ip);
      if (!whole) return;
      ip = whole;
    }
    this.deliver(ip);
  }

  /**
   * Martian addresses on a datagram from the link, checked in the order of Linux's
   * ip_route_input_slow and fib_validate_source (RFC 1122 3.2.1.3, RFC 1812 5.3.7): a source
   * that is multicast or class E (255.255.255.255 among them), in 0/8 (except towards the
   * limited broadcast: a host obtaining its address), loopback, our own address or one of our
   * broadcasts; a destination in 0/8 or 127/8 arriving from a link. To a group, a 0/8 source
   * is allowed for IGMP and link-local groups (ip_route_input_mc): a snooping switch queries
   * from 0.0.0.0.
   */
  private martian(src: number, dst: number, protocol: number): 'ip-martian-source' | 'ip-martian-destination' | null {
    if (isMulticast(src) || isClassE(src)) return 'ip-martian-source';
    if (dst === IPV4_BROADCAST) {
      if (isZeroNet(src)) return null;
    } else if (isMulticast(dst) && isZeroNet(src)) {
      if (protocol !== PROTO_IGMP && dst >>> 8 !== 0xe00000) return 'ip-martian-source';
    } else {
      if (isZeroNet(src)) return 'ip-martian-source';
      if (isZeroNet(dst) || isLoopback(dst)) return 'ip-martian-destination';
    }
    if (isLoopback(src) || src === this.ip || this.isBroadcast(src) || src === this.subnetNetwork) return 'ip-martian-source';
    return null;
  }

  /**
   * A datagram whose transport checksum the kernel verified or left partial (offloads; such
   * datagrams come from the local kernel and are never fragments). Handlers that accept it
   * skip verification; for the others a partial checksum is completed first.
   */
  private deliverOffloaded(ip: Ipv4Packet, info: RxFrameInfo): void {
    const protocol = ip.protocol;
    const r = this.registration(protocol);
    if (r !== null && r.checksumOffload) return r.transport.receive(ip, ip.payloadOffset, ip.payloadLength, true);
    if (info.checksumPartial) {
      const end = ip.off + ip.totalLength;
      if (info.checksumStart < ip.payloadOffset || info.checksumField + 2 > end) return this.counters.drop('ip-bad-partial-checksum');
      completePartialChecksum(ip.buf, info.checksumStart, info.checksumField, end, protocol === PROTO_UDP);
    }
    this.deliver(ip);
  }

  /** Passes a complete datagram to its protocol (checksumTrusted: see ProtocolHandler). */
  deliver(ip: Ipv4Packet, checksumTrusted = false): void {
    const r = this.registration(ip.protocol);
    if (r === null) {
      this.counters.drop('ip-unknown-protocol');
      this.icmp?.protocolUnreachable(ip);
      return;
    }
    r.transport.receive(ip, ip.payloadOffset, ip.payloadLength, checksumTrusted);
  }

  /** Hands an ICMP error about one of our datagrams to the protocol that sent it. */
  deliverError(info: IcmpErrorInfo, quoted: Ipv4Packet, off: number, len: number): void {
    this.registration(quoted.protocol)?.transport.receiveIcmpError?.(info, quoted, off, len);
  }

  /** The next hop for dst, or null without a route (RFC 1122 3.3.1.1). */
  nextHop(dst: number): number | null {
    if (sameSubnet(dst, this.ip, this.prefix)) return dst;
    return this.gateway;
  }

  /**
   * Sends `len` bytes at buf[off..] as the payload of an IPv4 datagram to dst. The caller
   * leaves TX_HEADROOM - LINK_HEADROOM bytes free before off for the IPv4 and Ethernet
   * headers. Datagrams larger than the MTU are fragmented unless dontFragment is set.
   */
  send(protocol: number, dst: number, buf: Buffer, off: number, len: number, options?: SendOptions): SendError | null {
    const r = this.repr;
    r.tos = options?.tos ?? 0;
    r.ttl = options?.ttl ?? this.defaultTtl;
    r.protocol = protocol;
    r.src = this.ip;
    r.dst = dst;
    r.dontFragment = options?.dontFragment ?? false;
    r.moreFragments = false;
    r.fragmentOffset = 0;
    r.options = options?.ipOptions;
    // A TSO super-frame takes one ID per segment the link cuts (Linux ip_select_ident_segs).
    const segmentSize = options?.segmentSize ?? 0;
    const segments = segmentSize > 0 && protocol === PROTO_TCP ? Math.max(1, Math.ceil((len - (buf[off + 12]! >> 4) * 4) / segmentSize)) : 1;
    // Made at the first datagram sent, from the seed: idle devices of a fleet hold none.
    this.identGenerator ??= new IpIdentGenerator(this.clock, this.ip, this.seed);
    r.id = this.identGenerator.reserve(dst, protocol, segments);

    if (len > 65535 - IPV4_MIN_HEADER) {
      // RFC 791 3.1: the total length field is 16 bits.
      this.counters.drop('ip-too-big');
      return 'EMSGSIZE';
    }
    const checksumField = options?.checksumField;
    if (dst === this.ip) {
      if (checksumField !== undefined) this.softwareChecksum(protocol, buf, off, len, checksumField);
      return this.loopback(buf, off, len);
    }
    const broadcast = this.isBroadcast(dst);
    const multicast = isMulticast(dst);
    // A group goes out on our one interface, to its mapped MAC (no route, no ARP).
    const hop = broadcast || multicast ? dst : this.nextHop(dst);
    if (hop === null) {
      this.counters.drop('ip-no-route');
      return 'ENETUNREACH';
    }
    const t = this.txOffload;
    // Offload only to a resolved neighbour: a frame queued by ARP is sent later, without
    // this request.
    if (checksumField !== undefined && t !== null && !broadcast && !multicast && this.arp.lookup(hop) !== null) {
      return this.sendOffloaded(protocol, t, buf, off, len, hop, checksumField, segmentSize);
    }
    if (checksumField !== undefined) this.softwareChecksum(protocol, buf, off, len, checksumField);
    if (multicast) {
      if (options?.multicastLoop === true && this.multicast?.isMember(dst) === true) this.loopback(buf, off, len);
      // TTL 0 stays on this host (ip_mc_output drops it after the looped copy).
      if (r.ttl === 0) return null;
    }
    if (ipv4HeaderLength(r) + len > this.mtu) {
      if (r.dontFragment || segmentSize > 0) {
        this.counters.drop('ip-too-big');
        return 'EMSGSIZE';
      }
      return this.fragment(buf, off, len, hop, broadcast, multicast);
    }
    const headerLength = ipv4HeaderLength(r);
    const ipOff = off - headerLength;
    emitIpv4(buf, ipOff, r, len);
    this.counters.tx++;
    if (multicast) this.arp.sendIpv4Multicast(buf, ipOff, headerLength + len, dst);
    else this.arp.sendIpv4(buf, ipOff, headerLength + len, hop, broadcast);
    return null;
  }

  /** RFC 9293 3.1, RFC 768: the transport checksum over the pseudo-header and the segment. */
  private softwareChecksum(protocol: number, buf: Buffer, off: number, len: number, field: number): void {
    buf.writeUInt16BE(0, off + field);
    let c = internetChecksum(buf, off, len, pseudoHeaderSum(this.ip, this.repr.dst, protocol, len));
    if (c === 0 && protocol === PROTO_UDP) c = 0xffff; // RFC 768: 0 means "no checksum"
    buf.writeUInt16BE(c, off + field);
  }

  /**
   * Hands the checksum (and, for a TCP super-frame, the segmentation) to the link: the field
   * gets the pseudo-header sum, the virtio-net header says where the rest is to be summed.
   */
  private sendOffloaded(
    protocol: number,
    t: TxOffload,
    buf: Buffer,
    off: number,
    len: number,
    hop: number,
    field: number,
    segmentSize: number,
  ): SendError | null {
    const total = IPV4_MIN_HEADER + len;
    const segmented = segmentSize > 0 && protocol === PROTO_TCP && total > this.mtu;
    if (total > (segmented ? this.gsoMaxSize : this.mtu)) {
      this.counters.drop('ip-too-big');
      return 'EMSGSIZE';
    }
    buf.writeUInt16BE(foldChecksum(pseudoHeaderSum(this.ip, this.repr.dst, protocol, len)), off + field);
    const ipOff = off - IPV4_MIN_HEADER;
    emitIpv4(buf, ipOff, this.repr, len);
    const transportStart = ETH_HEADER_LEN + IPV4_MIN_HEADER;
    t.checksumStart = transportStart;
    t.checksumOffset = field;
    if (segmented) {
      t.gsoType = VNET_GSO_TCPV4;
      t.segmentSize = segmentSize;
      t.headerLength = transportStart + (buf[off + 12]! >> 4) * 4; // TCP data offset
    }
    this.counters.tx++;
    this.arp.sendIpv4(buf, ipOff, total, hop, false);
    clearTxOffload(t);
    return null;
  }

  /** RFC 791 2.3: cut the payload into pieces of a multiple of 8 bytes that fit the MTU. */
  private fragment(buf: Buffer, off: number, len: number, hop: number, broadcast: boolean, multicast: boolean): SendError | null {
    const r = this.repr;
    r.options = undefined; // (only IGMP sets options, and its messages fit one frame)
    const piece = (this.mtu - IPV4_MIN_HEADER) & ~7;
    const out = (this.fragmentBuf ??= Buffer.alloc(TX_HEADROOM + this.mtu));
    const ipOff = TX_HEADROOM - IPV4_MIN_HEADER;
    for (let done = 0; done < len; done += piece) {
      const n = Math.min(piece, len - done);
      r.fragmentOffset = done;
      r.moreFragments = done + n < len;
      buf.copy(out, TX_HEADROOM, off + done, off + done + n);
      emitIpv4(out, ipOff, r, n);
      this.counters.tx++;
      if (multicast) this.arp.sendIpv4Multicast(out, ipOff, IPV4_MIN_HEADER + n, hop);
      else this.arp.sendIpv4(out, ipOff, IPV4_MIN_HEADER + n, hop, broadcast);
    }
    return null;
  }

  /** Datagrams to our own address come back in on the next turn, as Linux's lo does. */
  private loopback(buf: Buffer, off: number, len: number): null {
    const headerLength = ipv4HeaderLength(this.repr);
    const packet = Buffer.alloc(headerLength + len);
    emitIpv4(packet, 0, this.repr, len);
    buf.copy(packet, headerLength, off, off + len);
    this.counters.tx++;
    this.clock.setTimer(0, () => {
      // This receive runs from a timer, outside the stack's guard around each received
      // frame: a bug above must be counted here, not escape as an uncaught exception.
      try {
        this.input(packet, 0, packet.length, null, true);
      } catch (err) {
        this.counters.drop(`internal-error: ${(err as Error).message}`);
      }
    });
    return null;
  }
}

export { FLAG_DF, FLAG_MF };
