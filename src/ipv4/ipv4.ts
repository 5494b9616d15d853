// The IPv4 layer (RFC 791, RFC 1122 3.2.1): validate, deliver by protocol, route, emit,
// and fragment on output. Reassembly of incoming fragments is delegated to a Reassembler.

import type { ArpLayer } from '../arp/arp.ts';
import type { Clock } from '../clock.ts';
import { LayerCounters } from '../counters.ts';
import { ETH_HEADER_LEN } from '../link/ethernet.ts';
import { LINK_HEADROOM } from '../link/link.ts';
import { IPV4_BROADCAST, isMulticast, prefixMask, sameSubnet } from './address.ts';
import { emitIpv4, FLAG_DF, FLAG_MF, IPV4_MIN_HEADER, Ipv4Packet, type Ipv4Repr } from './ipv4-packet.ts';

/** Where upper layers put their header: room for link, Ethernet and IPv4 headers before it. */
export const TX_HEADROOM = LINK_HEADROOM + ETH_HEADER_LEN + IPV4_MIN_HEADER;

/** A transport's receive entry point: the IPv4 header view, then its payload. */
export type ProtocolHandler = (ip: Ipv4Packet, off: number, len: number) => void;

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

/** Takes fragments; returns the whole datagram's view once complete, else null. */
export interface Reassembler {
  add(ip: Ipv4Packet): Ipv4Packet | null;
  close(): void;
}

export type SendError = 'EHOSTUNREACH' | 'ENETUNREACH' | 'EMSGSIZE';

export interface SendOptions {
  ttl?: number;
  tos?: number;
  dontFragment?: boolean;
}

export interface Ipv4Config {
  ip: number;
  prefix: number;
  gateway: number | null;
  mtu: number;
  ttl?: number;
}

export class Ipv4Layer {
  readonly counters = new LayerCounters();
  readonly ip: number;
  readonly prefix: number;
  readonly gateway: number | null;
  readonly mtu: number;
  readonly defaultTtl: number;
  private readonly subnetBroadcast: number;
  private readonly view = new Ipv4Packet();
  private readonly handlers: (ProtocolHandler | undefined)[] = new Array(256);
  private readonly errorHandlers: (IcmpErrorHandler | undefined)[] = new Array(256);
  private nextId = 1;
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
  reassembler: Reassembler | null = null;
  /** Called for a datagram whose protocol has no handler (ICMP answers protocol unreachable). */
  onUnknownProtocol: (ip: Ipv4Packet) => void = () => {};

  constructor(
    private readonly arp: ArpLayer,
    private readonly clock: Clock,
    config: Ipv4Config,
  ) {
    this.ip = config.ip;
    this.prefix = config.prefix;
    this.gateway = config.gateway;
    this.mtu = config.mtu;
    this.defaultTtl = config.ttl ?? 64;
    this.subnetBroadcast = (config.ip | ~prefixMask(config.prefix)) >>> 0;
    this.nextId = (config.ip ^ 0x5a5a) & 0xffff;
  }

  register(protocol: number, handler: ProtocolHandler, errorHandler?: IcmpErrorHandler): void {
    this.handlers[protocol] = handler;
    if (errorHandler) this.errorHandlers[protocol] = errorHandler;
  }

  /** Is addr one this host receives for (its own, or a broadcast on its subnet)? */
  isLocal(addr: number): boolean {
    return addr === this.ip || this.isBroadcast(addr);
  }

  isBroadcast(addr: number): boolean {
    return addr === IPV4_BROADCAST || (addr === this.subnetBroadcast && this.prefix < 31);
  }

  /** Handles an IPv4 packet (the Ethernet payload). Never throws: bad packets are counted. */
  receive(buf: Buffer, off: number, len: number): void {
    this.counters.rx++;
    let ip = this.view;
    const bad = ip.parse(buf, off, len);
    if (bad) return this.counters.drop(bad);
    const src = ip.src;
    // RFC 1122 3.2.1.3: a source that is broadcast or multicast is discarded.
    const dst = ip.dst;
    if (src === IPV4_BROADCAST || isMulticast(src) || src === this.subnetBroadcast) return this.counters.drop('ip-martian-source');
    // 0.0.0.0 is only a source while an address is being obtained, to the limited broadcast
    // (RFC 1122 3.2.1.3 (a); Linux ip_route_input_slow lets only that through).
    if (src === 0 && dst !== IPV4_BROADCAST) return this.counters.drop('ip-martian-source');
    if (dst !== this.ip && !this.isBroadcast(dst)) return this.counters.drop('ip-not-for-us');
    if (ip.isFragment) {
      if (!this.reassembler) return this.counters.drop('ip-fragment-unsupported');
      const whole = this.reassembler.add(ip);
      if (!whole) return;
      ip = whole;
    }
    this.deliver(ip);
  }

  /** Passes a complete datagram to its protocol. */
  deliver(ip: Ipv4Packet): void {
    const handler = this.handlers[ip.protocol];
    if (!handler) {
      this.counters.drop('ip-unknown-protocol');
      this.onUnknownProtocol(ip);
      return;
    }
    handler(ip, ip.payloadOffset, ip.payloadLength);
  }

  /** Hands an ICMP error about one of our datagrams to the protocol that sent it. */
  deliverError(info: IcmpErrorInfo, quoted: Ipv4Packet, off: number, len: number): void {
    const handler = this.errorHandlers[quoted.protocol];
    if (handler) handler(info, quoted, off, len);
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
    r.id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xffff;

    if (len > 65535 - IPV4_MIN_HEADER) {
      // RFC 791 3.1: the total length field is 16 bits.
      this.counters.drop('ip-too-big');
      return 'EMSGSIZE';
    }
    if (dst === this.ip) return this.loopback(buf, off, len);
    const broadcast = this.isBroadcast(dst);
    const hop = broadcast ? dst : this.nextHop(dst);
    if (hop === null) {
      this.counters.drop('ip-no-route');
      return 'ENETUNREACH';
    }
    if (IPV4_MIN_HEADER + len > this.mtu) {
      if (r.dontFragment) {
        this.counters.drop('ip-too-big');
        return 'EMSGSIZE';
      }
      return this.fragment(buf, off, len, hop, broadcast);
    }
    const ipOff = off - IPV4_MIN_HEADER;
    emitIpv4(buf, ipOff, r, len);
    this.counters.tx++;
    this.arp.sendIpv4(buf, ipOff, IPV4_MIN_HEADER + len, hop, broadcast);
    return null;
  }

  /** RFC 791 2.3: cut the payload into pieces of a multiple of 8 bytes that fit the MTU. */
  private fragment(buf: Buffer, off: number, len: number, hop: number, broadcast: boolean): SendError | null {
    const r = this.repr;
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
      this.arp.sendIpv4(out, ipOff, IPV4_MIN_HEADER + n, hop, broadcast);
    }
    return null;
  }

  /** Datagrams to our own address come back in on the next turn, as Linux's lo does. */
  private loopback(buf: Buffer, off: number, len: number): null {
    const packet = Buffer.alloc(IPV4_MIN_HEADER + len);
    emitIpv4(packet, 0, this.repr, len);
    buf.copy(packet, IPV4_MIN_HEADER, off, off + len);
    this.counters.tx++;
    this.clock.setTimer(0, () => this.receive(packet, 0, packet.length));
    return null;
  }
}

export { FLAG_DF, FLAG_MF };
