// Devices and fleets (src/fleet/fleet.ts) on one segment (src/fleet/segment.ts) over an
// in-memory link, in virtual time: a "host" stack at the link's other end reaches devices by
// ARP, ping and TCP; devices reach each other on the segment; ARP requests reach only the
// device asked for; DHCP replies reach only their client; a removed device frees its port.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createDevice, createFleet } from '../../src/fleet/fleet.ts';
import { parseFleetArgs } from '../../src/fleet/fleet-cli.ts';
import { reachPeers } from '../../src/fleet/reach.ts';
import { Segment } from '../../src/fleet/segment.ts';
import { LearningSwitch } from '../../src/link/switch.ts';
import { formatMac } from '../../src/link/ethernet.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { stableMac } from '../../src/stack-options.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { dhcpServer, runFor } from '../helpers/net-services.ts';

async function hostAndFleet(count: number, extra: { dhcp?: boolean; services?: ('echo' | 'http')[] } = {}) {
  const clock = new VirtualClock();
  const [hostLink, fleetLink] = createLinkPair(clock);
  const host = await createStack({ link: hostLink, clock, ip: '10.0.0.1/16', mac: '02:00:00:00:00:01', seed: 1 });
  const fleet = await createFleet({
    count,
    link: fleetLink,
    clock,
    seed: 100,
    services: extra.services ?? ['echo'],
    ...(extra.dhcp ? { dhcp: { arpProbe: false } } : { ip: '10.0.1.1/16', gateway: '10.0.0.1' }),
  });
  return { clock, host, fleet };
}

/** Opens a TCP connection from `from` to host:7 and resolves with what the echo sent back. */
function echo(clock: VirtualClock, from: Stack, host: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = from.connect({ host, port: 7 });
    let got = '';
    c.on('connect', () => c.end(text));
    c.on('data', (d: Buffer) => (got += d.toString()));
    c.on('close', () => resolve(got));
    c.on('error', reject);
  });
}

test('static range: each device its own MAC and address; the host reaches any of them', async () => {
  const { clock, host, fleet } = await hostAndFleet(50);
  assert.is(fleet.size, 50);
  assert.is(fleet.devices[0]!.address, '10.0.1.1');
  assert.is(fleet.devices[49]!.address, '10.0.1.50');
  assert.is(new Set(fleet.devices.map((d) => d.mac)).size, 50);
  // MACs derive from names: the same in another run.
  assert.is(fleet.devices[7]!.mac, formatMac(stableMac('tapstack-device:dev-7')));
  await fleet.ready();
  for (const i of [0, 17, 49]) {
    const reply = echo(clock, host, `10.0.1.${i + 1}`, `to ${i}`);
    await runFor(clock, 500);
    assert.is(await reply, `to ${i}`);
  }
  // The host's ARP requests went to the one device asked for (after the announcements taught
  // the segment every address), not to all 50.
  const arpIn = fleet.devices.map((d) => d.stack.arp.counters.rx);
  const asked = arpIn.filter((n) => n > 0).length;
  assert.is(asked, 3, `ARP reached ${asked} devices`);
  assert.is(fleet.segment.counters.floodedIn, 0);
  const status = fleet.status({ list: true, offset: 17, limit: 2 });
  assert.is(status.devices, 50);
  assert.is(status.addressed, 50);
  assert.equal(status.list!.map((d) => d.ip), ['10.0.1.18/16', '10.0.1.19/16']);
  await fleet.close();
  await host.close();
});

test('devices reach each other on the segment (not through the link)', async () => {
  const { clock, host, fleet } = await hostAndFleet(10);
  const out = fleet.segment.counters.out;
  const reply = echo(clock, fleet.devices[2]!.stack, '10.0.1.9', 'neighbour');
  await runFor(clock, 500);
  assert.is(await reply, 'neighbour');
  assert.ok(fleet.segment.counters.local >= 6, `local frames ${fleet.segment.counters.local}`);
  // Only the ARP request (a broadcast also goes out) left on the link.
  assert.ok(fleet.segment.counters.out - out <= 1, `${fleet.segment.counters.out - out} frames out`);
  await fleet.close();
  await host.close();
});

test('DHCP: every device gets a lease; broadcast replies reach only their client', async () => {
  const clock = new VirtualClock();
  const [hostLink, fleetLink] = createLinkPair(clock, { latencyMs: 1 });
  const host = await createStack({ link: hostLink, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const pool = Array.from({ length: 30 }, (_, i) => `10.0.0.${100 + i}`);
  const srv = dhcpServer(host, { pool, dnsServers: ['10.0.0.1'] });
  const fleet = await createFleet({ count: 30, link: fleetLink, clock, seed: 5, dhcp: { arpProbe: false } });
  const ready = fleet.ready(30_000);
  await runFor(clock, 10_000);
  await ready;
  assert.equal(fleet.devices.map((d) => d.address).sort(), [...pool].sort());
  assert.is(fleet.status().dhcp.bound, 30);
  // 30 DISCOVERs and 30 REQUESTs: a reply reaching a device it was not for would show as a
  // second lease or a UDP drop there; none is flooded.
  assert.is(srv.seen.length, 60);
  assert.is(fleet.segment.counters.floodedIn, 0);
  await fleet.close();
  await host.close();
});

test('ready() rejects naming the devices left without an address', async () => {
  const clock = new VirtualClock();
  const [, fleetLink] = createLinkPair(clock);
  const fleet = await createFleet({ count: 3, link: fleetLink, clock, seed: 5, dhcp: { arpProbe: false } });
  const ready = fleet.ready(5000).then(
    () => 'resolved',
    (e: Error & { code?: string }) => `${e.code}: ${e.message}`,
  );
  await runFor(clock, 6000);
  assert.is(await ready, 'ETIMEDOUT: 3 of 3 devices have no address after 5000 ms');
  await fleet.close();
});

test('remove() frees the device: its port leaves the segment, frames to it are unknown', async () => {
  const { clock, host, fleet } = await hostAndFleet(5);
  const gone = fleet.devices[3]!;
  await fleet.remove(gone);
  assert.is(fleet.size, 4);
  assert.is(fleet.segment.size, 4);
  assert.is(gone.stack.tcp.size, 0);
  const c = host.connect({ host: '10.0.1.4', port: 7 });
  c.on('error', () => {});
  await runFor(clock, 10_000);
  // The host learnt the MAC from the announcement: its SYNs reach no one (unknownIn).
  assert.ok(fleet.segment.counters.unknownIn > 0);
  c.destroy();
  await fleet.close();
  await host.close();
});

test('createFleet checks its options', async () => {
  const clock = new VirtualClock();
  const [, link] = createLinkPair(clock);
  const bad = async (o: object, msg: RegExp): Promise<void> => {
    try {
      await createFleet({ count: 2, link, clock, ...o } as never);
      assert.unreachable('accepted');
    } catch (e) {
      assert.match((e as Error).message, msg);
    }
  };
  await bad({ ip: '10.0.1.1/16', dhcp: true }, /give ip .* or dhcp/);
  await bad({}, /give ip .* or dhcp/);
  await bad({ count: 0, ip: '10.0.0.1/24' }, /invalid count/);
  await bad({ count: 300, ip: '10.0.0.1/24' }, /do not fit in \/24/);
  await bad({ ip: 'x' }, /invalid ip/);
  await bad({ ip: '10.0.0.1/24', name: 'a b' }, /invalid name/);
});

test('a segment: a gratuitous ARP goes to no device, an unknown group frame to every one on a copy', async () => {
  const clock = new VirtualClock();
  const [outside, inside] = createLinkPair(clock);
  const segment = new Segment(inside, clock);
  const got: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = segment.attach(stableMac(`seg-${i}`));
    port.setReceiver((buf, off) => {
      if (buf[off] === 0xff) got.push(i);
      buf[off] = 0xee; // a stack may write into what it receives: the next device must not see it
    });
  }
  const frame = Buffer.alloc(60);
  frame.fill(0xff, 0, 6);
  frame.writeUInt16BE(0x88b5, 12); // a local experimental EtherType
  outside.send(frame, 0, 60);
  await runFor(clock, 1);
  assert.equal(got, [0, 1, 2]);
  assert.is(segment.counters.floodedIn, 1);
});

test('a segment: a frame from the link with one of our devices\' MACs as its source is dropped, counted and reported once', async () => {
  const clock = new VirtualClock();
  const [outside, inside] = createLinkPair(clock);
  const segment = new Segment(inside, clock);
  const got: number[] = [];
  const macs = [0, 1].map((i) => stableMac(`own-${i}`));
  macs.forEach((mac, i) => segment.attach(mac).setReceiver(() => got.push(i)));
  const reported: string[] = [];
  segment.onOwnMac = (mac) => reported.push(formatMac(mac));
  // Another host with device 1's MAC (a second fleet of the same name on a bridge) sends twice.
  const frame = Buffer.alloc(60);
  frame.set(macs[0]!, 0);
  frame.set(macs[1]!, 6);
  frame.writeUInt16BE(0x0800, 12);
  outside.send(frame, 0, 60);
  outside.send(frame, 0, 60);
  await runFor(clock, 1);
  assert.equal(got, []);
  assert.is(segment.counters.ownMacIn, 2);
  assert.equal(reported, [formatMac(macs[1]!)]);
  // The same frame from a MAC not ours reaches device 0.
  frame.set([0x02, 0, 0, 0, 0, 0x99], 6);
  outside.send(frame, 0, 60);
  await runFor(clock, 1);
  assert.equal(got, [0]);
});

test('two fleets on one learning switch (two processes on a Linux bridge): each reaches the other by echo and ping', async () => {
  const clock = new VirtualClock();
  const bridge = new LearningSwitch(clock, { latencyMs: 1 });
  const a = await createFleet({ count: 20, link: bridge.connect(), clock, seed: 1, name: 'a', ip: '10.1.1.1/16', services: ['echo'] });
  const b = await createFleet({ count: 20, link: bridge.connect(), clock, seed: 2, name: 'b', ip: '10.1.2.1/16', services: ['echo'] });
  await runFor(clock, 10);
  const arpBefore = [a, b].map((f) => f.devices.map((d) => d.stack.arp.counters.rx));
  const results = Promise.all([reachPeers(a, ['10.1.2.1', '10.1.2.2', '10.1.2.3']), reachPeers(b, ['10.1.1.4', '10.1.1.5'])]);
  await runFor(clock, 2000);
  const [ab, ba] = await results;
  for (const r of [...ab, ...ba]) assert.ok(r.echoMs !== null && r.pingMs !== null && r.error === null, JSON.stringify(r));
  assert.equal(ab.map((r) => [r.from, r.to]), [['a-0', '10.1.2.1'], ['a-1', '10.1.2.2'], ['a-2', '10.1.2.3']]);
  // ARP requests for the other fleet's addresses left their segment and reached, in the other,
  // only the devices asked for (each segment learnt its own devices' addresses from their
  // announcements): ARP came to the devices that asked (the replies) and those asked, no other.
  const arpReached = [a, b].map((f, j) => f.devices.filter((d, i) => d.stack.arp.counters.rx > arpBefore[j]![i]!).map((d) => d.name));
  assert.equal(arpReached, [
    ['a-0', 'a-1', 'a-2', 'a-3', 'a-4'],
    ['b-0', 'b-1', 'b-2'],
  ]);
  assert.is(a.segment.counters.floodedIn + b.segment.counters.floodedIn, 0);
  // A frame for a MAC on neither segment, flooded by the switch (unknown unicast): counted and dropped by both.
  const stranger = await createStack({ link: bridge.connect(), clock, ip: '10.1.0.9/16', mac: '02:00:00:00:00:09', seed: 3 });
  const frame = Buffer.alloc(60);
  frame.set([0x02, 0x11, 0x22, 0x33, 0x44, 0x55], 0);
  frame.set(stranger.mac, 6);
  frame.writeUInt16BE(0x0800, 12);
  const unknown = [a.segment.counters.unknownIn, b.segment.counters.unknownIn];
  const rxBefore = a.status().rx + b.status().rx;
  stranger.link.send(frame, 0, 60);
  await runFor(clock, 10);
  assert.equal([a.segment.counters.unknownIn, b.segment.counters.unknownIn], [unknown[0]! + 1, unknown[1]! + 1]);
  assert.is(a.status().rx + b.status().rx, rxBefore);
  await stranger.close();
  await a.close();
  await b.close();
});

test('tapstack fleet --bridge: no address on the TAP; --reach: a peer range no longer than the fleet', () => {
  const o = parseFleetArgs(['--count', '50', '--ip', '10.1.1.1/16', '--bridge', 'br0', '--reach', '10.1.2.1', '--reach-count', '5', '--mtu', '1450']);
  assert.ok(o !== 'help');
  assert.equal([o.bridge, o.hostIp, o.reach, o.reachCount, o.reachWaitMs, o.mtu], ['br0', null, '10.1.2.1', 5, 30_000, 1450]);
  const error = (args: string[]): string => {
    try {
      parseFleetArgs(['--count', '5', '--ip', '10.1.1.1/16', ...args]);
      return 'accepted';
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.match(error(['--bridge', 'br0', '--host-ip', '10.1.0.1/16']), /a bridge port has no address/);
  assert.match(error(['--reach', '10.1.2.1']), /--reach-count 10 is more than --count 5/);
  assert.match(error(['--reach', '10.1.2']), /--reach: invalid address/);
});

test('createDevice: one device on a link of its own, its services started, its MAC from its name', async () => {
  const clock = new VirtualClock();
  const [a, b] = createLinkPair(clock);
  const host = await createStack({ link: a, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const device = await createDevice({ name: 'sensor', link: b, clock, ip: '10.0.0.9/24', services: ['echo'], seed: 2 });
  assert.is(device.mac, formatMac(stableMac('tapstack-device:sensor')));
  const reply = echo(clock, host, '10.0.0.9', 'alone');
  await runFor(clock, 500);
  assert.is(await reply, 'alone');
  await device.close();
  await host.close();
});

test.run();
