// The site examples/mqtt-fleet.ts runs in, made in a namespace of its own: a TAP with the
// kernel at 10.0.0.1/24, a route to the fleet's 10.1.0.0/16 via the tapstack router
// (10.0.0.2), dnsmasq serving that subnet through the router's relay and answering
// broker.lab, mosquitto on 10.0.0.1 and mosquitto_sub on sensors/# (all started here, ended
// by PID, the namespace deleted afterwards). Used by test/integration/mqtt-fleet.test.ts
// (100 devices) and bench/mqtt-fleet.ts (the full run).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeTap, startDnsmasq } from './dnsmasq.ts';
import { startMosquitto, until } from './mosquitto.ts';
import { StackProcess, withNamespace } from './netns.ts';
import { tsArgs } from './tcp-ns.ts';

export interface MqttFleetLabOptions {
  count: number;
  readings: number;
  intervalMs: number;
  /** The example's own bound (--deadline-s); the lab waits a little longer before killing it. */
  deadlineS: number;
  concurrency?: number;
  seed?: number;
}

export interface MqttFleetLab {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** The example's `figures {json}` line, or null. */
  figures: Record<string, unknown> | null;
  /** What mosquitto_sub got: readings, and the distinct device names and addresses in them. */
  messages: number;
  devicesHeard: number;
  /** The broker's log: each device's clientId and the address it connected from. */
  clients: Map<string, string>;
  /** Readings whose address is not the one the broker saw its device connect from. */
  addressMismatches: number;
  /** The kernel's neighbours on the TAP once the devices are connected (the router alone, expected). */
  kernelNeighbours: string[];
  dnsmasqLeases: number;
  /** The namespace's UDP counters (/proc/net/snmp): InErrors and RcvbufErrors say what dnsmasq's sockets dropped. */
  kernelUdp: Record<string, number>;
  brokerLog: string;
}

const TAP = 'tap0';
const FLEET_SUBNET = '10.1.0.0/16';
const ROUTER_TAP_IP = '10.0.0.2';

export async function runMqttFleetLab(options: MqttFleetLabOptions): Promise<MqttFleetLab> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tapstack-mqtt-fleet-'));
  try {
    return await withNamespace(async (ns) => {
      await makeTap(ns, '10.0.0.1/24', TAP);
      // The fleet is behind the router: the kernel's one neighbour for all of it.
      const route = await ns.exec('ip', ['route', 'add', FLEET_SUBNET, 'via', ROUTER_TAP_IP, 'dev', TAP, 'onlink']);
      if (route.code !== 0) throw new Error(`ip route add: ${route.stderr}`);
      const dnsmasq = await startDnsmasq(ns, {
        dir,
        range: '10.1.0.10,10.1.255.250,255.255.0.0,1h',
        router: '10.1.0.1',
        dnsServer: '10.0.0.1',
        leaseMax: options.count + 100,
        hosts: { 'broker.lab': '10.0.0.1' },
        logDhcp: false,
      });
      const broker = await startMosquitto(ns, dir);
      try {
        const sub = new StackProcess(ns.spawn('mosquitto_sub', ['-h', '10.0.0.1', '-i', 'lab-subscriber', '-q', '1', '-v', '-t', 'sensors/#']));
        await until(() => /New client connected from 10\.0\.0\.1:\d+ as lab-subscriber/.test(broker.stderr), 10_000, () => `mosquitto_sub: ${broker.stderr} ${sub.stderr}`);
        const args = ['--tap', TAP, '--count', String(options.count), '--readings', String(options.readings), '--interval-ms', String(options.intervalMs)];
        args.push('--deadline-s', String(options.deadlineS), '--concurrency', String(options.concurrency ?? 100));
        if (options.seed !== undefined) args.push('--seed', String(options.seed));
        const example = new StackProcess(ns.spawn(process.execPath, tsArgs('examples/mqtt-fleet.ts', args)));
        const killer = setTimeout(() => example.child.kill('SIGKILL'), (options.deadlineS + 15) * 1000);
        // The kernel's neighbours while every device is connected (the TAP's carrier, and the
        // entries with it, go when the example ends).
        await Promise.race([example.waitFor(/^resolved /m, (options.deadlineS + 15) * 1000), example.exited]).catch(() => {});
        const neighbours = await ns.exec('ip', ['neigh', 'show', 'dev', TAP]);
        const exit = await example.exited;
        clearTimeout(killer);
        const expected = options.count * options.readings;
        const received = (): string[] => sub.stdout.split('\n').filter((l) => l.startsWith('sensors/'));
        // QoS 1 to the subscriber too: what the broker acknowledged reaches it shortly after.
        await until(() => received().length >= expected, 5000, () => '').catch(() => {});
        await sub.stop();
        const snmp = (await ns.exec('cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
        const udpHead = snmp[0]?.split(/\s+/) ?? [];
        const udpValues = snmp[1]?.split(/\s+/) ?? [];
        const kernelUdp: Record<string, number> = {};
        udpHead.forEach((k, i) => i > 0 && (kernelUdp[k] = Number(udpValues[i])));
        const clients = new Map<string, string>();
        for (const m of broker.stderr.matchAll(/New client connected from (\d+\.\d+\.\d+\.\d+):\d+ as (\S+)/g)) if (m[2] !== 'lab-subscriber') clients.set(m[2]!, m[1]!);
        const devices = new Set<string>();
        let addressMismatches = 0;
        for (const line of received()) {
          const reading = JSON.parse(line.slice(line.indexOf(' ') + 1)) as { device: string; address: string };
          devices.add(reading.device);
          if (clients.get(reading.device) !== reading.address) addressMismatches++;
        }
        const figures = /^figures (.*)$/m.exec(example.stdout);
        // (--log-dhcp is off, long with many clients: the lease file has a line a lease.)
        const leaseFile = await ns.exec('wc', ['-l', path.join(dir, 'leases')]);
        return {
          exitCode: exit.code,
          stdout: example.stdout,
          stderr: example.stderr,
          figures: figures ? (JSON.parse(figures[1]!) as Record<string, unknown>) : null,
          messages: received().length,
          devicesHeard: devices.size,
          clients,
          addressMismatches,
          kernelNeighbours: neighbours.stdout.split('\n').filter((l) => l.trim() !== ''),
          kernelUdp,
          dnsmasqLeases: Number(leaseFile.stdout.trim().split(' ')[0]),
          brokerLog: broker.stderr,
        };
      } finally {
        await broker.stop();
        dnsmasq.stop();
      }
    }, 'mqttfleet');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
