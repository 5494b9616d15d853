#!/usr/bin/env node
// The tapstack command line: bring a stack up on a TAP device and run services on it.

import { createWriteStream, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseCidr, parseIpv4 } from './ipv4/address.ts';
import { parseMac } from './link/ethernet.ts';
import { availableServices, SERVICE_NAMES, type ServiceName, startServices } from './services/index.ts';
import './services/all.ts';
import { createStack, type Stack, StackConfigError, TapError } from './stack.ts';
import type { CongestionName } from './tcp/congestion/congestion.ts';
import { mallopt } from './tap/ffi.ts';
import { parseTapIo, TAP_IO_MODES, type TapIo } from './tap/tap.ts';
import { runPlot } from './teach/plot-cli.ts';
import { runShow } from './trace/show-cli.ts';
import { runDrill } from './drill/drill-cli.ts';
import { runFuzzCli } from './fuzz/fuzz-cli.ts';
import { runFleetCli } from './fleet/fleet-cli.ts';
import { compileFilter } from './trace/filter.js';
import type { Trace } from './trace/tracer.ts';
import type { DhcpLease } from './dhcp/client.ts';

const USAGE = `usage: tapstack [options]
  --tap NAME          TAP device (default tap0; created if missing, removed on exit only if created)
  --ip A.B.C.D/N      the stack's address (default 10.0.0.2/24)
  --dhcp              get the address, gateway and DNS servers by DHCP instead; prints a lease line when bound
  --dns A.B.C.D[,...] name servers for connect by name (default: the DHCP lease's)
  --host-ip A.B.C.D/N address for the kernel's end of the TAP, which is brought up (default 10.0.0.1/24)
  --no-host-config    leave the kernel's end of the TAP as it is
  --gateway A.B.C.D   default gateway (default: the host ip)
  --mac XX:XX:XX:XX:XX:XX  (default: a stable locally administered address)
  --mtu N             (default 1500)
  --services LIST     comma-separated: ${SERVICE_NAMES.join(', ')} (default: all available)
  --pcap FILE         capture every frame in and out
  --pcap-max-bytes N  stop the capture before the file grows past N bytes (default: no limit)
  --http-headers-timeout MS     cut off an HTTP client whose request headers take longer (default 60000)
  --http-request-timeout MS     cut off an HTTP client whose whole request takes longer (default 300000; 0: none)
  --http-keep-alive-timeout MS  close an idle keep-alive HTTP connection after MS (default 5000)
  --offload on|off    checksum and TCP segmentation offloads on the TAP (default on where supported)
  --congestion NAME   TCP congestion control: cubic (default, as Linux), newreno or bbr (as Linux's tcp_bbr)
  --tap-io MODE       how the TAP is read: ${TAP_IO_MODES.join(', ')} (default stream; see README, TAP I/O)
  --chargen-bytes N   chargen sends N bytes, then closes (default: until the peer closes)
  --stats-on-exit     print the counters as JSON when closing
  --trace [FILTER]    print every frame in and out and the stack's events (state changes, retransmissions,
                      cwnd, RTT, probes, ARP, ICMP errors, drops); FILTER as tcpdump's: 'tcp port 7',
                      'host 10.0.0.1 and not arp', ... (the next argument unless it starts with '-', or --trace=FILTER)
  --trace-format text|json  tcpdump-like lines (default) or one JSON record per line
  --trace-file FILE   write the trace to FILE instead of stdout
  -h, --help
  or: tapstack plot TRACE.jsonl [--conn ADDR:PORT] [-o FILE.svg]   draw a saved trace as SVG (plot --help)
  or: tapstack show TRACE.jsonl [FILTER]   print a saved trace as text, filtered (show --help)
  or: tapstack drill [--target stack|kernel] [--tolerance-usecs N] [--strict-segments] FILE...   run packetdrill scripts (drill --help)
  or: tapstack fuzz [--target stack|kernel|both] [--seed N] [--runs N] [--out DIR]   stateful TCP fuzzing, failures shrunk to scripts (fuzz --help)
  or: tapstack fleet --count N (--ip A.B.C.D/P | --dhcp) [--services LIST] [--tap NAME]   many devices on one TAP (fleet --help)`;

export interface CliOptions {
  tap: string;
  ip: string;
  /** --dhcp: no fixed address (ip is then unused). */
  dhcp: boolean;
  /** --dns: name servers, or undefined. */
  dns: string[] | undefined;
  hostIp: string | null;
  gateway: string | undefined;
  mac: string | undefined;
  mtu: number;
  services: ServiceName[];
  pcap: string | undefined;
  pcapMaxBytes: number | undefined;
  /** HTTP service timeouts in ms (Node's http.Server headersTimeout, requestTimeout, keepAliveTimeout). */
  httpHeadersTimeout: number | undefined;
  httpRequestTimeout: number | undefined;
  httpKeepAliveTimeout: number | undefined;
  statsOnExit: boolean;
  offload: boolean;
  tapIo: TapIo;
  /** TCP's congestion control (Linux's net.ipv4.tcp_congestion_control). */
  congestion: CongestionName;
  chargenBytes: number | undefined;
  /** The trace's filter ('' for everything), or null without --trace. */
  trace: string | null;
  traceFormat: 'text' | 'json';
  traceFile: string | undefined;
}

export class UsageError extends Error {}

export function parseArgs(argv: string[]): CliOptions | 'help' {
  const o: CliOptions = {
    tap: 'tap0',
    ip: '10.0.0.2/24',
    dhcp: false,
    dns: undefined,
    hostIp: '10.0.0.1/24',
    gateway: undefined,
    mac: undefined,
    mtu: 1500,
    services: availableServices(),
    pcap: undefined,
    pcapMaxBytes: undefined,
    httpHeadersTimeout: undefined,
    httpRequestTimeout: undefined,
    httpKeepAliveTimeout: undefined,
    statsOnExit: false,
    offload: true,
    tapIo: 'stream',
    congestion: 'cubic',
    chargenBytes: undefined,
    trace: null,
    traceFormat: 'text',
    traceFile: undefined,
  };
  let ipGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    /** A count (bytes, ms) from min up. */
    const count = (min: number): number => {
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag}: invalid value '${v}' (an integer >= ${min})`);
      return n;
    };
    const noValue = (): void => {
      if (inline !== undefined) throw new UsageError(`${flag} takes no value`);
    };
    switch (flag) {
      case '-h':
      case '--help':
        noValue();
        return 'help';
      case '--tap': {
        const v = value();
        if (!/^[A-Za-z0-9_.-]{1,15}$/.test(v)) throw new UsageError(`--tap: invalid device name '${v}'`);
        o.tap = v;
        break;
      }
      case '--ip': {
        const v = value();
        if (!parseCidr(v, 24)) throw new UsageError(`--ip: invalid address '${v}' (expected A.B.C.D/N)`);
        o.ip = v.includes('/') ? v : `${v}/24`;
        ipGiven = true;
        break;
      }
      case '--dhcp':
        noValue();
        o.dhcp = true;
        break;
      case '--dns': {
        const v = value();
        const servers = v.split(',');
        for (const a of servers) if (parseIpv4(a) === null) throw new UsageError(`--dns: invalid address '${a}'`);
        o.dns = servers;
        break;
      }
      case '--host-ip': {
        const v = value();
        if (!parseCidr(v, 24)) throw new UsageError(`--host-ip: invalid address '${v}' (expected A.B.C.D/N)`);
        o.hostIp = v.includes('/') ? v : `${v}/24`;
        break;
      }
      case '--no-host-config':
        noValue();
        o.hostIp = null;
        break;
      case '--gateway': {
        const v = value();
        if (parseIpv4(v) === null) throw new UsageError(`--gateway: invalid address '${v}'`);
        o.gateway = v;
        break;
      }
      case '--mac': {
        const v = value();
        const m = parseMac(v);
        if (!m || (m[0]! & 1) === 1) throw new UsageError(`--mac: invalid unicast MAC '${v}'`);
        o.mac = v;
        break;
      }
      case '--mtu': {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 576 || n > 65535) throw new UsageError(`--mtu: invalid value '${v}' (576..65535)`);
        o.mtu = n;
        break;
      }
      case '--services': {
        const v = value();
        const names = v === '' || v === 'none' ? [] : v.split(',').map((s) => s.trim());
        const out: ServiceName[] = [];
        for (const n of names) {
          if (!(SERVICE_NAMES as readonly string[]).includes(n)) throw new UsageError(`--services: unknown service '${n}' (known: ${SERVICE_NAMES.join(', ')})`);
          if (!availableServices().includes(n as ServiceName)) throw new UsageError(`--services: '${n}' is not implemented yet (available: ${availableServices().join(', ') || 'none'})`);
          out.push(n as ServiceName);
        }
        o.services = out;
        break;
      }
      case '--pcap':
        o.pcap = value();
        break;
      case '--pcap-max-bytes':
        o.pcapMaxBytes = count(24); // room for the file header at least
        break;
      case '--http-headers-timeout':
        o.httpHeadersTimeout = count(1);
        break;
      case '--http-request-timeout':
        o.httpRequestTimeout = count(0);
        break;
      case '--http-keep-alive-timeout':
        o.httpKeepAliveTimeout = count(1);
        break;
      case '--stats-on-exit':
        noValue();
        o.statsOnExit = true;
        break;
      case '--chargen-bytes': {
        const v = value();
        if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new UsageError(`--chargen-bytes: invalid byte count '${v}'`);
        o.chargenBytes = Number(v);
        break;
      }
      case '--trace': {
        // The filter is optional: the next argument, unless it is the next option.
        const next = argv[i + 1];
        const filter = inline ?? (next !== undefined && !next.startsWith('-') ? argv[++i]! : '');
        if (filter.trim() !== '') {
          try {
            compileFilter(filter);
          } catch (err) {
            throw new UsageError(`--trace: ${(err as Error).message}`);
          }
        }
        o.trace = filter;
        break;
      }
      case '--trace-format': {
        const v = value();
        if (v !== 'text' && v !== 'json') throw new UsageError(`--trace-format: expected text or json, not '${v}'`);
        o.traceFormat = v;
        o.trace ??= '';
        break;
      }
      case '--trace-file':
        o.traceFile = value();
        o.trace ??= '';
        break;
      case '--offload': {
        const v = value();
        if (v !== 'on' && v !== 'off') throw new UsageError(`--offload: expected on or off, not '${v}'`);
        o.offload = v === 'on';
        break;
      }
      case '--tap-io':
        o.tapIo = parseTapIo(value(), (m) => new UsageError(m));
        break;
      case '--congestion': {
        const v = value();
        if (v !== 'cubic' && v !== 'newreno' && v !== 'bbr') throw new UsageError(`--congestion: expected cubic, newreno or bbr, not '${v}'`);
        o.congestion = v;
        break;
      }
      default:
        throw new UsageError(`unknown argument '${arg}'`);
    }
  }
  if (o.dhcp && ipGiven) throw new UsageError('--ip and --dhcp: give one');
  if (o.dhcp && o.gateway !== undefined) throw new UsageError('--gateway and --dhcp: the gateway comes from the lease');
  return o;
}

async function main(): Promise<number> {
  if (process.argv[2] === 'plot') return runPlot(process.argv.slice(3));
  if (process.argv[2] === 'show') return runShow(process.argv.slice(3));
  if (process.argv[2] === 'drill') return runDrill(process.argv.slice(3));
  if (process.argv[2] === 'fuzz') return runFuzzCli(process.argv.slice(3));
  if (process.argv[2] === 'fleet') return runFleetCli(process.argv.slice(3));
  let options: CliOptions | 'help';
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tapstack: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (options === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const opts = options;
  let stack: Stack;
  try {
    stack = await createStack({
      tap: options.tap,
      ip: options.dhcp ? undefined : options.ip,
      dhcp: options.dhcp,
      dns: options.dns ? { servers: options.dns } : undefined,
      hostIp: options.hostIp ?? undefined,
      gateway: options.gateway,
      mac: options.mac,
      mtu: options.mtu,
      pcap: options.pcap,
      pcapMaxBytes: options.pcapMaxBytes,
      onWarning: (message) => process.stderr.write(`tapstack: ${message}\n`),
      offload: options.offload,
      tapIo: options.tapIo,
      tcp: { congestion: options.congestion },
    });
  } catch (err) {
    if (err instanceof TapError || err instanceof StackConfigError) {
      process.stderr.write(`tapstack: ${err.message}\n`);
      return err instanceof StackConfigError ? 2 : 1;
    }
    process.stderr.write(`tapstack: ${(err as Error).message}\n`);
    return 1;
  }
  // The daemon runs until a signal, with or without services (the stack alone holds no loop).
  stack.ref();
  const stopServices = await startServices(stack, options.services, {
    chargenBytes: options.chargenBytes,
    http: { headersTimeoutMs: options.httpHeadersTimeout, requestTimeoutMs: options.httpRequestTimeout, keepAliveTimeoutMs: options.httpKeepAliveTimeout },
  });
  process.stdout.write(
    `tapstack up dev ${options.tap} ip ${options.dhcp ? 'dhcp' : options.ip} mac ${stack.macAddress} mtu ${stack.mtu} services ${options.services.join(',') || 'none'} offload ${stack.offload ? 'on' : 'off'}${options.tapIo !== 'stream' ? ` io ${options.tapIo}` : ''}\n`,
  );
  const trace = startCliTrace(stack, options);
  if (stack.dhcp) reportLease(stack);
  return new Promise<number>((resolve) => {
    let closing = false;
    const shutdown = async (): Promise<void> => {
      if (closing) return;
      closing = true;
      await stopServices();
      // Before the counters, so that they stay the last line on stdout.
      await trace?.stop();
      if (opts.statsOnExit) process.stdout.write(JSON.stringify(stack.counters()) + '\n');
      await stack.close();
      resolve(0);
    };
    process.on('SIGINT', () => void shutdown());
    process.on('SIGTERM', () => void shutdown());
  });
}

/** --dhcp: a line per lease bound or renewed on stdout; the rest of the client's news on stderr. */
function reportLease(stack: Stack): void {
  const dhcp = stack.dhcp!;
  const line = (what: string, l: DhcpLease): string =>
    `tapstack ${what} ip ${l.address}/${l.prefix} gateway ${l.gateway ?? 'none'} dns ${l.dnsServers.join(',') || 'none'} server ${l.serverId} lease ${l.leaseTime}s\n`;
  dhcp.on('bound', (l: DhcpLease) => process.stdout.write(line('lease', l)));
  dhcp.on('renewed', (l: DhcpLease) => process.stdout.write(line('renewed', l)));
  dhcp.on('expired', (l: DhcpLease) => process.stderr.write(`tapstack: dhcp: lease of ${l.address} expired\n`));
  dhcp.on('declined', (a: string) => process.stderr.write(`tapstack: dhcp: ${a} is in use (ARP probe): declined\n`));
  dhcp.on('nak', (m: string) => process.stderr.write(`tapstack: dhcp: NAK (${m})\n`));
  dhcp.on('warning', (m: string) => process.stderr.write(`tapstack: ${m}\n`));
}

/** --trace: to stdout or a file (flushed and closed by stop()). */
function startCliTrace(stack: Stack, options: CliOptions): { stop(): Promise<void> } | null {
  if (options.trace === null) return null;
  const file = options.traceFile !== undefined ? createWriteStream(options.traceFile) : null;
  file?.on('error', (err) => process.stderr.write(`tapstack: --trace-file: ${err.message}\n`));
  const trace: Trace = stack.trace({ filter: options.trace, format: options.traceFormat, output: file ?? process.stdout });
  return {
    stop: () => {
      trace.stop();
      return new Promise<void>((resolve) => (file === null || file.destroyed ? resolve() : file.end(resolve)));
    },
  };
}

function isProgram(): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(argv1)).href;
  } catch {
    return false;
  }
}

// Received payloads are copied into 1 MiB slabs (src/tcp/payload-slab.ts); with glibc's dynamic
// thresholds a freed slab is often given back to the kernel and the next one faults its pages
// in again (up to 40% more CPU in bulk receive). bin/tapstack sets MALLOC_TRIM_THRESHOLD_ and
// MALLOC_MMAP_THRESHOLD_ before node starts; the installed bin is JavaScript, started after
// glibc read its environment, so it sets the same thresholds with mallopt(3) (M_TRIM_THRESHOLD,
// M_MMAP_THRESHOLD; either also stops the dynamic adjustment), unless the variable is set.
const MALLOC_DEFAULTS: ReadonlyArray<[variable: string, param: number, value: number]> = [
  ['MALLOC_TRIM_THRESHOLD_', -1, 64 << 20],
  ['MALLOC_MMAP_THRESHOLD_', -3, 32 << 20],
];

function runMain(): void {
  for (const [variable, param, value] of MALLOC_DEFAULTS) {
    if (process.env[variable] === undefined) mallopt(param, value);
  }
  main().then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`tapstack: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

// Run only as the program, so that tests can import parseArgs. An installed package's bin is
// a symlink (node_modules/.bin/tapstack) while import.meta.url is the file it points at.
if (isProgram()) runMain();
