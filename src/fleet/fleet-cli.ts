// `tapstack fleet --count N (--ip A.B.C.D/P | --dhcp) ...`: N devices on one TAP, each with
// its own MAC and address and the services asked for. Prints `tapstack up fleet N devices`
// once every device has its address and services, and serves the fleet's status as JSON at
// http://FIRST-DEVICE/fleet (with http among the services). With --bridge the TAP is a port of
// a Linux bridge (fleets of several processes, or hosts joined by VXLAN, on one segment); with
// --reach the first devices then check that they reach a peer fleet (src/fleet/reach.ts).
// Runs until SIGINT or SIGTERM.

import { parseTapIo, TAP_IO_MODES, type TapIo } from '../tap/tap.ts';
import { formatIpv4, parseCidr, parseIpv4 } from '../ipv4/address.ts';
import { formatMac } from '../link/ethernet.ts';
import { availableServices, SERVICE_NAMES, type ServiceName } from '../services/index.ts';
import '../services/all.ts';
import { StackConfigError } from '../stack.ts';
import { createFleet, type Fleet } from './fleet.ts';
import { reachPeers, type ReachResult } from './reach.ts';

export const FLEET_USAGE = `usage: tapstack fleet --count N (--ip A.B.C.D/P | --dhcp) [options]
  --count N           devices (1..65536)
  --ip A.B.C.D/P      the first device's address; device i gets the i-th after it (the host's is skipped)
  --dhcp              every device gets its address by DHCP instead (a server on the host's side: dnsmasq)
  --dhcp-wait S       give up when not every device has a lease after S seconds (default 120)
  --name NAME         device names NAME-0, NAME-1, ... (default dev); MACs derive from them
  --services LIST     comma-separated: ${SERVICE_NAMES.join(', ')} (default: all available); http serves GET /fleet on the first device
  --tap NAME          TAP device (default tap0; created if missing)
  --host-ip A.B.C.D/P address for the kernel's end of the TAP (default 10.0.0.1 with --ip's prefix; /24 with --dhcp)
  --no-host-config    leave the kernel's end of the TAP as it is (a TAP made and bridged beforehand)
  --bridge BR         make the TAP a port of Linux bridge BR (no address on it; brought up)
  --reach A.B.C.D     once up, device i (i < --reach-count) sends to the echo service of the
                      i-th address from A.B.C.D and pings it, and prints what came back
  --reach-count N     how many devices reach out (default 10)
  --reach-wait S      how long a pair is tried, for peers still starting (default 30)
  --gateway A.B.C.D   the devices' default gateway (default: the host ip)
  --mtu N             (default 1500)
  --offload on|off    checksum and segmentation offloads on the TAP (default on)
  --tap-io MODE       how the TAP is read: ${TAP_IO_MODES.join(', ')} (default stream)
  --seed N            device i's randomness from N + i (default: crypto-random)
  --pcap FILE         capture every frame on the TAP
  -h, --help`;

class FleetUsageError extends Error {}

export interface FleetCliOptions {
  count: number;
  ip: string | undefined;
  dhcp: boolean;
  dhcpWaitMs: number;
  name: string;
  services: ServiceName[];
  tap: string;
  hostIp: string | null;
  bridge: string | undefined;
  reach: string | undefined;
  reachCount: number;
  reachWaitMs: number;
  gateway: string | undefined;
  mtu: number;
  offload: boolean;
  tapIo: TapIo;
  seed: number | undefined;
  pcap: string | undefined;
}

export function parseFleetArgs(argv: string[]): FleetCliOptions | 'help' {
  const o: FleetCliOptions = {
    count: 0,
    ip: undefined,
    dhcp: false,
    dhcpWaitMs: 120_000,
    name: 'dev',
    services: availableServices(),
    tap: 'tap0',
    hostIp: '',
    bridge: undefined,
    reach: undefined,
    reachCount: 10,
    reachWaitMs: 30_000,
    gateway: undefined,
    mtu: 1500,
    offload: true,
    tapIo: 'stream',
    seed: undefined,
    pcap: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new FleetUsageError(`${flag} needs a value`);
      return v;
    };
    const integer = (min: number, max: number): number => {
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < min || n > max) throw new FleetUsageError(`${flag}: invalid value '${v}' (${min}..${max})`);
      return n;
    };
    const deviceName = (): string => {
      const v = value();
      // IFNAMSIZ: 15 characters and the NUL.
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(v)) throw new FleetUsageError(`${flag}: invalid device name '${v}'`);
      return v;
    };
    const cidr = (): string => {
      const v = value();
      if (!parseCidr(v, 24)) throw new FleetUsageError(`${flag}: invalid address '${v}' (expected A.B.C.D/P)`);
      return v;
    };
    switch (flag) {
      case '-h':
      case '--help':
        return 'help';
      case '--count':
        o.count = integer(1, 65536);
        break;
      case '--ip':
        o.ip = cidr();
        break;
      case '--dhcp':
        o.dhcp = true;
        break;
      case '--dhcp-wait':
        o.dhcpWaitMs = integer(1, 86400) * 1000;
        break;
      case '--name': {
        const v = value();
        if (!/^[A-Za-z0-9_.-]{1,40}$/.test(v)) throw new FleetUsageError(`--name: invalid name '${v}'`);
        o.name = v;
        break;
      }
      case '--services': {
        const v = value();
        const names = v === '' || v === 'none' ? [] : v.split(',').map((s) => s.trim());
        for (const n of names)
          if (!availableServices().includes(n as ServiceName)) throw new FleetUsageError(`--services: unknown service '${n}' (known: ${availableServices().join(', ')})`);
        o.services = names as ServiceName[];
        break;
      }
      case '--tap':
        o.tap = deviceName();
        break;
      case '--host-ip':
        o.hostIp = cidr();
        break;
      case '--no-host-config':
        o.hostIp = null;
        break;
      case '--bridge':
        o.bridge = deviceName();
        break;
      case '--reach': {
        const v = value();
        if (parseIpv4(v) === null) throw new FleetUsageError(`--reach: invalid address '${v}'`);
        o.reach = v;
        break;
      }
      case '--reach-count':
        o.reachCount = integer(1, 1000);
        break;
      case '--reach-wait':
        o.reachWaitMs = integer(1, 3600) * 1000;
        break;
      case '--gateway':
        o.gateway = value();
        break;
      case '--mtu':
        o.mtu = integer(576, 65535);
        break;
      case '--offload': {
        const v = value();
        if (v !== 'on' && v !== 'off') throw new FleetUsageError(`--offload: expected on or off, not '${v}'`);
        o.offload = v === 'on';
        break;
      }
      case '--tap-io':
        o.tapIo = parseTapIo(value(), (m) => new FleetUsageError(m));
        break;
      case '--seed':
        o.seed = integer(0, 2 ** 31);
        break;
      case '--pcap':
        o.pcap = value();
        break;
      default:
        throw new FleetUsageError(`unknown argument '${arg}'`);
    }
  }
  if (o.count === 0) throw new FleetUsageError('--count is required');
  if ((o.ip === undefined) === !o.dhcp) throw new FleetUsageError('give --ip or --dhcp (one of them)');
  if (o.dhcp && o.gateway !== undefined) throw new FleetUsageError('--gateway and --dhcp: the gateway comes from the lease');
  if (o.bridge !== undefined && o.hostIp !== '' && o.hostIp !== null) throw new FleetUsageError('--bridge and --host-ip: a bridge port has no address (put one on the bridge)');
  if (o.bridge !== undefined) o.hostIp = null;
  if (o.reach !== undefined && o.reachCount > o.count) throw new FleetUsageError(`--reach-count ${o.reachCount} is more than --count ${o.count}`);
  // The host's end shares the devices' network: 10.0.0.1 with the range's prefix.
  if (o.hostIp === '') o.hostIp = `10.0.0.1/${o.ip !== undefined ? parseCidr(o.ip, 24)!.prefix : 24}`;
  return o;
}

export async function runFleetCli(argv: string[]): Promise<number> {
  let o: FleetCliOptions | 'help';
  try {
    o = parseFleetArgs(argv);
  } catch (err) {
    if (!(err instanceof FleetUsageError)) throw err;
    process.stderr.write(`tapstack fleet: ${err.message}\n`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(FLEET_USAGE + '\n');
    return 0;
  }
  const started = performance.now();
  let fleet: Fleet;
  try {
    fleet = await createFleet({
      count: o.count,
      tap: o.tap,
      ip: o.ip,
      dhcp: o.dhcp,
      name: o.name,
      hostIp: o.hostIp ?? undefined,
      bridge: o.bridge,
      gateway: o.gateway,
      services: o.services,
      mtu: o.mtu,
      offload: o.offload,
      tapIo: o.tapIo,
      seed: o.seed,
      pcap: o.pcap,
      stack: { onWarning: (m) => process.stderr.write(`tapstack fleet: ${m}\n`) },
    });
  } catch (err) {
    process.stderr.write(`tapstack fleet: ${(err as Error).message}\n`);
    // A bad option is a usage error (2); a TAP that cannot be opened or configured, 1.
    return err instanceof StackConfigError ? 2 : 1;
  }
  fleet.segment.onOwnMac = (mac) =>
    process.stderr.write(`tapstack fleet: a frame from the link has ${formatMac(mac)}, a MAC of ours, as its source: another host uses it (a fleet with the same --name on this bridge?); such frames are dropped\n`);
  // The daemon runs until a signal.
  fleet.devices[0]!.stack.ref();
  try {
    await fleet.ready(o.dhcpWaitMs);
  } catch (err) {
    process.stderr.write(`tapstack fleet: ${(err as Error).message}\n`);
    await fleet.close();
    return 1;
  }
  const first = fleet.devices[0]!;
  const last = fleet.devices[fleet.size - 1]!;
  process.stdout.write(
    `tapstack up fleet ${fleet.size} devices dev ${o.tap} first ${first.name} ${first.address} last ${last.name} ${last.address} services ${o.services.join(',') || 'none'} in ${Math.round(performance.now() - started)} ms\n`,
  );
  if (o.services.includes('http')) process.stdout.write(`tapstack fleet status http://${first.address}/fleet\n`);
  if (o.reach !== undefined) void reportReach(fleet, o.reach, o.reachCount, o.reachWaitMs);
  return new Promise<number>((resolve) => {
    let closing = false;
    const shutdown = async (): Promise<void> => {
      if (closing) return;
      closing = true;
      await fleet.close();
      resolve(0);
    };
    process.on('SIGINT', () => void shutdown());
    process.on('SIGTERM', () => void shutdown());
  });
}

/** Runs --reach and prints a line a pair, then the summary line (`tapstack fleet reach N/M ...`). */
async function reportReach(fleet: Fleet, first: string, count: number, deadlineMs: number): Promise<void> {
  const start = parseIpv4(first)!;
  const targets = Array.from({ length: count }, (_, i) => formatIpv4((start + i) >>> 0));
  const started = performance.now();
  const results: ReachResult[] = await reachPeers(fleet, targets, { deadlineMs });
  const ms = (v: number | null): string => (v === null ? '-' : v.toFixed(1));
  for (const r of results)
    process.stdout.write(
      `tapstack fleet reach ${r.from} ${r.fromAddress} -> ${r.to} echo ${ms(r.echoMs)} ms ping ${ms(r.pingMs)} ms attempts ${r.attempts}${r.error !== null ? ` error ${r.error}` : ''}\n`,
    );
  const ok = results.filter((r) => r.echoMs !== null && r.pingMs !== null).length;
  const pings = results.map((r) => r.pingMs).filter((v): v is number => v !== null);
  const avg = pings.length > 0 ? pings.reduce((a, b) => a + b, 0) / pings.length : null;
  process.stdout.write(
    `tapstack fleet reach ${ok}/${results.length} ok, ping min/avg/max ${ms(pings.length > 0 ? Math.min(...pings) : null)}/${ms(avg)}/${ms(pings.length > 0 ? Math.max(...pings) : null)} ms, in ${Math.round(performance.now() - started)} ms\n`,
  );
}
