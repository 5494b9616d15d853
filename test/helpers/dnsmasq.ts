// dnsmasq for integration tests: started by the test inside its namespace on the TAP's kernel
// end, as DHCP server (a pool, a router, itself as DNS server) and DNS server (host records),
// with no configuration of the machine's (everything on the command line), stopped by its PID.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Namespace } from './netns.ts';

/** A TAP (persistent until the namespace goes) with the kernel's end configured, before dnsmasq binds to it. */
export async function makeTap(ns: Namespace, cidr = '10.0.0.1/24', name = 'tap0'): Promise<void> {
  for (const args of [
    ['tuntap', 'add', 'dev', name, 'mode', 'tap'],
    ['addr', 'add', cidr, 'dev', name],
    ['link', 'set', name, 'up'],
  ]) {
    const r = await ns.exec('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  }
}

export interface DnsmasqOptions {
  /** Lease files and the PID file go here. */
  dir: string;
  interface?: string;
  /** dnsmasq's --dhcp-range: first,last,mask,lease (default 10.0.0.100-150/24, 120 s). */
  range?: string;
  router?: string;
  /** Option 6 (default: dnsmasq's own address on the interface the request came in on). */
  dnsServer?: string;
  /** Most leases at once (dnsmasq's --dhcp-lease-max, default 1000). */
  leaseMax?: number;
  /** name -> address records it answers (--host-record). */
  hosts?: Record<string, string>;
  /** Log every DHCP exchange (--log-dhcp): long with many clients. */
  logDhcp?: boolean;
}

export interface Dnsmasq {
  pid: number;
  log(): string;
  stop(): void;
}

export async function startDnsmasq(ns: Namespace, options: DnsmasqOptions): Promise<Dnsmasq> {
  const pidFile = path.join(options.dir, 'dnsmasq.pid');
  const args = [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    `--pid-file=${pidFile}`,
    `--dhcp-leasefile=${path.join(options.dir, 'leases')}`,
    '--user=root',
    `--interface=${options.interface ?? 'tap0'}`,
    '--bind-interfaces',
    '--except-interface=lo',
    '--no-resolv',
    '--no-hosts',
    '--no-ping',
    `--dhcp-range=${options.range ?? '10.0.0.100,10.0.0.150,255.255.255.0,120s'}`,
    `--dhcp-option=option:router,${options.router ?? '10.0.0.1'}`,
    ...(options.dnsServer === undefined ? [] : [`--dhcp-option=option:dns-server,${options.dnsServer}`]),
    `--dhcp-lease-max=${options.leaseMax ?? 1000}`,
    ...Object.entries(options.hosts ?? {}).map(([name, a]) => `--host-record=${name},${a}`),
    ...(options.logDhcp === false ? [] : ['--log-dhcp']),
    '--log-facility=-',
  ];
  const child = ns.spawn('dnsmasq', args);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  // Up once it has written its PID file.
  for (let i = 0; i < 100; i++) {
    const pid = await readFile(pidFile, 'utf8').catch(() => '');
    if (pid.trim() !== '') {
      const daemon = Number(pid.trim());
      return {
        pid: daemon,
        log: () => log,
        // Stopped by its PID (its own, inside the namespace), not by name.
        stop: () => {
          try {
            process.kill(daemon, 'SIGTERM');
          } catch {
            /* gone */
          }
        },
      };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`dnsmasq did not start: ${log}`);
}
