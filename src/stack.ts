// The stack wires the layers of one interface together and exposes them. Receive:
// link -> Ethernet demux -> ARP or IPv4 -> ICMP / UDP / TCP. Transmit goes back down through
// IPv4 (routing, fragmentation) and ARP (next-hop resolution) to the link.

import { createHash } from 'node:crypto';
import { ArpLayer, type ArpOptions } from './arp/arp.ts';
import { type Clock, RealClock } from './util/clock.ts';
import { LayerCounters } from './util/counters.ts';
import { formatIpv4, parseCidr, parseIpv4, sameSubnet } from './ipv4/address.ts';
import { IcmpLayer, type IcmpOptions } from './ipv4/icmp.ts';
import { Ipv4Layer } from './ipv4/ipv4.ts';
import { Ipv4Reassembler, type ReassemblyOptions } from './ipv4/reassembly.ts';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  EthernetFrame,
  formatMac,
  isGroupMac,
  type Mac,
  macEquals,
  parseMac,
} from './link/ethernet.ts';
import type { Link } from './link/link.ts';
import type { RxFrameInfo } from './link/vnet.ts';
import { CapturingLink, PcapWriter } from './link/pcap.ts';
import { configureHostSide, TapDevice, TapError } from './tap/tap.ts';
import type { RemoteInfo, SocketOptions, SocketType, UdpSocket } from './udp/socket.ts';
import { UdpLayer } from './udp/udp.ts';
import type { TcpConfig } from './tcp/config.ts';
import { Server, type ServerOptions } from './tcp/server.ts';
import { type ConnectOptions, Socket } from './tcp/socket.ts';
import { TcpLayer } from './tcp/layer.ts';

export interface StackOptions {
  /** A TAP device name to open (created if missing). Give either tap or link. */
  tap?: string;
  /** Any Link: an in-memory link, a fault injector, ... */
  link?: Link;
  /** Our address with prefix, e.g. "10.0.0.2/24". */
  ip: string;
  /** Address for the kernel's end of the TAP ("10.0.0.1/24"); omitted: left as it is. */
  hostIp?: string;
  /** Default gateway; defaults to hostIp's address when given. */
  gateway?: string;
  /** "02:..."; defaults to a stable locally administered address derived from ip and device. */
  mac?: string;
  mtu?: number;
  clock?: Clock;
  /** Write every frame in and out to this pcap file. */
  pcap?: string;
  /** Seed for everything random in the stack (ISNs, ports); unset: crypto-random. */
  seed?: number;
  arp?: ArpOptions;
  icmp?: IcmpOptions;
  /** Caps and timeout of IPv4 reassembly (Linux defaults: 4 MB, 30 s). */
  reassembly?: ReassemblyOptions;
  /** Use IFF_VNET_HDR on the TAP (implied by offload). */
  vnetHeader?: boolean;
  /**
   * Checksum and TCP segmentation offloads on the TAP (IFF_VNET_HDR + TUNSETOFFLOAD): the
   * kernel hands over 64 KB super-frames with partial checksums and takes super-frames to
   * segment. Default on where the kernel supports it; a `link` has whatever it offers.
   */
  offload?: boolean;
  /** TCP tunables (timers, buffers, retries); see src/tcp/config.ts for the defaults. */
  tcp?: Partial<TcpConfig>;
}

export class StackConfigError extends Error {
  readonly code = 'ERR_INVALID_ARG_VALUE';
}

/** A layer above IPv4 that the stack should close and report counters for. */
export interface StackModule {
  readonly counters: LayerCounters;
  close(): void | Promise<void>;
}

export class Stack {
  readonly clock: Clock;
  readonly link: Link;
  readonly mac: Mac;
  readonly ip: number;
  readonly prefix: number;
  readonly mtu: number;
  readonly arp: ArpLayer;
  readonly ipv4: Ipv4Layer;
  readonly icmp: IcmpLayer;
  readonly udp: UdpLayer;
  readonly tcp: TcpLayer;
  readonly ethCounters = new LayerCounters();
  readonly seed: number | undefined;
  /** Upper layers (UDP, TCP) register here so that counters and close() reach them. */
  readonly modules = new Map<string, StackModule>();
  /** The TAP device when the stack runs on one. */
  readonly tap: TapDevice | null;
  private readonly eth = new EthernetFrame();
  private readonly batchEndHandlers: (() => void)[] = [];
  private readonly linkBatches: boolean;
  /** Frames of a receive batch are being processed; its end handlers have not run yet. */
  private batchOpen = false;
  private closed = false;

  constructor(
    options: StackOptions & { link: Link },
    parsed: { ip: number; prefix: number; gateway: number | null; mac: Mac },
    tap: TapDevice | null,
  ) {
    this.clock = options.clock ?? new RealClock();
    this.link = options.link;
    this.tap = tap;
    this.mac = parsed.mac;
    this.ip = parsed.ip;
    this.prefix = parsed.prefix;
    this.mtu = options.mtu ?? this.link.mtu;
    this.seed = options.seed;
    const link = this.link;
    const eth = this.ethCounters;
    const countedLink = {
      send(buf: Buffer, off: number, len: number): void {
        eth.tx++;
        link.send(buf, off, len);
      },
    };
    this.arp = new ArpLayer(countedLink, this.clock, this.mac, this.ip, options.arp);
    this.ipv4 = new Ipv4Layer(this.arp, this.clock, {
      ip: this.ip,
      prefix: this.prefix,
      gateway: parsed.gateway,
      mtu: this.mtu,
      offload: { txOffload: link.txOffload, gsoMaxSize: link.gsoMaxSize },
    });
    this.icmp = new IcmpLayer(this.ipv4, this.clock, options.icmp);
    this.ipv4.reassembler = new Ipv4Reassembler(
      this.clock,
      this.ipv4.counters,
      (type, code, rest, first) => this.icmp.sendError(type, code, rest, first),
      options.reassembly,
    );
    this.udp = new UdpLayer(this.ipv4, this.icmp, { seed: options.seed });
    this.modules.set('udp', this.udp);
    this.tcp = new TcpLayer(this, options.tcp);
    this.modules.set('tcp', this.tcp);
    this.link.setReceiver((buf, off, len, info) => this.receiveFrame(buf, off, len, info));
    this.linkBatches = typeof link.setBatchEndHandler === 'function';
    if (link.setBatchEndHandler) link.setBatchEndHandler(() => this.endBatch());
  }

  /** Whether the link offloads checksums and TCP segmentation (see StackOptions.offload). */
  get offload(): boolean {
    return this.link.txOffload !== undefined;
  }

  /**
   * Largest IPv4 datagram a transport may send as one TCP super-frame (Ipv4Layer.send with
   * segmentSize): up to 65535 with offloads, else the MTU.
   */
  get gsoMaxSize(): number {
    return this.ipv4.gsoMaxSize;
  }

  /**
   * Runs `handler` after each batch of received frames (every frame the link read in one
   * wake-up, up to 64), e.g. to send one ACK for all the segments of a batch. Returns a
   * function that removes it.
   */
  onBatchEnd(handler: () => void): () => void {
    this.batchEndHandlers.push(handler);
    return () => {
      const i = this.batchEndHandlers.indexOf(handler);
      if (i >= 0) this.batchEndHandlers.splice(i, 1);
    };
  }

  /** Whether a batch of received frames is being processed (its end handlers will run). */
  get inReceiveBatch(): boolean {
    return this.batchOpen;
  }

  private endBatch(): void {
    this.batchOpen = false;
    const handlers = this.batchEndHandlers;
    for (let i = 0; i < handlers.length; i++) {
      try {
        handlers[i]!();
      } catch (err) {
        this.ethCounters.drop(`internal-error: ${(err as Error).message}`);
      }
    }
  }

  get address(): string {
    return formatIpv4(this.ip);
  }

  get macAddress(): string {
    return formatMac(this.mac);
  }

  /** Entry point for every received frame, with the link's offload facts about it. Never throws. */
  receiveFrame(buf: Buffer, off: number, len: number, info: RxFrameInfo | null = null): void {
    const c = this.ethCounters;
    c.rx++;
    this.batchOpen = this.batchEndHandlers.length > 0;
    try {
      const eth = this.eth;
      const bad = eth.parse(buf, off, len);
      if (bad) return c.drop(bad);
      if (!isGroupMac(buf, off) && !macEquals(buf, off, this.mac)) return c.drop('eth-not-for-us');
      const type = eth.etherType;
      if (type === ETHERTYPE_IPV4) this.ipv4.receive(buf, eth.payloadOffset, eth.payloadLength, info);
      else if (type === ETHERTYPE_ARP) this.arp.receive(buf, eth.payloadOffset, eth.payloadLength);
      else c.drop('eth-unknown-type');
    } catch (err) {
      // A bug in a layer must not take the interface down: count it under its message.
      c.drop(`internal-error: ${(err as Error).message}`);
    } finally {
      // A link that does not batch: every frame is a batch of its own.
      if (!this.linkBatches && this.batchEndHandlers.length > 0) this.endBatch();
    }
  }

  /** Like dgram.createSocket: a UDP socket on this stack. */
  createSocket(type: SocketType | SocketOptions, listener?: (msg: Buffer, rinfo: RemoteInfo) => void): UdpSocket {
    return this.udp.createSocket(type, listener);
  }

  /** Like net.createServer: a TCP server on this stack. */
  createServer(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void): Server {
    if (typeof options === 'function') return new Server(this.tcp, {}, options);
    return new Server(this.tcp, options ?? {}, connectionListener);
  }

  /** Like net.connect: a TCP connection from this stack. */
  connect(options: ConnectOptions | number, host?: string | (() => void), connectListener?: () => void): Socket {
    const socket = new Socket(this.tcp, typeof options === 'number' ? {} : options);
    return socket.connect(options, host, connectListener);
  }

  /** Alias of connect, as in Node's net. */
  createConnection(options: ConnectOptions | number, host?: string | (() => void), connectListener?: () => void): Socket {
    return this.connect(options, host, connectListener);
  }

  /** Counters of every layer: frames in and out and drops by reason (and the TAP's offloads). */
  counters(): Record<string, { rx: number; tx: number; drops: Record<string, number>; offload?: Record<string, number> }> {
    const out: Record<string, { rx: number; tx: number; drops: Record<string, number>; offload?: Record<string, number> }> = {};
    if (this.tap) {
      const s = this.tap.stats;
      out.tap = {
        rx: s.rxFrames,
        tx: s.txFrames,
        drops: { 'tx-error': s.txErrors, 'rx-error': s.rxErrors, 'bad-vnet-header': s.rxBadVnetHeader },
        offload: {
          rxBatches: s.rxBatches,
          rxPartialChecksum: s.rxPartialChecksum,
          rxSuperFrames: s.rxSuperFrames,
          txPartialChecksum: s.txPartialChecksum,
          txSuperFrames: s.txSuperFrames,
        },
      };
    }
    Object.assign(out, {
      ethernet: this.ethCounters.toJSON(),
      arp: this.arp.counters.toJSON(),
      ipv4: this.ipv4.counters.toJSON(),
      icmp: this.icmp.counters.toJSON(),
    });
    for (const [name, m] of this.modules) out[name] = m.counters.toJSON();
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const m of [...this.modules.values()].reverse()) await m.close();
    this.ipv4.reassembler?.close();
    this.arp.close();
    await this.link.close();
  }
}

/** A stable locally administered MAC (02:...) derived from a name, so restarts keep it. */
export function stableMac(seedText: string): Mac {
  const h = createHash('sha256').update(seedText).digest();
  const mac = Buffer.from(h.subarray(0, 6));
  mac[0] = (mac[0]! & 0xfc) | 0x02; // unicast, locally administered
  return mac;
}

export async function createStack(options: StackOptions): Promise<Stack> {
  const cidr = parseCidr(options.ip, 24);
  if (!cidr) throw new StackConfigError(`invalid ip: ${options.ip}`);
  const hostCidr = options.hostIp !== undefined ? parseCidr(options.hostIp, cidr.prefix) : null;
  if (options.hostIp !== undefined && !hostCidr) throw new StackConfigError(`invalid hostIp: ${options.hostIp}`);
  let gateway: number | null = hostCidr ? hostCidr.addr : null;
  if (options.gateway !== undefined) {
    gateway = parseIpv4(options.gateway);
    if (gateway === null) throw new StackConfigError(`invalid gateway: ${options.gateway}`);
  }
  if (hostCidr && hostCidr.addr === cidr.addr) throw new StackConfigError(`hostIp ${options.hostIp} is the stack's own address`);
  // RFC 1122 3.3.1.1: the first hop must be on the connected network (Linux refuses such a route).
  if (gateway !== null && (gateway === cidr.addr || !sameSubnet(gateway, cidr.addr, cidr.prefix))) {
    const from = options.gateway !== undefined ? 'gateway' : 'gateway (the hostIp)';
    throw new StackConfigError(`${from} ${formatIpv4(gateway)} is not a neighbour on ${formatIpv4(cidr.addr)}/${cidr.prefix}`);
  }
  const mtu = options.mtu ?? options.link?.mtu ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new StackConfigError(`invalid mtu: ${mtu} (576..65535)`);
  let mac: Mac;
  if (options.mac !== undefined) {
    const m = parseMac(options.mac);
    if (!m || (m[0]! & 1) === 1) throw new StackConfigError(`invalid mac: ${options.mac}`);
    mac = m;
  } else {
    mac = stableMac(`tapstack:${options.tap ?? 'link'}:${options.ip}`);
  }
  // Opened first: a bad capture path must not leave a TAP behind.
  const pcap = options.pcap ? new PcapWriter(options.pcap) : null;
  let link = options.link;
  let tap: TapDevice | null = null;
  if (!link) {
    if (!options.tap) throw new StackConfigError('createStack needs a tap device name or a link');
    try {
      tap = TapDevice.open({ name: options.tap, mtu, vnetHeader: options.vnetHeader, offload: options.offload ?? true });
    } catch (err) {
      pcap?.close();
      throw err;
    }
    try {
      if (hostCidr) configureHostSide(options.tap, `${formatIpv4(hostCidr.addr)}/${hostCidr.prefix}`, mtu);
    } catch (err) {
      await tap.close();
      pcap?.close();
      throw err;
    }
    link = tap;
  }
  if (pcap) link = new CapturingLink(link, pcap);
  const stack = new Stack({ ...options, link, mtu }, { ip: cidr.addr, prefix: cidr.prefix, gateway, mac }, tap);
  stack.arp.announce();
  return stack;
}

export { TapError };
