// Devices and fleets: many stacks, each with its own MAC and address, on one Ethernet segment
// (src/fleet/segment.ts) over one link, a TAP or any Link. The host's kernel sees one
// neighbour per device behind the TAP. A device is a Stack with a name, the services it runs
// and its segment port; a fleet makes them from a range of addresses or DHCP, with MACs
// derived from their names (stable across restarts, as stableMac), and reports their status.

import { formatIpv4, parseCidr, prefixMask } from '../ipv4/address.ts';
import type { Link } from '../link/link.ts';
import { CapturingLink, type PcapSink, PcapWriter } from '../link/pcap.ts';
import '../services/all.ts';
import { addJsonRoute } from '../services/http.ts';
import { type ServiceName, type ServiceOptions, type ServiceSet, startServiceSet } from '../services/index.ts';
import { createStack, type Stack, StackConfigError, stableMac, type StackOptions } from '../stack.ts';
import { formatMac } from '../link/ethernet.ts';
import { configureHostSide, joinBridge, TapDevice, type TapIo } from '../tap/tap.ts';
import { type Clock, HeapClock } from '../util/clock.ts';
import { Segment, type SegmentCounters } from './segment.ts';
import type { DhcpOptions } from '../dhcp/client.ts';

/** What a device is made with beyond the stack's own options. */
export interface DeviceOptions extends Omit<StackOptions, 'link' | 'tap' | 'mac' | 'hostIp' | 'pcap' | 'pcapMaxBytes'> {
  /** The device's name (its MAC derives from it unless mac is given). */
  name: string;
  /** "02:..."; default stableMac(`tapstack-device:${name}`). */
  mac?: string;
  /** Services to run: echo, discard, chargen, http (default none). */
  services?: readonly ServiceName[];
  serviceOptions?: ServiceOptions;
}

export interface DeviceStatus {
  name: string;
  mac: string;
  /** Its address with prefix, or null before a DHCP lease binds. */
  ip: string | null;
  /** 'static', or the DHCP client's state. */
  dhcp: string;
  /** Frames in and out at Ethernet, and TCP connections open. */
  rx: number;
  tx: number;
  connections: number;
}

export class Device {
  private services: ServiceSet | null = null;
  private closed = false;

  constructor(
    readonly name: string,
    readonly index: number,
    readonly stack: Stack,
  ) {}

  /** @internal */
  async startServices(names: readonly ServiceName[], options: ServiceOptions): Promise<void> {
    this.services = names.length > 0 ? await startServiceSet(this.stack, names, options) : null;
  }

  get address(): string | null {
    return this.stack.ip === 0 ? null : this.stack.address;
  }

  get mac(): string {
    return this.stack.macAddress;
  }

  status(): DeviceStatus {
    const s = this.stack;
    return {
      name: this.name,
      mac: s.macAddress,
      ip: s.ip === 0 ? null : `${s.address}/${s.prefix}`,
      dhcp: s.dhcp?.state ?? 'static',
      rx: s.ethCounters.rx,
      tx: s.ethCounters.tx,
      connections: s.tcp.size,
    };
  }

  /** Stops its services and closes its stack: every socket, timer and buffer it held. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.services?.stop();
    this.services = null;
    // A DHCP lease is given back (RFC 2131 4.4.6), as a device shut down cleanly does.
    this.stack.dhcp?.release();
    // Closing the stack closes its link: a segment port leaves the segment.
    await this.stack.close();
  }
}

/** One device on a link (of its own, or a segment's port): a stack with its name's MAC, its services started. */
export async function createDevice(options: DeviceOptions & { link: Link; index?: number }): Promise<Device> {
  const { name, services = [], serviceOptions = {}, index = 0, ...stackOptions } = options;
  const mac = options.mac ?? formatMac(stableMac(`tapstack-device:${name}`));
  const stack = await createStack({ ...stackOptions, mac });
  const device = new Device(name, index, stack);
  await device.startServices(services, serviceOptions);
  return device;
}

export interface FleetOptions {
  count: number;
  /** A TAP to open (created if missing), or any Link; one of the two. */
  tap?: string;
  link?: Link;
  /** The first device's address with prefix ("10.0.1.1/16"); device i gets the i-th after it. */
  ip?: string;
  /** Every device asks for its address by DHCP (src/dhcp/client.ts) instead; options as StackOptions.dhcp. */
  dhcp?: boolean | DhcpOptions;
  /** Static addresses only: the devices' default gateway (default: hostIp's address). */
  gateway?: string;
  /** The kernel's end of the TAP ("10.0.0.1/16"): set and brought up; skipped in the range. */
  hostIp?: string;
  /** A Linux bridge to make the TAP a port of (no address on it, brought up); not with hostIp. */
  bridge?: string;
  /** Names are `${name}-${i}` (default 'dev'); MACs derive from them, so fleets on one bridge need their own names. */
  name?: string;
  services?: readonly ServiceName[];
  serviceOptions?: ServiceOptions;
  /** Seed of device i's randomness is seed + i (ISNs, ports, DHCP's xid): one seed, the same frames. */
  seed?: number;
  clock?: Clock;
  mtu?: number;
  offload?: boolean;
  /** How the TAP's frames are read (TapOptions.io). */
  tapIo?: TapIo;
  /** Capture every frame on the fleet's link. */
  pcap?: string | PcapSink;
  /** Options every device's stack gets (TCP tunables, DNS, ...). */
  stack?: Omit<StackOptions, 'link' | 'tap' | 'ip' | 'dhcp' | 'mac' | 'hostIp' | 'gateway' | 'seed' | 'clock' | 'pcap'>;
  /** Runs for each device once it is made (before the next is). */
  setup?: (device: Device, index: number) => void | Promise<void>;
}

export interface FleetStatus {
  devices: number;
  /** Devices with an address (all static ones; DHCP ones once bound). */
  addressed: number;
  /** DHCP devices by client state. */
  dhcp: Record<string, number>;
  segment: SegmentCounters;
  /** Sums over the devices: Ethernet frames in and out, TCP connections open. */
  rx: number;
  tx: number;
  connections: number;
  process: { rssBytes: number; heapUsedBytes: number };
  list?: DeviceStatus[];
}

export class Fleet {
  readonly devices: Device[] = [];
  private closed = false;

  constructor(
    readonly segment: Segment,
    private readonly link: Link,
    readonly clock: Clock,
  ) {}

  get size(): number {
    return this.devices.length;
  }

  device(name: string): Device | undefined {
    return this.devices.find((d) => d.name === name);
  }

  /**
   * Resolves once every device has an address (static ones at once); rejects after timeoutMs
   * of the fleet's clock, naming how many are still without one.
   */
  ready(timeoutMs = 60_000): Promise<void> {
    const waiting = (): number => this.devices.filter((d) => d.stack.ip === 0).length;
    return new Promise((resolve, reject) => {
      if (waiting() === 0) return resolve();
      let left = waiting();
      const timer = this.clock.setTimer(timeoutMs, () => {
        for (const [d, f] of hooks) d.stack.dhcp?.off('bound', f);
        reject(Object.assign(new Error(`${waiting()} of ${this.devices.length} devices have no address after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      });
      const hooks: [Device, () => void][] = [];
      for (const d of this.devices) {
        if (d.stack.ip !== 0 || d.stack.dhcp === null) continue;
        const f = (): void => {
          d.stack.dhcp?.off('bound', f);
          if (--left === 0) {
            timer.cancel();
            resolve();
          }
        };
        hooks.push([d, f]);
        d.stack.dhcp.on('bound', f);
      }
    });
  }

  /** The fleet's figures, and with `list` each device's (the first `limit` from `offset`). */
  status(options: { list?: boolean; offset?: number; limit?: number } = {}): FleetStatus {
    const dhcp: Record<string, number> = {};
    let addressed = 0;
    let rx = 0;
    let tx = 0;
    let connections = 0;
    for (const d of this.devices) {
      const s = d.stack;
      if (s.ip !== 0) addressed++;
      if (s.dhcp !== null) dhcp[s.dhcp.state] = (dhcp[s.dhcp.state] ?? 0) + 1;
      rx += s.ethCounters.rx;
      tx += s.ethCounters.tx;
      connections += s.tcp.size;
    }
    const memory = process.memoryUsage();
    const out: FleetStatus = {
      devices: this.devices.length,
      addressed,
      dhcp,
      segment: { ...this.segment.counters },
      rx,
      tx,
      connections,
      process: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
    };
    if (options.list) {
      const from = options.offset ?? 0;
      out.list = this.devices.slice(from, from + (options.limit ?? this.devices.length)).map((d) => d.status());
    }
    return out;
  }

  /** Takes a device out of the fleet and frees all it held. */
  async remove(device: Device): Promise<void> {
    const i = this.devices.indexOf(device);
    if (i < 0) return;
    this.devices.splice(i, 1);
    await device.close();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.devices.splice(0).reverse()) await d.close();
    await this.link.close();
  }
}

/** The i-th address of a static range, skipping the network's and broadcast addresses and the host's. */
function rangeAddresses(ip: string, count: number, skip: number | null): number[] {
  const cidr = parseCidr(ip, 24);
  if (!cidr) throw new StackConfigError(`invalid ip: ${ip} (expected A.B.C.D/N)`);
  const mask = prefixMask(cidr.prefix);
  const network = (cidr.addr & mask) >>> 0;
  const broadcast = (network | ~mask) >>> 0;
  const out: number[] = [];
  for (let a = cidr.addr; out.length < count; a++) {
    if (a >= broadcast || a > 0xffffffff) throw new StackConfigError(`ip: ${count} devices from ${ip} do not fit in /${cidr.prefix}`);
    if (a !== network && a !== skip) out.push(a);
  }
  return out;
}

/**
 * A fleet of `count` devices on one segment over a TAP or a link. Static addresses come from
 * the `ip` range; with `dhcp`, every device runs a DHCP client (wait with fleet.ready()).
 */
export async function createFleet(options: FleetOptions): Promise<Fleet> {
  const { count } = options;
  if (!Number.isSafeInteger(count) || count < 1) throw new StackConfigError(`invalid count: ${count} (an integer >= 1)`);
  if ((options.tap === undefined) === (options.link === undefined)) throw new StackConfigError('give tap or link');
  if ((options.ip === undefined) === !options.dhcp) throw new StackConfigError('give ip (a range start) or dhcp: true');
  if (options.dhcp && options.gateway !== undefined) throw new StackConfigError('the gateway comes from the DHCP lease: no gateway option with dhcp');
  const host = options.hostIp !== undefined ? parseCidr(options.hostIp, 24) : null;
  if (options.hostIp !== undefined && host === null) throw new StackConfigError(`invalid hostIp: ${options.hostIp}`);
  if (options.bridge !== undefined && (options.hostIp !== undefined || options.tap === undefined)) throw new StackConfigError('bridge: a TAP of the fleet\'s, with no hostIp');
  const addresses = options.ip !== undefined ? rangeAddresses(options.ip, count, host?.addr ?? null) : null;
  const prefix = options.ip !== undefined ? parseCidr(options.ip, 24)!.prefix : 0;
  const gateway = options.gateway ?? (host !== null && !options.dhcp ? formatIpv4(host.addr) : undefined);
  const clock = options.clock ?? new HeapClock();
  const base = options.name ?? 'dev';
  if (!/^[A-Za-z0-9_.-]{1,40}$/.test(base)) throw new StackConfigError(`invalid name: ${base}`);

  let link: Link;
  if (options.tap !== undefined) {
    const tap = TapDevice.open({ name: options.tap, mtu: options.mtu, offload: options.offload ?? true, io: options.tapIo });
    try {
      if (options.bridge !== undefined) joinBridge(options.tap, options.bridge, options.mtu ?? 1500, options.stack?.onWarning);
      else if (options.hostIp !== undefined) configureHostSide(options.tap, `${formatIpv4(host!.addr)}/${host!.prefix}`, options.mtu ?? 1500);
    } catch (err) {
      await tap.close();
      throw err;
    }
    // The devices' sockets hold the event loop, not the TAP's reader (as a single stack's).
    tap.unref();
    link = tap;
  } else link = options.link!;
  if (options.pcap !== undefined) link = new CapturingLink(link, new PcapWriter(options.pcap));
  const segment = new Segment(link, clock);
  const fleet = new Fleet(segment, link, clock);
  try {
    for (let i = 0; i < count; i++) {
      const name = `${base}-${i}`;
      const mac = stableMac(`tapstack-device:${name}`);
      if (segment.has(mac)) throw new StackConfigError(`two devices with MAC ${formatMac(mac)}`);
      const port = segment.attach(mac);
      const device = await createDevice({
        ...options.stack,
        name,
        index: i,
        link: port,
        mac: formatMac(mac),
        ip: addresses !== null ? `${formatIpv4(addresses[i]!)}/${prefix}` : undefined,
        dhcp: options.dhcp || undefined,
        gateway,
        mtu: options.mtu,
        clock,
        seed: options.seed !== undefined ? options.seed + i : undefined,
        services: options.services,
        serviceOptions: options.serviceOptions,
      });
      fleet.devices.push(device);
      await options.setup?.(device, i);
    }
  } catch (err) {
    await fleet.close();
    throw err;
  }
  // GET /fleet on the first device: the figures; ?list=1[&offset=N&limit=N] adds the devices.
  if (options.services?.includes('http')) {
    addJsonRoute(fleet.devices[0]!.stack, '/fleet', (q) =>
      fleet.status({ list: q.has('list'), offset: Number(q.get('offset') ?? 0) || 0, limit: q.has('limit') ? Number(q.get('limit')) || 0 : undefined }),
    );
  }
  return fleet;
}
