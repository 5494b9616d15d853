// A router: a device with several interfaces that forwards IPv4 between them (RFC 1812).
// Each interface is a stack of its own on its link (its Ethernet, ARP, ICMP: the router
// answers ping and ARP on every interface, as a Linux router does); datagrams for other hosts
// come to the router (Ipv4Layer.setForwarder), which looks the destination up in its routing
// table (longest prefix match, RFC 1812 5.2.4.3: the connected subnets and static routes),
// decrements the TTL and sends it out of the interface the route names, to the route's
// gateway or to the destination itself. What cannot be forwarded gets the ICMP error RFC
// 1812 asks for: Time Exceeded (5.3.1), Destination Unreachable for no route (5.2.7.1), and
// Fragmentation Needed with the next hop's MTU when DF forbids cutting (RFC 1191 4).
// With dhcpRelay, the router relays its clients' DHCP to a server elsewhere (src/dhcp/relay.ts).

import { formatIpv4, parseIpv4 } from './ipv4/address.ts';
import { emitIpv4, IPV4_MIN_HEADER, type Ipv4Packet } from './ipv4/ipv4-packet.ts';
import type { Link } from './link/link.ts';
import { ETH_HEADER_LEN } from './link/ethernet.ts';
import { LINK_HEADROOM } from './link/link.ts';
import { createStack, type Stack, type StackOptions } from './stack.ts';
import { DhcpRelay, type DhcpRelayOptions } from './dhcp/relay.ts';
import type { Clock } from './util/clock.ts';
import { internetChecksum } from './util/checksum.ts';

export interface RouterInterface {
  link: Link;
  /** The interface's address with its prefix: '10.0.1.1/24'. */
  ip: string;
  mac?: string;
  /** Its neighbour table's limits (a segment of many hosts wants more than the default 1,024 entries). */
  arp?: StackOptions['arp'];
}

export interface StaticRoute {
  /** Destination prefix: '10.0.9.0/24', or '0.0.0.0/0' for the default route. */
  to: string;
  /** The gateway, on one of the interfaces' subnets. */
  via: string;
}

export interface RouterOptions {
  interfaces: RouterInterface[];
  routes?: StaticRoute[];
  clock?: Clock;
  seed?: number;
  /** Relay DHCP for the clients of some interfaces to a server (RFC 1542 4). */
  dhcpRelay?: DhcpRelayOptions;
}

export interface RouterCounters {
  forwarded: number;
  /** Datagrams cut into fragments for a smaller next-hop MTU (RFC 791 2.3), and the fragments. */
  fragmented: number;
  fragments: number;
  ttlExceeded: number;
  noRoute: number;
  needFragmentation: number;
  /** Datagrams to the router's address on another interface than the one they came in on (dropped). */
  otherInterface: number;
}

interface Route {
  network: number;
  prefix: number;
  mask: number;
  iface: number;
  /** The gateway; null for a connected subnet (the destination is the next hop). */
  via: number | null;
}

const ICMP_UNREACHABLE = 3;
const ICMP_TIME_EXCEEDED = 11;
const CODE_NET_UNREACHABLE = 0;
const CODE_FRAGMENTATION_NEEDED = 4;
/** Where a forwarded datagram's copy starts in the scratch buffer: room for the Ethernet header and a link's own. */
const IP_OFF = LINK_HEADROOM + ETH_HEADER_LEN;

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function parseCidr(text: string): { address: number; prefix: number } {
  const [a, p] = text.split('/');
  const address = parseIpv4(a ?? '');
  const prefix = Number(p);
  if (address === null || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) throw new Error(`not an address with a prefix: ${text}`);
  return { address, prefix };
}

export class Router {
  readonly counters: RouterCounters = { forwarded: 0, fragmented: 0, fragments: 0, ttlExceeded: 0, noRoute: 0, needFragmentation: 0, otherInterface: 0 };
  /** Longest prefix first: the first match is the one RFC 1812 5.2.4.3 picks. */
  private readonly routes: Route[];
  private readonly scratch: Buffer;
  /** The DHCP relay agent, with RouterOptions.dhcpRelay. */
  readonly dhcpRelay: DhcpRelay | null = null;

  private constructor(
    readonly interfaces: Stack[],
    routes: Route[],
    relay: DhcpRelayOptions | undefined,
  ) {
    this.routes = routes.sort((a, b) => b.prefix - a.prefix);
    this.scratch = Buffer.alloc(IP_OFF + 65535);
    interfaces.forEach((s, i) => s.ipv4.setForwarder((ip) => this.forward(i, ip)));
    if (relay !== undefined) this.dhcpRelay = this.makeRelay(relay);
  }

  private makeRelay(options: DhcpRelayOptions): DhcpRelay {
    const server = parseIpv4(options.server);
    const route = server === null ? null : this.lookup(server);
    // The server-side interface's own datagrams know only its subnet and the default gateway.
    if (route === null || (route.via !== null && route.prefix !== 0)) throw new Error(`dhcpRelay: server ${options.server} is on none of the router's subnets nor behind its default route`);
    const clients = options.interfaces ?? this.interfaces.map((_, i) => i).filter((i) => i !== route.iface);
    for (const i of clients) if (this.interfaces[i] === undefined || i === route.iface) throw new Error(`dhcpRelay: interface ${i} cannot be a client side`);
    return new DhcpRelay(
      clients.map((i) => this.interfaces[i]!),
      this.interfaces[route.iface]!,
      options,
    );
  }

  static async create(options: RouterOptions): Promise<Router> {
    const connected: Route[] = [];
    options.interfaces.forEach((iface, i) => {
      const { address, prefix } = parseCidr(iface.ip);
      const mask = maskOf(prefix);
      connected.push({ network: (address & mask) >>> 0, prefix, mask, iface: i, via: null });
    });
    const statics: Route[] = (options.routes ?? []).map((r) => {
      const { address, prefix } = parseCidr(r.to);
      const via = parseIpv4(r.via);
      const iface = via === null ? undefined : connected.find((c) => ((via & c.mask) >>> 0) === c.network);
      if (via === null || !iface) throw new Error(`route to ${r.to}: gateway ${r.via} is on none of the router's subnets`);
      const mask = maskOf(prefix);
      return { network: (address & mask) >>> 0, prefix, mask, iface: iface.iface, via };
    });
    const stacks: Stack[] = [];
    for (const [i, iface] of options.interfaces.entries()) {
      // An interface's own traffic (its ICMP errors, answers to ping) off its subnet goes
      // to the gateway of the default route when that gateway is on this interface.
      const gateway = statics.find((r) => r.prefix === 0 && r.iface === i)?.via;
      stacks.push(
        await createStack({
          link: iface.link,
          ip: iface.ip,
          mac: iface.mac,
          arp: iface.arp,
          clock: options.clock,
          seed: options.seed === undefined ? undefined : options.seed + i,
          gateway: gateway === undefined || gateway === null ? undefined : formatIpv4(gateway),
        }),
      );
    }
    try {
      return new Router(stacks, [...connected, ...statics], options.dhcpRelay);
    } catch (err) {
      for (const s of stacks) await s.close();
      throw err;
    }
  }

  /** The route for a destination (longest prefix match), or null. */
  lookup(dst: number): Route | null {
    for (const r of this.routes) if (((dst & r.mask) >>> 0) === r.network) return r;
    return null;
  }

  private forward(ingress: number, ip: Ipv4Packet): void {
    const from = this.interfaces[ingress]!;
    // RFC 1812 5.3.1: a datagram whose TTL would reach 0 is not forwarded.
    if (ip.ttl <= 1) {
      this.counters.ttlExceeded++;
      from.icmp.sendError(ICMP_TIME_EXCEEDED, 0, 0, ip, true);
      return;
    }
    // A datagram for the router's address on another interface: Linux (the weak host model)
    // answers it from that address; here each interface answers only its own (a known gap).
    if (this.interfaces.some((s) => s.ipv4.ip === ip.dst)) {
      // But for the DHCP server's reply to the relay's giaddr (RFC 2131 4.1), which that
      // interface's relay socket takes.
      const relaySide = this.dhcpRelay?.receiverOf(ip) ?? null;
      if (relaySide !== null) return relaySide.ipv4.deliver(ip);
      this.counters.otherInterface++;
      return;
    }
    const route = this.lookup(ip.dst);
    if (route === null) {
      this.counters.noRoute++;
      from.icmp.sendError(ICMP_UNREACHABLE, CODE_NET_UNREACHABLE, 0, ip, true);
      return;
    }
    // (A datagram going out where it came in is forwarded too; Linux would also send an ICMP
    // redirect, RFC 1812 5.2.7.2, which this router does not.)
    const out = this.interfaces[route.iface]!;
    const hop = route.via ?? ip.dst;
    const mtu = out.ipv4.mtu;
    const total = ip.totalLength;
    const s = this.scratch;
    ip.buf.copy(s, IP_OFF, ip.off, ip.off + total);
    s[IP_OFF + 8] = ip.ttl - 1;
    if (total <= mtu) {
      this.rechecksum(IP_OFF, ip.headerLength);
      this.counters.forwarded++;
      out.ipv4.sendDatagram(s, IP_OFF, total, hop);
      return;
    }
    if (ip.dontFragment) {
      // RFC 1191 4: the next hop's MTU in the low 16 bits of the unused field.
      this.counters.needFragmentation++;
      from.icmp.sendError(ICMP_UNREACHABLE, CODE_FRAGMENTATION_NEEDED, mtu & 0xffff, ip, true);
      return;
    }
    this.fragmentOut(ip, out, hop, mtu);
  }

  /**
   * RFC 791 2.3 / RFC 1812 5.2.6: cuts the datagram (already copied, TTL decremented) into
   * fragments that fit the next hop. Options are kept in the first fragment only (a
   * simplification: RFC 791 copies the options whose copied flag is set into every one).
   */
  private fragmentOut(ip: Ipv4Packet, out: Stack, hop: number, mtu: number): void {
    this.counters.fragmented++;
    this.counters.forwarded++;
    const s = this.scratch;
    const payload = ip.payloadLength;
    const originalOffset = ip.fragmentOffset;
    const originalMore = ip.moreFragments;
    const repr = ip.toRepr();
    repr.ttl = ip.ttl - 1;
    const frag = this.fragmentBuffer(mtu);
    for (let done = 0; done < payload; ) {
      const headerLength = done === 0 ? ip.headerLength : IPV4_MIN_HEADER;
      const room = (mtu - headerLength) & ~7;
      const n = Math.min(room, payload - done);
      repr.options = done === 0 ? repr.options : undefined;
      repr.fragmentOffset = originalOffset + done;
      repr.moreFragments = done + n < payload || originalMore;
      s.copy(frag, IP_OFF + headerLength, IP_OFF + ip.headerLength + done, IP_OFF + ip.headerLength + done + n);
      emitIpv4(frag, IP_OFF, repr, n);
      this.counters.fragments++;
      out.ipv4.sendDatagram(frag, IP_OFF, headerLength + n, hop);
      done += n;
    }
  }

  private fragmentScratch: Buffer | null = null;

  /** One buffer for the fragments, grown to the largest MTU met (forwarding allocates nothing per datagram). */
  private fragmentBuffer(mtu: number): Buffer {
    if (this.fragmentScratch === null || this.fragmentScratch.length < IP_OFF + mtu) this.fragmentScratch = Buffer.alloc(IP_OFF + mtu);
    return this.fragmentScratch;
  }

  /** The header checksum after the TTL changed (RFC 791 3.1; RFC 1624 would update it incrementally). */
  private rechecksum(off: number, headerLength: number): void {
    const s = this.scratch;
    s.writeUInt16BE(0, off + 10);
    s.writeUInt16BE(internetChecksum(s, off, headerLength), off + 10);
  }

  async close(): Promise<void> {
    this.dhcpRelay?.close();
    for (const s of this.interfaces) await s.close();
  }
}
