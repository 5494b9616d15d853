// The stack wires the layers of one interface together and exposes them. Receive:
// link -> Ethernet demux -> ARP or IPv4 -> ICMP / UDP / TCP. Transmit goes back down through
// IPv4 (routing, fragmentation) and ARP (next-hop resolution) to the link.

import { ArpLayer } from './arp/arp.ts';
import { type Clock, GuardedClock, RealClock, VirtualClock } from './util/clock.ts';
import type { LayerCounters } from './util/counters.ts';
import { formatIpv4, parseIpv4 } from './ipv4/address.ts';
import { IcmpLayer } from './ipv4/icmp.ts';
import { IgmpLayer } from './ipv4/igmp.ts';
import { type DgramModule, dgramModule } from './dgram.ts';
import { Ipv4Layer } from './ipv4/ipv4.ts';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4, formatMac, type Mac } from './link/ethernet.ts';
import { EthernetLayer } from './link/ethernet-layer.ts';
import type { Link } from './link/link.ts';
import type { RxFrameInfo } from './link/vnet.ts';
import { CapturingLink, PcapWriter } from './link/pcap.ts';
import { configureHostSide, TapDevice, TapError } from './tap/tap.ts';
import { type RemoteInfo, type SocketOptions, type SocketType, UdpSocket } from './udp/socket.ts';
import { UdpLayer } from './udp/udp.ts';
import type { Server, ServerOptions } from './tcp/server.ts';
import type { ConnectOptions, Socket } from './tcp/socket.ts';
import { TcpLayer } from './tcp/layer.ts';
import { type ConnectionEntry, listConnections } from './tcp/connections.ts';
import type { LookupFunction } from './tcp/lookup.ts';
import { LoopHold, LoopRef } from './util/loop-hold.ts';
import { connectOn, createHttpAgent, createNetModule, createServerOn, type NetModule } from './net.ts';
import type { Agent, AgentOptions } from 'node:http';
import type { Probe } from './probe.ts';
import { ProbeHub } from './probe-hub.ts';
import { startTrace, type Trace, type TraceOptions } from './trace/tracer.ts';
import { DhcpClient } from './dhcp/client.ts';
import { DnsResolver } from './dns/resolver.ts';
import { type ParsedStackOptions, parseStackOptions, StackConfigError, type StackOptions } from './stack-options.ts';

export { StackConfigError, stableMac, type StackOptions } from './stack-options.ts';

/** A layer above IPv4 that the stack should close and report counters for. */
/** Runs after each receive batch (Stack.onBatchEnd): a layer registers itself, not a closure. */
export interface BatchEnder {
  endBatch(): void;
}

export interface StackModule {
  readonly counters: LayerCounters;
  close(): void | Promise<void>;
}

/** One layer's counters as counters() reports them. */
export interface LayerCounts {
  rx: number;
  tx: number;
  drops: Record<string, number>;
  /** The TAP's offload counts. */
  offload?: Record<string, number>;
  /** TCP: what it did beyond segments in and out (src/tcp/counters.ts). */
  stats?: Record<string, number>;
}

export class Stack {
  readonly clock: GuardedClock;
  readonly link: Link;
  readonly mac: Mac;
  /** The interface's address and prefix (0.0.0.0/32 until a DHCP lease binds); see setAddress. */
  ip: number;
  prefix: number;
  readonly mtu: number;
  readonly arp: ArpLayer;
  readonly ipv4: Ipv4Layer;
  readonly icmp: IcmpLayer;
  readonly igmp: IgmpLayer;
  readonly udp: UdpLayer;
  private dgramOnStack: DgramModule | null = null;
  /** Like Node's dgram module, on this stack: createSocket and Socket (made on first use). */
  get dgram(): DgramModule {
    return (this.dgramOnStack ??= dgramModule(this.udp));
  }
  readonly tcp: TcpLayer;
  readonly ethernet: EthernetLayer;
  /** The Ethernet layer's counters (frames in and out, drops by reason). */
  readonly ethCounters: LayerCounters;
  readonly seed: number | undefined;
  /** Upper layers (UDP, TCP) register here so that counters and close() reach them. */
  readonly modules = new Map<string, StackModule>();
  /** The TAP device when the stack runs on one. */
  readonly tap: TapDevice | null;
  /** The capture when StackOptions.pcap is set (its counters are under 'pcap'). */
  pcap: PcapWriter | null = null;
  /** Run after each receive batch, in the order added; exact-size, replaced on change. */
  private batchEnders: readonly BatchEnder[] = [];
  private readonly linkBatches: boolean;
  /** Frames of a receive batch are being processed; its end handlers have not run yet. */
  private batchOpen = false;
  private closed = false;
  /** Ref'd sockets and servers (and stack.ref()) keep Node's event loop alive through it. */
  readonly loopHold: LoopHold;
  /** The stack's own ref (ref()/unref()): off by default, as a kernel is not a handle. */
  private readonly stackRef: LoopRef;
  /** The resolver of connect and listen when they are given none (StackOptions.lookup). */
  readonly lookup: LookupFunction | undefined;
  private netModule: NetModule | null = null;
  /** The DHCP client when StackOptions.dhcp is set: its state and lease. */
  readonly dhcp: DhcpClient | null = null;
  private resolver: DnsResolver | null = null;
  private readonly dnsOptions: StackOptions['dns'];
  /** The loop refs of sockets of other layers (UDP), by owner (refHandle). */
  private handleRefsMade: Map<object, LoopRef> | null = null;
  /** Made at the first UDP socket's ref. */
  private get handleRefs(): Map<object, LoopRef> {
    return (this.handleRefsMade ??= new Map());
  }
  /** The probe of setProbe and every trace, fanned out to the layers' observation points. */
  private readonly probes: ProbeHub;

  constructor(
    options: StackOptions & { link: Link },
    parsed: Pick<ParsedStackOptions, 'ip' | 'prefix' | 'gateway' | 'mac'>,
    tap: TapDevice | null,
  ) {
    // Every layer's timers run through the guard: a bug in one is counted, the stack goes on.
    // They do not hold the event loop either: a kernel is no handle; ref'd sockets, servers
    // and orphans still sending do (loopHold).
    this.clock = new GuardedClock(options.clock ?? new RealClock(), (err) => this.internalError(err), true);
    this.link = options.link;
    this.tap = tap;
    this.mac = parsed.mac;
    this.ip = parsed.ip;
    this.prefix = parsed.prefix;
    this.mtu = options.mtu ?? this.link.mtu;
    this.seed = options.seed;
    this.dnsOptions = options.dns;
    // With a resolver configured (or servers to come from DHCP), names go through it.
    this.lookup = options.lookup ?? (options.dns !== undefined || (options.dhcp ?? false) !== false ? (h, o, cb) => this.dns.lookup(h, o, cb) : undefined);
    this.loopHold = new LoopHold(!(this.clock.inner instanceof VirtualClock));
    this.stackRef = new LoopRef(this.loopHold);
    this.stackRef.set(false);
    this.stackRef.setActive(true);
    // The TAP's reader does not hold the loop: the stack's ref'd sockets do (loopHold).
    tap?.unref();
    const link = this.link;
    this.ethernet = new EthernetLayer(link, this.mac);
    this.ethCounters = this.ethernet.counters;
    this.arp = new ArpLayer(this.ethernet, this.clock, this.mac, this.ip, options.arp, { prefix: this.prefix, gateway: parsed.gateway });
    this.ipv4 = new Ipv4Layer(this.arp, this.clock, {
      ip: this.ip,
      prefix: this.prefix,
      gateway: parsed.gateway,
      mtu: this.mtu,
      offload: { txOffload: link.txOffload, gsoMaxSize: link.gsoMaxSize },
      seed: options.seed,
      reassembly: options.reassembly,
    });
    this.icmp = new IcmpLayer(this.ipv4, this.clock, options.icmp);
    this.igmp = new IgmpLayer(this.ipv4, this.clock, this.ethernet, { seed: options.seed, ...options.igmp });
    this.modules.set('igmp', this.igmp);
    this.udp = new UdpLayer(this.ipv4, this.icmp, this, { seed: options.seed, ...options.udp });
    // Datagrams received in a batch reach their sockets' listeners at its end.
    this.onBatchEnd(this.udp);
    this.modules.set('udp', this.udp);
    this.tcp = new TcpLayer(this, options.tcp);
    this.modules.set('tcp', this.tcp);
    this.ethernet.register(ETHERTYPE_IPV4, this.ipv4);
    this.ethernet.register(ETHERTYPE_ARP, this.arp);
    this.link.setReceiver((buf, off, len, info) => this.receiveFrame(buf, off, len, info));
    this.linkBatches = typeof link.setBatchEndHandler === 'function';
    if (link.setBatchEndHandler) link.setBatchEndHandler(() => this.endBatch());
    this.probes = new ProbeHub(this);
    if (options.dhcp !== undefined && options.dhcp !== false) this.dhcp = new DhcpClient(this, options.dhcp === true ? {} : options.dhcp);
  }

  /**
   * The DNS stub resolver (src/dns/resolver.ts): lookup() and promises.lookup() with Node's
   * dns.lookup signature, over StackOptions.dns servers or the DHCP lease's. Made on first use.
   */
  get dns(): DnsResolver {
    this.resolver ??= new DnsResolver(this, this.dnsOptions, () => this.dhcp?.lease?.dnsServers ?? []);
    return this.resolver;
  }

  /**
   * Sets the stack's probe (src/probe.ts), or removes it with null. It coexists with active
   * traces (trace()). Without any, nothing is decoded: each frame costs one null check.
   */
  setProbe(probe: Probe | null): void {
    this.probes.setUser(probe);
  }

  /**
   * Starts a trace (src/trace/tracer.ts): the probe's reports as records and lines, through a
   * filter. Many may run at once; each stop()s alone, and when the last one stops (and no
   * setProbe probe is set) the stack is no longer observed.
   */
  trace(options: TraceOptions = {}): Trace {
    return startTrace(this, options, (probe) => this.probes.add(probe));
  }

  /** Every layer's counters by the name counters() reports them under. */
  layerCounters(): Record<string, LayerCounters> {
    const out: Record<string, LayerCounters> = { ethernet: this.ethCounters, arp: this.arp.counters, ipv4: this.ipv4.counters, icmp: this.icmp.counters };
    for (const [name, m] of this.modules) out[name] = m.counters;
    if (this.pcap) out.pcap = this.pcap.counters;
    return out;
  }

  /**
   * Changes the interface's address at run time, as `ip addr` would: what a DHCP lease binds
   * (0 drops it). Connections on the old address are left to time out, as Linux leaves them.
   */
  setAddress(ip: number, prefix: number, gateway: number | null): void {
    this.ip = ip;
    this.prefix = prefix;
    this.ipv4.setAddress(ip, prefix, gateway);
    this.arp.setAddress(ip, prefix, gateway);
    this.tcp.ip = ip;
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
  onBatchEnd(handler: (() => void) | BatchEnder): () => void {
    const ender = typeof handler === 'function' ? { endBatch: handler } : handler;
    this.batchEnders = this.batchEnders.concat(ender);
    return () => {
      this.batchEnders = this.batchEnders.filter((e) => e !== ender);
    };
  }

  /**
   * The event loop follows the stack's sockets as Node's handles do (src/util/loop-hold.ts):
   * a UDP socket holds the loop once bound (an active libuv handle) until unref() or
   * close; TCP sockets and servers keep their own LoopRef. Owners call these with themselves.
   */
  refHandle(owner: object): void {
    this.handleRef(owner).set(true);
  }

  unrefHandle(owner: object): void {
    this.handleRef(owner).set(false);
  }

  releaseHandle(owner: object): void {
    this.handleRefs.get(owner)?.setActive(false);
    this.handleRefs.delete(owner);
  }

  /** Does the stack hold the event loop now? */
  get holdsLoop(): boolean {
    return this.loopHold.refs > 0;
  }

  private handleRef(owner: object): LoopRef {
    let r = this.handleRefs.get(owner);
    if (!r) {
      r = new LoopRef(this.loopHold);
      r.setActive(true);
      this.handleRefs.set(owner, r);
    }
    return r;
  }

  /** Whether a batch of received frames is being processed (its end handlers will run). */
  get inReceiveBatch(): boolean {
    return this.batchOpen;
  }

  private endBatch(): void {
    this.batchOpen = false;
    const enders = this.batchEnders;
    for (let i = 0; i < enders.length; i++) {
      try {
        enders[i]!.endBatch();
      } catch (err) {
        this.internalError(err);
      }
    }
  }

  /** A bug in a layer must not take the interface down: count it under its message. */
  private internalError(err: unknown): void {
    this.ethCounters.drop(`internal-error: ${(err as Error)?.message ?? String(err)}`);
  }

  get address(): string {
    return formatIpv4(this.ip);
  }

  get macAddress(): string {
    return formatMac(this.mac);
  }

  /** Entry point for every received frame, with the link's offload facts about it. Never throws. */
  receiveFrame(buf: Buffer, off: number, len: number, info: RxFrameInfo | null = null): void {
    this.batchOpen = this.batchEnders.length > 0;
    try {
      this.ethernet.receive(buf, off, len, info);
    } catch (err) {
      this.internalError(err);
    } finally {
      // A link that does not batch: every frame is a batch of its own.
      if (!this.linkBatches && this.batchEnders.length > 0) this.endBatch();
    }
  }

  /** Like dgram.createSocket: a UDP socket on this stack. */
  createSocket(type: SocketType | SocketOptions, listener?: (msg: Buffer, rinfo: RemoteInfo) => void): UdpSocket {
    return new UdpSocket(this.udp, type, listener);
  }

  /** Like net.createServer: a TCP server on this stack. */
  createServer(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void): Server {
    return createServerOn(this.tcp, options, connectionListener);
  }

  /** Like net.connect: a TCP connection from this stack (stack.net's Socket). */
  connect(options: ConnectOptions | number, host?: string | (() => void), connectListener?: () => void): Socket {
    return connectOn(this.tcp, options, host, connectListener);
  }

  /** Alias of connect, as in Node's net. */
  createConnection(options: ConnectOptions | number, host?: string | (() => void), connectListener?: () => void): Socket {
    return this.connect(options, host, connectListener);
  }

  /**
   * An ICMP echo to an IPv4 address (as ping(8) sends): resolves with the round trip in ms,
   * rejects with ETIMEDOUT when no reply comes in timeoutMs (default 3000). It holds the
   * event loop while it waits, as a socket would.
   */
  async ping(address: string, options: { timeoutMs?: number; size?: number } = {}): Promise<number> {
    const dst = parseIpv4(address);
    if (dst === null) throw Object.assign(new TypeError(`ping: not an IPv4 address: ${address}`), { code: 'ERR_INVALID_IP_ADDRESS' });
    const owner = {};
    this.refHandle(owner);
    try {
      return await this.icmp.ping(dst, options);
    } finally {
      this.releaseHandle(owner);
    }
  }

  /** Node's net module, on this stack: createServer, connect, Socket, Server, isIP... */
  get net(): NetModule {
    this.netModule ??= createNetModule(this.tcp);
    return this.netModule;
  }

  /** An http.Agent whose connections go through this stack: http.get(url, { agent: stack.httpAgent() }). */
  httpAgent(options?: AgentOptions): Agent {
    return createHttpAgent(this.net, options);
  }

  /**
   * Keeps the process alive with the stack open even without ref'd sockets or servers (a
   * daemon that only answers ARP and ping); unref() undoes it. Off by default.
   */
  ref(): this {
    this.stackRef.set(true);
    return this;
  }

  unref(): this {
    this.stackRef.set(false);
    return this;
  }

  /**
   * Every TCP connection with its tcp_info, like `ss -tani`: listeners (LISTEN), connections
   * in any state, TIME-WAIT entries (src/tcp/connections.ts).
   */
  connections(): ConnectionEntry[] {
    return listConnections(this.tcp);
  }

  /** Counters of every layer: frames in and out and drops by reason (and the TAP's offloads). */
  counters(): Record<string, LayerCounts> {
    const out: Record<string, LayerCounts> = {};
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
    if (this.pcap) out.pcap = this.pcap.counters.toJSON();
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.dhcp?.stop();
    for (const m of [...this.modules.values()].reverse()) await m.close();
    this.ipv4.reassemblerIfMade?.close();
    this.arp.close();
    await this.link.close();
    this.loopHold.close();
  }
}

export async function createStack(options: StackOptions): Promise<Stack> {
  const parsed = parseStackOptions(options);
  const { mtu, host: hostCidr } = parsed;
  // Opened first: a bad capture path must not leave a TAP behind.
  const warn = options.onWarning ?? ((message: string) => process.emitWarning(message, 'TapstackWarning'));
  const pcap = options.pcap ? new PcapWriter(options.pcap, { maxBytes: options.pcapMaxBytes, onStop: warn }) : null;
  let link = options.link;
  let tap: TapDevice | null = null;
  if (!link) {
    if (!options.tap) throw new StackConfigError('createStack needs a tap device name or a link');
    try {
      tap = TapDevice.open({ name: options.tap, mtu, vnetHeader: options.vnetHeader, offload: options.offload ?? true, io: options.tapIo });
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
  const stack = new Stack({ ...options, link, mtu }, parsed, tap);
  stack.pcap = pcap;
  // A DHCP client has no address to announce yet: it announces the one it binds (RFC 5227 2.3).
  if (stack.dhcp) stack.dhcp.start();
  else stack.arp.announce();
  return stack;
}

export { TapError };
