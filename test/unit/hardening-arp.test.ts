// Issue 10 item 12: ARP as Linux's neighbour code (net/ipv4/arp.c arp_process,
// net/core/neighbour.c): locktime, arp_accept = 0, no non-unicast entries or MACs, arp_ignore 2
// for off-subnet senders, and a table whose garbage collection never takes the gateway.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARP_REPLY, ARP_REQUEST } from '../../src/arp/arp-packet.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { TX_HEADROOM } from '../../src/ipv4/ipv4.ts';
import { BROADCAST_MAC, parseMac } from '../../src/link/ethernet.ts';
import { createStack, type Stack, type StackOptions } from '../../src/stack.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { arpFrame, parseArpFrame, parseIpv4Frame, RecordingLink } from '../helpers/frames.ts';

const OUR_MAC = parseMac('02:00:00:00:00:02')!;
const OUR_IP = parseIpv4('10.0.0.2')!;
const GW_MAC = parseMac('02:00:00:00:00:01')!;
const GW_IP = parseIpv4('10.0.0.1')!;
const HOST_MAC = parseMac('02:00:00:00:00:07')!;
const HOST_IP = parseIpv4('10.0.0.7')!;
const EVIL_MAC = parseMac('02:00:00:00:00:66')!;
const ZERO_MAC = Buffer.alloc(6);
const PROTO_TEST = 253;

async function setup(extra: Partial<StackOptions> = {}) {
  const link = new RecordingLink();
  const clock = new VirtualClock();
  const stack = await createStack({ link, clock, ip: '10.0.0.2/24', gateway: '10.0.0.1', mac: '02:00:00:00:00:02', ...extra });
  link.take();
  return { link, clock, stack };
}

function request(senderMac: Buffer, senderIp: number, targetIp: number): Buffer {
  return arpFrame(BROADCAST_MAC, { op: ARP_REQUEST, senderMac, senderIp, targetMac: ZERO_MAC, targetIp });
}

function reply(senderMac: Buffer, senderIp: number): Buffer {
  return arpFrame(OUR_MAC, { op: ARP_REPLY, senderMac, senderIp, targetMac: OUR_MAC, targetIp: OUR_IP });
}

function send(stack: Stack, dst: number): void {
  const buf = Buffer.alloc(TX_HEADROOM + 1);
  stack.ipv4.send(PROTO_TEST, dst, buf, TX_HEADROOM, 1);
}

/** Resolves `ip` the way a first packet does: a broadcast request and its reply. */
function resolve(link: RecordingLink, stack: Stack, ip: number, mac: Buffer, dst = ip): void {
  send(stack, dst);
  const asked = link.take().map((f) => parseArpFrame(f)!);
  assert.is(asked.length, 1);
  assert.is(asked[0]!.targetIp, ip);
  link.inject(reply(mac, ip));
  link.take();
  assert.ok(stack.arp.lookup(ip)?.equals(mac));
}

test('item 12: an unsolicited reply does not overwrite an entry within the locktime (Linux neigh locktime, 1 s)', async () => {
  const { link, clock, stack } = await setup();
  resolve(link, stack, HOST_IP, HOST_MAC);
  clock.advance(500);
  link.inject(reply(EVIL_MAC, HOST_IP));
  link.inject(request(EVIL_MAC, HOST_IP, OUR_IP));
  assert.ok(stack.arp.lookup(HOST_IP)?.equals(HOST_MAC), 'the first answer wins');
  assert.is(stack.arp.counters.drops['arp-locktime'], 2);
  // After the locktime a host may move, as on Linux.
  clock.advance(1000);
  link.inject(reply(EVIL_MAC, HOST_IP));
  assert.ok(stack.arp.lookup(HOST_IP)?.equals(EVIL_MAC));
});

test("item 12: the gateway's entry is not overwritten by a claim its owner denies", async () => {
  const { link, clock, stack } = await setup();
  const far = parseIpv4('192.0.2.9')!;
  resolve(link, stack, GW_IP, GW_MAC, far);
  clock.advance(10_000);
  for (const spoof of [reply(EVIL_MAC, GW_IP), request(EVIL_MAC, GW_IP, OUR_IP), request(EVIL_MAC, GW_IP, GW_IP)]) {
    link.inject(spoof);
    assert.ok(stack.arp.lookup(GW_IP)?.equals(GW_MAC), 'still the gateway');
  }
  assert.is(stack.arp.counters.drops['arp-gateway-changed'], 3);
  // The claim is checked with a unicast probe to the known owner (Linux's NUD_PROBE), once.
  const probes = link.take().map((f) => parseArpFrame(f)).filter((a) => a && a.op === ARP_REQUEST);
  assert.is(probes.length, 1);
  assert.ok(probes[0]!.ethDst.equals(GW_MAC));
  link.inject(reply(GW_MAC, GW_IP));
  clock.advance(10_000);
  assert.ok(stack.arp.lookup(GW_IP)?.equals(GW_MAC), 'the owner answered');
  send(stack, far);
  const out = link.take();
  assert.is(out.length, 1);
  assert.ok(out[0]!.subarray(0, 6).equals(GW_MAC), 'traffic still goes to the gateway');
});

test("item 12: a gateway that really moved: its old MAC stops answering, the entry goes and is resolved afresh", async () => {
  const { link, clock, stack } = await setup();
  const far = parseIpv4('192.0.2.9')!;
  resolve(link, stack, GW_IP, GW_MAC, far);
  clock.advance(10_000);
  link.inject(request(EVIL_MAC, GW_IP, GW_IP));
  clock.advance(3000); // three unanswered probes
  assert.is(stack.arp.lookup(GW_IP), null);
  link.take();
  send(stack, far);
  const asked = parseArpFrame(link.take()[0]!)!;
  assert.ok(asked.ethDst.equals(BROADCAST_MAC));
  assert.is(asked.targetIp, GW_IP);
});

test('item 12: a sender MAC that is broadcast, multicast or zero is not accepted (RFC 1812 3.3.2)', async () => {
  const { link, stack } = await setup();
  resolve(link, stack, HOST_IP, HOST_MAC);
  const bad = [BROADCAST_MAC, parseMac('01:00:5e:00:00:01')!, parseMac('33:33:00:00:00:01')!, ZERO_MAC];
  for (const mac of bad) {
    link.inject(request(mac, HOST_IP, OUR_IP));
    link.inject(request(mac, parseIpv4('10.0.0.8')!, OUR_IP));
  }
  assert.is(link.take().length, 0, 'not answered');
  assert.is(stack.arp.counters.drops['arp-bad-sender-mac'], 2 * bad.length);
  assert.ok(stack.arp.lookup(HOST_IP)?.equals(HOST_MAC));
  assert.is(stack.arp.lookup(parseIpv4('10.0.0.8')!), null);
});

test('item 12: no entries for non-unicast addresses (127/8, 0/8, 224/4, 240/4, broadcasts, our own)', async () => {
  const { link, stack } = await setup();
  const martians = ['127.0.0.1', '0.1.2.3', '224.0.0.1', '239.1.2.3', '240.0.0.1', '255.255.255.255', '10.0.0.255', '10.0.0.0'];
  for (const m of martians) {
    const ip = parseIpv4(m)!;
    link.inject(request(EVIL_MAC, ip, OUR_IP));
    link.inject(reply(EVIL_MAC, ip));
    // Nor from our own side: a next hop that cannot be a neighbour is not resolved.
    stack.arp.sendIpv4(Buffer.alloc(TX_HEADROOM + 20), TX_HEADROOM, 20, ip);
  }
  link.inject(request(EVIL_MAC, OUR_IP, OUR_IP));
  assert.is(link.take().length, 0, 'nothing answered, nothing asked');
  assert.is(stack.arp.neighbours().length, 0);
  assert.is(stack.arp.counters.drops['arp-martian-sender'], 2 * martians.length);
  assert.is(stack.arp.counters.drops['arp-martian-next-hop'], martians.length);
  assert.is(stack.arp.counters.drops['arp-address-conflict'], 1);
});

test('item 12: off-subnet senders are neither answered nor cached (Linux arp_ignore 2); arpIgnore 0 answers them', async () => {
  const { link, stack } = await setup();
  link.inject(request(EVIL_MAC, parseIpv4('10.1.0.5')!, OUR_IP));
  link.inject(request(EVIL_MAC, parseIpv4('192.0.2.1')!, OUR_IP));
  assert.is(link.take().length, 0);
  assert.is(stack.arp.neighbours().length, 0);
  assert.is(stack.arp.counters.drops['arp-off-subnet'], 2);
  // An on-subnet asker is answered and cached.
  link.inject(request(HOST_MAC, HOST_IP, OUR_IP));
  assert.is(link.take().length, 1);
  assert.ok(stack.arp.lookup(HOST_IP));
  const open = await setup({ arp: { arpIgnore: 0 } });
  open.link.inject(request(EVIL_MAC, parseIpv4('10.1.0.5')!, OUR_IP));
  assert.is(open.link.take().length, 1);
});

test('item 12: 1,024 requests from spoofed senders do not evict the gateway or a pending entry', async () => {
  const { link, clock, stack } = await setup({ ip: '10.0.0.2/16' });
  const far = parseIpv4('192.0.2.9')!;
  resolve(link, stack, GW_IP, GW_MAC, far);
  clock.advance(60_000); // the gateway's entry is old: only its role protects it
  send(stack, HOST_IP); // pending: a request is out, a packet waits
  link.take();
  const base = parseIpv4('10.0.8.0')!;
  let next = 0;
  const flood = (n: number): void => {
    for (let i = 0; i < n; i++, next++) {
      link.inject(request(EVIL_MAC, base + next, OUR_IP));
      link.inject(request(EVIL_MAC, parseIpv4('172.16.0.0')! + next, OUR_IP)); // off-subnet
    }
    link.take();
  };
  // Within the pending entry's 3 s of resolution: 3,072 spoofed senders.
  for (let round = 0; round < 3; round++) {
    flood(1024);
    clock.advance(900);
  }
  assert.ok(stack.arp.lookup(GW_IP)?.equals(GW_MAC), 'the gateway is kept');
  assert.ok(stack.arp.neighbours().length <= 1024, 'bounded');
  assert.ok(stack.arp.counters.drops['arp-table-full']! > 0, 'overflow counted');
  link.take(); // its retried requests
  link.inject(reply(HOST_MAC, HOST_IP));
  const released = link.take();
  assert.is(released.length, 1, 'the pending packet leaves once resolved');
  assert.ok(parseIpv4Frame(released[0]!));
  // Later floods push out old spoofed entries, never the gateway.
  for (let round = 0; round < 3; round++) {
    clock.advance(5001);
    flood(1024);
  }
  assert.ok(stack.arp.lookup(GW_IP)?.equals(GW_MAC), 'the gateway is kept');
  let fresh = 0;
  for (let i = next - 1024; i < next; i++) if (stack.arp.lookup(base + i)) fresh++;
  assert.ok(fresh >= 1000, `new entries replace old spoofed ones (${fresh})`);
  assert.ok(stack.arp.neighbours().length <= 1024, 'bounded');
  send(stack, far);
  assert.ok(link.take()[0]!.subarray(0, 6).equals(GW_MAC));
});

test('item 12: above gc_thresh1 stale entries are collected (Linux gc_stale_time), the gateway is not', async () => {
  const { link, clock, stack } = await setup({ ip: '10.0.0.2/16', arp: { gcThresh1: 8, gcStaleMs: 60_000, gcIntervalMs: 30_000 } });
  resolve(link, stack, GW_IP, GW_MAC, parseIpv4('192.0.2.9')!);
  for (let i = 0; i < 20; i++) link.inject(request(EVIL_MAC, parseIpv4('10.0.9.0')! + i, OUR_IP));
  assert.is(stack.arp.neighbours().length, 21);
  clock.advance(90_001);
  const left = stack.arp.neighbours();
  assert.is(left.length, 1);
  assert.is(left[0]!.ip, GW_IP);
  assert.is(clock.pending, 0, 'no GC timer left at or below gc_thresh1');
});

test.run();
