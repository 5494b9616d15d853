// The options of createStack, and their parsing and validation: addresses, the gateway, the
// MTU and the MAC. Every error is a StackConfigError with a message that names the option.

import type { TapIo } from './tap/tap.ts';
import { createHash } from 'node:crypto';
import type { ArpOptions } from './arp/arp.ts';
import type { Clock } from './util/clock.ts';
import { type Cidr, formatIpv4, parseCidr, parseIpv4, sameSubnet } from './ipv4/address.ts';
import type { IcmpOptions } from './ipv4/icmp.ts';
import type { IgmpOptions } from './ipv4/igmp.ts';
import type { UdpLayerOptions } from './udp/udp.ts';
import type { ReassemblyOptions } from './ipv4/reassembly.ts';
import { type Mac, parseMac } from './link/ethernet.ts';
import type { Link } from './link/link.ts';
import type { PcapSink } from './link/pcap.ts';
import type { TcpConfig } from './tcp/config.ts';
import type { LookupFunction } from './tcp/lookup.ts';
import type { DhcpOptions } from './dhcp/client.ts';
import type { DnsOptions } from './dns/resolver.ts';

export interface StackOptions {
  /** A TAP device name to open (created if missing). Give either tap or link. */
  tap?: string;
  /** Any Link: an in-memory link, a fault injector, ... */
  link?: Link;
  /** Our address with prefix, e.g. "10.0.0.2/24". Omitted with dhcp: 0.0.0.0 until a lease binds. */
  ip?: string;
  /**
   * Get the address, gateway and name servers by DHCP (src/dhcp/client.ts); stack.dhcp holds
   * the lease. true, or options (requestAddress for INIT-REBOOT, hostName, arpProbe).
   */
  dhcp?: boolean | DhcpOptions;
  /**
   * The DNS stub resolver (stack.dns): servers (default the DHCP lease's), timeout,
   * attempts, cache size. With it or dhcp, connect({ host: name }) resolves through it.
   */
  dns?: DnsOptions;
  /** Address for the kernel's end of the TAP ("10.0.0.1/24"); omitted: left as it is. */
  hostIp?: string;
  /** Default gateway; defaults to hostIp's address when given. */
  gateway?: string;
  /** "02:..."; defaults to a stable locally administered address derived from ip and device. */
  mac?: string;
  mtu?: number;
  clock?: Clock;
  /** Write every frame in and out to this pcap file (or sink). A write error stops the capture, reported once. */
  pcap?: string | PcapSink;
  /** The capture stops before it grows past this many bytes (default: no limit). */
  pcapMaxBytes?: number;
  /** Told of what the stack reports once (a capture that stopped); default process.emitWarning. */
  onWarning?: (message: string) => void;
  /** Seed for everything random in the stack (ISNs, ports); unset: crypto-random. */
  seed?: number;
  arp?: ArpOptions;
  icmp?: IcmpOptions;
  /** IGMP: version (Linux force_igmp_version), robustness, report intervals, membership bounds. */
  igmp?: Omit<IgmpOptions, 'seed'>;
  /** UDP socket buffers (Linux rmem_default, rmem_max, wmem_default, wmem_max: 212992). */
  udp?: Omit<UdpLayerOptions, 'seed'>;
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
  /** How the TAP's frames are read (TapOptions.io; default 'stream'). */
  tapIo?: TapIo;
  /** TCP tunables (timers, buffers, retries); see src/tcp/config.ts for the defaults. */
  tcp?: Partial<TcpConfig>;
  /**
   * The resolver connect and listen use when given no `lookup` (Node's dns.lookup contract:
   * (hostname, { family, hints, all }, callback)). Default: IPv4 literals, and 'localhost'
   * as the stack's own address; any other name is ENOTFOUND.
   */
  lookup?: LookupFunction;
}

export class StackConfigError extends Error {
  readonly code = 'ERR_INVALID_ARG_VALUE';
}

/** The options of createStack, checked and parsed. */
export interface ParsedStackOptions {
  ip: number;
  prefix: number;
  /** The kernel's end of the TAP (hostIp), if given. */
  host: Cidr | null;
  gateway: number | null;
  mtu: number;
  mac: Mac;
}

/** A stable locally administered MAC (02:...) derived from a name, so restarts keep it. */
export function stableMac(seedText: string): Mac {
  const h = createHash('sha256').update(seedText).digest();
  const mac = Buffer.from(h.subarray(0, 6));
  mac[0] = (mac[0]! & 0xfc) | 0x02; // unicast, locally administered
  return mac;
}

/** Checks and parses the addresses, gateway, MTU and MAC; throws StackConfigError. */
export function parseStackOptions(options: StackOptions): ParsedStackOptions {
  const dhcp = options.dhcp !== undefined && options.dhcp !== false;
  if (dhcp && options.ip !== undefined) throw new StackConfigError('give ip or dhcp, not both (dhcp.requestAddress asks for an address)');
  if (!dhcp && options.ip === undefined) throw new StackConfigError('invalid ip: undefined (give ip, or dhcp: true)');
  if (dhcp && options.gateway !== undefined)
    throw new StackConfigError('the gateway comes from the DHCP lease: no gateway option with dhcp');
  // Without an address yet: 0.0.0.0/32, which only broadcasts reach (RFC 2131 4.1).
  const cidr = dhcp ? { addr: 0, prefix: 32 } : parseCidr(options.ip!, 24);
  if (!cidr) throw new StackConfigError(`invalid ip: ${options.ip}`);
  const hostCidr = options.hostIp !== undefined ? parseCidr(options.hostIp, dhcp ? 24 : cidr.prefix) : null;
  if (options.hostIp !== undefined && !hostCidr) throw new StackConfigError(`invalid hostIp: ${options.hostIp}`);
  let gateway: number | null = hostCidr && !dhcp ? hostCidr.addr : null;
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
  if (options.pcapMaxBytes !== undefined && !(Number.isSafeInteger(options.pcapMaxBytes) && options.pcapMaxBytes >= 24))
    throw new StackConfigError(`invalid pcapMaxBytes: ${options.pcapMaxBytes} (an integer >= 24)`);
  const mtu = options.mtu ?? options.link?.mtu ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535) throw new StackConfigError(`invalid mtu: ${mtu} (576..65535)`);
  let mac: Mac;
  if (options.mac !== undefined) {
    const m = parseMac(options.mac);
    if (!m || (m[0]! & 1) === 1) throw new StackConfigError(`invalid mac: ${options.mac}`);
    mac = m;
  } else {
    mac = stableMac(`tapstack:${options.tap ?? 'link'}:${options.ip ?? 'dhcp'}`);
  }
  return { ip: cidr.addr, prefix: cidr.prefix, host: hostCidr, gateway, mtu, mac };
}
