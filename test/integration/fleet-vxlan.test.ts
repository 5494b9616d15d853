// Fleets beyond one process and one host, joined by the kernel's own bridge and VXLAN (no
// transport of ours): two namespaces stand in for two hosts, a veth pair between them for the
// underlay (10.200.0.0/24); in each, a bridge br0 with a VXLAN port (VNI 42, UDP 4789, the
// peer in the flooding entry, as on real hosts) and the TAP of a `tapstack fleet --bridge br0`.
// Devices of each fleet reach devices of the other by TCP echo and ping (--reach), both ways;
// then two fleet processes on one bridge in one namespace reach each other the same way.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Namespace, type StackProcess } from '../helpers/netns.ts';
import { canUseTap } from '../helpers/root.ts';

const it = canUseTap ? test : test.skip;
/** VXLAN's 50 bytes of outer headers (Ethernet 14, IPv4 20, UDP 8, VXLAN 8) inside the underlay's 1500. */
const FLEET_MTU = '1450';
const DEVICES = '50';
const PAIRS = 10;

async function sh(ns: Namespace, commands: string[]): Promise<void> {
  for (const c of commands) {
    const args = c.split(' ');
    const r = await ns.exec(args[0]!, args.slice(1));
    if (r.code !== 0) throw new Error(`${ns.name}: ${c}: ${r.stderr}`);
  }
}

/** A "host": its underlay address on `underlay`, br0 with vx0 flooding to the peer host. */
async function vxlanHost(ns: Namespace, underlay: string, local: string, peer: string): Promise<void> {
  await sh(ns, [
    `ip addr add ${local}/24 dev ${underlay}`,
    `ip link set ${underlay} up`,
    `ip link add vx0 type vxlan id 42 dstport 4789 local ${local} dev ${underlay}`,
    // Unknown unicast, broadcast and multicast go to every peer in the all-zero entry (one here).
    `bridge fdb append 00:00:00:00:00:00 dev vx0 dst ${peer}`,
    'ip link add br0 type bridge',
    'ip link set vx0 master br0',
    'ip link set vx0 up',
    'ip link set br0 up',
  ]);
}

function fleetArgs(tap: string, name: string, ip: string, reach: string, services = 'echo'): string[] {
  // prettier-ignore
  return ['fleet', '--count', DEVICES, '--ip', ip, '--bridge', 'br0', '--tap', tap, '--name', name, '--mtu', FLEET_MTU,
    '--services', services, '--seed', '1', '--reach', reach, '--reach-count', String(PAIRS), '--reach-wait', '30'];
}

/** Waits for --reach's summary and checks every pair got its echo and its ping back. */
async function reachedAll(fleet: StackProcess, label: string): Promise<string> {
  await fleet.waitFor(/^tapstack fleet reach \d+\/\d+ ok/m, 40_000);
  const summary = /^tapstack fleet reach (\d+)\/(\d+) ok.*$/m.exec(fleet.stdout)!;
  assert.is(`${summary[1]}/${summary[2]}`, `${PAIRS}/${PAIRS}`, `${label}:\n${fleet.stdout}\n${fleet.stderr}`);
  assert.not.match(fleet.stderr, /MTU/, fleet.stderr);
  const up = /in (\d+) ms$/m.exec(fleet.stdout.split('\n')[0]!)?.[1];
  return `${label}: up in ${up} ms; ${summary[0].replace('tapstack fleet reach ', '')}`;
}

it('two hosts (namespaces) joined by bridge + VXLAN: devices of each fleet reach devices of the other', async () => {
  const a = await Namespace.create('vxa');
  let b: Namespace | null = null;
  try {
    b = await Namespace.create('vxb');
    // The underlay: a veth pair from one "host" to the other, made inside them.
    await sh(a, [`ip link add vxu0 type veth peer name vxu1 netns ${b.name}`]);
    await vxlanHost(a, 'vxu0', '10.200.0.1', '10.200.0.2');
    await vxlanHost(b, 'vxu1', '10.200.0.2', '10.200.0.1');
    const [fleetA, fleetB] = await Promise.all([
      a.startStack(fleetArgs('tap0', 'hostA', '10.1.1.1/16', '10.1.2.1'), 30_000),
      b.startStack(fleetArgs('tap0', 'hostB', '10.1.2.1/16', '10.1.1.1'), 30_000),
    ]);
    try {
      const lines = [await reachedAll(fleetA, 'A -> B'), await reachedAll(fleetB, 'B -> A')];
      // The frames crossed the underlay as VXLAN (UDP 4789), not some other way.
      const vx = await a.exec('ip', ['-s', '-j', 'link', 'show', 'vx0']);
      const stats = (JSON.parse(vx.stdout) as { stats64: { rx: { packets: number }; tx: { packets: number } } }[])[0]!.stats64;
      assert.ok(stats.rx.packets > PAIRS * 10 && stats.tx.packets > PAIRS * 10, JSON.stringify(stats));
      for (const l of lines) process.stdout.write(`  ${l}\n`);
      process.stdout.write(`  vx0 on A: ${stats.tx.packets} packets out, ${stats.rx.packets} in\n`);
    } finally {
      assert.is((await fleetA.stop()).code, 0);
      assert.is((await fleetB.stop()).code, 0);
    }
  } finally {
    await b?.destroy();
    await a.destroy();
  }
});

it('two fleet processes on one bridge (two TAPs) reach each other; frames for the other fleet are not answered', async () => {
  const ns = await Namespace.create('vxbr');
  try {
    // The kernel on the bridge too (a host on the segment): it reads /fleet of both fleets.
    await sh(ns, ['ip link add br0 type bridge', 'ip addr add 10.1.0.1/16 dev br0', 'ip link set br0 up']);
    const [fleetA, fleetB] = await Promise.all([
      ns.startStack(fleetArgs('tapa', 'procA', '10.1.1.1/16', '10.1.2.1', 'echo,http'), 30_000),
      ns.startStack(fleetArgs('tapb', 'procB', '10.1.2.1/16', '10.1.1.1', 'echo,http'), 30_000),
    ]);
    try {
      const lines = [await reachedAll(fleetA, 'A -> B'), await reachedAll(fleetB, 'B -> A')];
      // A MAC no one has: the bridge floods frames for it to both TAPs (unknown unicast), and
      // each segment drops them, counted, unanswered.
      await sh(ns, ['ip neigh replace 10.1.3.3 lladdr 02:00:5e:00:99:01 dev br0 nud permanent']);
      const ping = await ns.exec('ping', ['-c', '3', '-i', '0.2', '-W', '1', '10.1.3.3'], 10_000);
      assert.is.not(ping.code, 0, 'a frame for an unknown MAC was answered');
      for (const first of ['10.1.1.1', '10.1.2.1']) {
        const r = await ns.exec('curl', ['-sS', '--max-time', '10', `http://${first}/fleet`]);
        const status = JSON.parse(r.stdout) as { devices: number; addressed: number; segment: { unknownIn: number } };
        assert.is(status.addressed, Number(DEVICES));
        assert.ok(status.segment.unknownIn >= 3, `${first}: ${r.stdout}`);
        lines.push(`fleet of ${first}: unknownIn ${status.segment.unknownIn}`);
      }
      for (const l of lines) process.stdout.write(`  ${l}\n`);
    } finally {
      assert.is((await fleetA.stop()).code, 0);
      assert.is((await fleetB.stop()).code, 0);
    }
  } finally {
    await ns.destroy();
  }
});

test.run();
