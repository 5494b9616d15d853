// ARP (RFC 826, RFC 1122 2.3.2) in virtual time, over a recording link.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARP_REPLY, ARP_REQUEST } from '../../src/arp/arp-packet.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { TX_HEADROOM } from '../../src/ipv4/ipv4.ts';
import { BROADCAST_MAC, parseMac } from '../../src/link/ethernet.ts';
import { createStack, type StackOptions } from '../../src/stack.ts';
import { arpFrame, parseArpFrame, parseIpv4Frame, RecordingLink } from '../helpers/frames.ts';

const OUR_MAC = parseMac('02:00:00:00:00:02')!;
const OUR_IP = parseIpv4('10.0.0.2')!;
const HOST_MAC = parseMac('02:00:00:00:00:01')!;
const HOST_IP = parseIpv4('10.0.0.1')!;
const OTHER_MAC = parseMac('02:00:00:00:00:07')!;
const OTHER_IP = parseIpv4('10.0.0.7')!;
const ZERO_MAC = Buffer.alloc(6);
const PROTO_TEST = 253; // RFC 3692 experimental protocol number

async function setup(extra: Partial<StackOptions> = {}) {
  const link = new RecordingLink();
  const clock = new VirtualClock();
  const stack = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', ...extra });
  const announce = link.take();
  return { link, clock, stack, announce };
}

function request(senderMac: Buffer, senderIp: number, targetIp: number): Buffer {
  return arpFrame(BROADCAST_MAC, { op: ARP_REQUEST, senderMac, senderIp, targetMac: ZERO_MAC, targetIp });
}

function reply(senderMac: Buffer, senderIp: number, targetMac = OUR_MAC, targetIp = OUR_IP): Buffer {
  return arpFrame(targetMac, { op: ARP_REPLY, senderMac, senderIp, targetMac, targetIp });
}

/** Sends `marker` as a one-byte payload of an IPv4 datagram to dst. */
function sendMarked(stack: Awaited<ReturnType<typeof setup>>['stack'], dst: number, marker: number): string | null {
  const buf = Buffer.alloc(TX_HEADROOM + 1);
  buf[TX_HEADROOM] = marker;
  return stack.ipv4.send(PROTO_TEST, dst, buf, TX_HEADROOM, 1);
}

test('a gratuitous ARP announces our address when the stack comes up (RFC 5227 3)', async () => {
  const { announce } = await setup();
  assert.is(announce.length, 1);
  const a = parseArpFrame(announce[0]!)!;
  assert.ok(a, 'an ARP frame');
  assert.ok(a.ethDst.equals(BROADCAST_MAC));
  assert.ok(a.ethSrc.equals(OUR_MAC));
  assert.is(a.op, ARP_REQUEST);
  assert.ok(a.senderMac.equals(OUR_MAC));
  assert.is(a.senderIp, OUR_IP);
  assert.is(a.targetIp, OUR_IP);
});

test('answers a request for our address, unicast to the asker, and only for our address', async () => {
  const { link, stack } = await setup();
  link.inject(request(HOST_MAC, HOST_IP, OUR_IP));
  const out = link.take();
  assert.is(out.length, 1);
  const r = parseArpFrame(out[0]!)!;
  assert.is(r.op, ARP_REPLY);
  assert.ok(r.ethDst.equals(HOST_MAC));
  assert.ok(r.senderMac.equals(OUR_MAC));
  assert.is(r.senderIp, OUR_IP);
  assert.ok(r.targetMac.equals(HOST_MAC));
  assert.is(r.targetIp, HOST_IP);
  link.inject(request(HOST_MAC, HOST_IP, parseIpv4('10.0.0.3')!));
  assert.is(link.take().length, 0);
  assert.is(stack.arp.counters.drops['arp-not-for-us'], 1);
  // Someone else claiming our address gets no answer and does not poison anything.
  link.inject(request(OTHER_MAC, OUR_IP, OUR_IP));
  assert.is(link.take().length, 0);
  assert.is(stack.arp.counters.drops['arp-address-conflict'], 1);
});

test('RFC 826 merge rule: a packet for someone else updates a known sender but adds no new one', async () => {
  const { link, clock, stack } = await setup();
  // Not known, not for us: nothing learned.
  link.inject(request(OTHER_MAC, OTHER_IP, parseIpv4('10.0.0.9')!));
  assert.is(stack.arp.lookup(OTHER_IP), null);
  // For us: learned (and answered).
  link.inject(request(HOST_MAC, HOST_IP, OUR_IP));
  assert.ok(stack.arp.lookup(HOST_IP)?.equals(HOST_MAC));
  link.take();
  // Known, not for us: the new hardware address replaces the old one (after Linux's 1 s locktime).
  clock.advance(1001);
  const moved = parseMac('02:00:00:00:00:aa')!;
  link.inject(request(moved, HOST_IP, parseIpv4('10.0.0.9')!));
  assert.ok(stack.arp.lookup(HOST_IP)?.equals(moved));
  assert.is(link.take().length, 0);
  // A gratuitous ARP (sender = target) from a known host updates it too.
  link.inject(request(HOST_MAC, HOST_IP, HOST_IP));
  assert.ok(stack.arp.lookup(HOST_IP)?.equals(HOST_MAC));
  // An unsolicited reply to us teaches us nothing (Linux arp_accept = 0).
  link.inject(reply(OTHER_MAC, OTHER_IP));
  assert.is(stack.arp.lookup(OTHER_IP), null);
  assert.is(stack.arp.counters.drops['arp-unsolicited'], 1);
});

test('packets to an unresolved address wait, one broadcast request, then leave in order with a full Ethernet header', async () => {
  const { link, stack } = await setup();
  for (let i = 0; i < 3; i++) assert.is(sendMarked(stack, HOST_IP, i), null);
  const asked = link.take();
  assert.is(asked.length, 1, 'one request for three packets');
  const q = parseArpFrame(asked[0]!)!;
  assert.is(q.op, ARP_REQUEST);
  assert.ok(q.ethDst.equals(BROADCAST_MAC));
  assert.is(q.targetIp, HOST_IP);
  assert.is(stack.arp.neighbours()[0]!.queued, 3);
  link.inject(reply(HOST_MAC, HOST_IP));
  const out = link.take();
  assert.is(out.length, 3);
  out.forEach((f, i) => {
    assert.ok(f.subarray(0, 6).equals(HOST_MAC), 'destination MAC');
    assert.ok(f.subarray(6, 12).equals(OUR_MAC), 'source MAC');
    assert.is(f.readUInt16BE(12), 0x0800, 'EtherType IPv4');
    const ip = parseIpv4Frame(f)!;
    assert.ok(ip);
    assert.is(f[ip.payloadOffset], i, 'released in order');
  });
});

test('the queue per address is bounded: the oldest packets are dropped and counted', async () => {
  const { link, stack } = await setup({ arp: { queueLimit: 4 } });
  for (let i = 0; i < 10; i++) sendMarked(stack, HOST_IP, i);
  assert.is(stack.arp.counters.drops['arp-queue-full'], 6);
  link.take();
  link.inject(reply(HOST_MAC, HOST_IP));
  const markers = link.take().map((f) => f[parseIpv4Frame(f)!.payloadOffset]);
  assert.equal(markers, [6, 7, 8, 9]);
});

test('resolution gives up after the configured number of requests: queued packets are dropped and counted', async () => {
  const { link, clock, stack } = await setup({ arp: { maxRequests: 3, retryMs: 1000 } });
  for (let i = 0; i < 5; i++) sendMarked(stack, HOST_IP, i);
  assert.is(link.take().length, 1);
  clock.advance(999);
  assert.is(link.take().length, 0);
  clock.advance(1);
  assert.is(link.take().length, 1, 'second request after 1 s');
  clock.advance(1000);
  assert.is(link.take().length, 1, 'third request after 2 s');
  assert.is(stack.arp.counters.drops['arp-timeout'], undefined);
  clock.advance(1000);
  assert.is(link.take().length, 0, 'no fourth request');
  assert.is(stack.arp.counters.drops['arp-timeout'], 5);
  assert.is(stack.arp.lookup(HOST_IP), null);
  assert.is(stack.arp.neighbours().length, 0);
  // A late reply creates nothing (not for us? it is for us: then it is learned, nothing queued to send).
  link.inject(reply(HOST_MAC, HOST_IP));
  assert.is(link.take().length, 0);
});

test('a learned entry expires; it stays usable while a unicast probe confirms it', async () => {
  const { link, clock, stack } = await setup({ arp: { entryTtlMs: 30_000, retryMs: 1000, maxRequests: 3 } });
  link.inject(request(HOST_MAC, HOST_IP, OUR_IP));
  link.take();
  clock.advance(29_000);
  sendMarked(stack, HOST_IP, 1);
  let out = link.take();
  assert.is(out.length, 1, 'fresh entry: no ARP');
  assert.ok(parseIpv4Frame(out[0]!));
  clock.advance(1_000);
  sendMarked(stack, HOST_IP, 2);
  out = link.take();
  assert.is(out.length, 2, 'expired entry: the packet goes at once, plus a probe');
  const data = out.find((f) => parseIpv4Frame(f))!;
  assert.ok(data.subarray(0, 6).equals(HOST_MAC));
  const probe = parseArpFrame(out.find((f) => parseArpFrame(f))!)!;
  assert.is(probe.op, ARP_REQUEST);
  assert.ok(probe.ethDst.equals(HOST_MAC), 'unicast probe (RFC 1122 2.3.2.1)');
  assert.is(probe.targetIp, HOST_IP);
  // More traffic during the probe sends no extra probes.
  sendMarked(stack, HOST_IP, 3);
  assert.is(link.take().length, 1);
  // The answer refreshes the entry for another TTL.
  link.inject(reply(HOST_MAC, HOST_IP));
  clock.advance(29_000);
  assert.is(link.take().length, 0, 'no more probes once confirmed');
  sendMarked(stack, HOST_IP, 4);
  assert.is(link.take().length, 1);
});

test('an expired entry whose probes go unanswered is removed; the next packet resolves afresh', async () => {
  const { link, clock, stack } = await setup({ arp: { entryTtlMs: 30_000, retryMs: 1000, maxRequests: 3 } });
  link.inject(request(HOST_MAC, HOST_IP, OUR_IP));
  link.take();
  clock.advance(30_000);
  sendMarked(stack, HOST_IP, 1);
  assert.is(link.take().length, 2);
  clock.advance(1000);
  clock.advance(1000);
  const probes = link.take().map((f) => parseArpFrame(f)!);
  assert.is(probes.length, 2);
  for (const p of probes) assert.ok(p.ethDst.equals(HOST_MAC));
  clock.advance(1000);
  assert.is(stack.arp.lookup(HOST_IP), null);
  sendMarked(stack, HOST_IP, 2);
  const out = link.take();
  assert.is(out.length, 1);
  assert.ok(parseArpFrame(out[0]!)!.ethDst.equals(BROADCAST_MAC), 'broadcast request for a forgotten address');
});

test('the cache is bounded: a flood of requests from many senders fills it, then old entries give way', async () => {
  const { link, clock, stack } = await setup({ ip: '10.0.0.2/16', arp: { maxEntries: 1024 } });
  const base = parseIpv4('10.0.16.0')!;
  for (let i = 0; i < 3000; i++) link.inject(request(OTHER_MAC, base + i, OUR_IP));
  // Linux's neigh_forced_gc spares entries updated in the last 5 s: the rest are refused.
  assert.is(link.take().length, 1024, 'requests answered while there is room');
  assert.is(stack.arp.counters.drops['arp-table-full'], 3000 - 1024);
  assert.is(stack.arp.neighbours().length, 1024);
  clock.advance(5001);
  link.inject(request(OTHER_MAC, base + 2999, OUR_IP));
  assert.is(link.take().length, 1);
  assert.is(stack.arp.neighbours().length, 1024);
  assert.ok(stack.arp.lookup(base + 2999), 'the newest is kept');
  let gone = 0;
  for (let i = 0; i < 1024; i++) if (stack.arp.lookup(base + i) === null) gone++;
  assert.is(gone, 1, 'one of the old entries gave way');
});

test.run();
