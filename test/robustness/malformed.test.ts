// Robustness: random bytes and valid frames with every kind of defect, fed to a stack over a
// recording link in virtual time. The stack never throws, counts each drop under the reason
// of its defect, and still answers an echo request afterwards.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARP_REQUEST, emitArp } from '../../src/arp/arp-packet.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { internetChecksum } from '../../src/util/checksum.ts';
import { ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IcmpPacket } from '../../src/ipv4/icmp-packet.ts';
import { PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, parseMac } from '../../src/link/ethernet.ts';
import type { Stack } from '../../src/stack.ts';
import { arpFrame, icmpMessage, ipv4Frame, ipv4Repr, parseIpv4Frame, RecordingLink, stackWithKnownHost } from '../helpers/frames.ts';

const OUR_MAC = parseMac('02:00:00:00:00:02')!;
const OUR_IP = parseIpv4('10.0.0.2')!;
const HOST_MAC = parseMac('02:00:00:00:00:01')!;
const HOST_IP = parseIpv4('10.0.0.1')!;
const IP = 14; // where the IPv4 header starts in a frame

const setup = stackWithKnownHost;

let seq = 0;
function echoRequest(data = Buffer.from('are you alive?'), options?: Buffer): Buffer {
  seq = (seq + 1) & 0xffff;
  return ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP, options }), icmpMessage(ICMP_ECHO_REQUEST, 0, (7 << 16) | seq, data));
}

/** The stack answers a fresh echo request with a correct reply. */
function assertAlive(link: RecordingLink, stack: Stack): void {
  link.take();
  link.inject(echoRequest());
  const out = link.take();
  assert.is(out.length, 1, 'one answer to an echo request');
  const ip = parseIpv4Frame(out[0]!)!;
  assert.ok(ip, 'a valid IPv4 reply');
  const icmp = new IcmpPacket();
  assert.is(icmp.parse(out[0]!, ip.payloadOffset, ip.payloadLength), null);
  assert.is(icmp.type, ICMP_ECHO_REPLY);
  assert.is(icmp.sequence, seq);
  assertNoInternalError(stack);
}

function assertNoInternalError(stack: Stack): void {
  for (const [layer, c] of Object.entries(stack.counters()))
    for (const reason of Object.keys(c.drops)) assert.not.ok(reason.startsWith('internal-error'), `${layer}: ${reason}`);
}

function totalDrops(stack: Stack): number {
  let n = 0;
  for (const c of Object.values(stack.counters())) for (const v of Object.values(c.drops)) n += v;
  return n;
}

/** Rewrites the IPv4 header checksum after a deliberate change, so only that change is wrong. */
function fixIpChecksum(f: Buffer): void {
  const hl = (f[IP]! & 15) * 4;
  f.writeUInt16BE(0, IP + 10);
  f.writeUInt16BE(internetChecksum(f, IP, Math.min(hl, f.length - IP)), IP + 10);
}

interface Case {
  name: string;
  frame: () => Buffer;
  layer: string;
  reason: string;
}

const cases: Case[] = [
  { name: 'frame shorter than an Ethernet header', frame: () => echoRequest().subarray(0, 13), layer: 'ethernet', reason: 'eth-short' },
  { name: 'unknown EtherType', frame: () => { const f = echoRequest(); f.writeUInt16BE(0x88b5, 12); return f; }, layer: 'ethernet', reason: 'eth-unknown-type' },
  { name: 'unicast to another MAC', frame: () => { const f = echoRequest(); f[5] = 0x99; return f; }, layer: 'ethernet', reason: 'eth-not-for-us' },
  { name: 'IPv4 shorter than 20 bytes', frame: () => echoRequest().subarray(0, IP + 19), layer: 'ipv4', reason: 'ip-short' },
  { name: 'IP version 6 in an IPv4 EtherType', frame: () => { const f = echoRequest(); f[IP] = 0x65; return f; }, layer: 'ipv4', reason: 'ip-version' },
  { name: 'IHL below 5', frame: () => { const f = echoRequest(); f[IP] = 0x43; return f; }, layer: 'ipv4', reason: 'ip-bad-ihl' },
  { name: 'IHL beyond the frame', frame: () => { const f = echoRequest().subarray(0, IP + 40); f[IP] = 0x4f; return f; }, layer: 'ipv4', reason: 'ip-bad-ihl' },
  { name: 'total length beyond the frame', frame: () => { const f = echoRequest(); f.writeUInt16BE(f.length - IP + 1, IP + 2); fixIpChecksum(f); return f; }, layer: 'ipv4', reason: 'ip-bad-length' },
  { name: 'total length below the header length', frame: () => { const f = echoRequest(); f.writeUInt16BE(10, IP + 2); fixIpChecksum(f); return f; }, layer: 'ipv4', reason: 'ip-bad-length' },
  { name: 'bad IPv4 header checksum', frame: () => { const f = echoRequest(); f[IP + 10]! ^= 0x40; return f; }, layer: 'ipv4', reason: 'ip-bad-checksum' },
  { name: 'option length running past the header', frame: () => echoRequest(undefined, Buffer.from([0x44, 0x20, 5, 0])), layer: 'ipv4', reason: 'ip-bad-options' },
  { name: 'option length zero', frame: () => echoRequest(undefined, Buffer.from([0x07, 0x00, 0, 0])), layer: 'ipv4', reason: 'ip-bad-options' },
  { name: 'option type with no room for its length', frame: () => echoRequest(undefined, Buffer.from([1, 1, 1, 0x83])), layer: 'ipv4', reason: 'ip-bad-options' },
  { name: 'to another address', frame: () => ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: parseIpv4('10.0.0.9')!, protocol: PROTO_ICMP }), icmpMessage(ICMP_ECHO_REQUEST, 0, 1, Buffer.alloc(8))), layer: 'ipv4', reason: 'ip-not-for-us' },
  { name: 'ICMP shorter than its header', frame: () => ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP }), Buffer.from([8, 0, 0xf7, 0xff, 0, 0, 0])), layer: 'icmp', reason: 'icmp-short' },
  { name: 'ICMP cut short by the IP total length', frame: () => { const f = echoRequest(); f.writeUInt16BE(20 + 6, IP + 2); fixIpChecksum(f); return f; }, layer: 'icmp', reason: 'icmp-short' },
  { name: 'bad ICMP checksum', frame: () => { const f = echoRequest(); f[f.length - 1]! ^= 1; return f; }, layer: 'icmp', reason: 'icmp-bad-checksum' },
  { name: 'unknown ICMP type', frame: () => ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP }), icmpMessage(42, 0, 0, Buffer.alloc(4))), layer: 'icmp', reason: 'icmp-unhandled-type' },
  { name: 'ICMP error quoting garbage', frame: () => ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP }), icmpMessage(3, 3, 0, Buffer.alloc(28, 0xab))), layer: 'icmp', reason: 'icmp-error-bad-quote' },
  { name: 'ICMP error quoting a datagram we did not send', frame: () => ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP }), icmpMessage(3, 3, 0, echoRequest().subarray(IP, IP + 28))), layer: 'icmp', reason: 'icmp-error-not-ours' },
  { name: 'ARP shorter than 28 bytes', frame: () => { const f = Buffer.alloc(14 + 20); OUR_MAC.copy(f, 0); HOST_MAC.copy(f, 6); f.writeUInt16BE(ETHERTYPE_ARP, 12); return f; }, layer: 'arp', reason: 'arp-short' },
  { name: 'ARP for another hardware type', frame: () => { const f = Buffer.alloc(60); OUR_MAC.copy(f, 0); HOST_MAC.copy(f, 6); f.writeUInt16BE(ETHERTYPE_ARP, 12); emitArp(f, 14, { op: 1, senderMac: HOST_MAC, senderIp: HOST_IP, targetMac: Buffer.alloc(6), targetIp: OUR_IP }); f.writeUInt16BE(6, 14); return f; }, layer: 'arp', reason: 'arp-unsupported' },
  { name: 'ARP with an unknown operation', frame: () => { const f = Buffer.alloc(60); OUR_MAC.copy(f, 0); HOST_MAC.copy(f, 6); f.writeUInt16BE(ETHERTYPE_ARP, 12); emitArp(f, 14, { op: 9, senderMac: HOST_MAC, senderIp: HOST_IP, targetMac: Buffer.alloc(6), targetIp: OUR_IP }); return f; }, layer: 'arp', reason: 'arp-bad-op' },
];

for (const c of cases) {
  test(`${c.name}: dropped as ${c.layer}/${c.reason}, nothing sent, still alive`, async () => {
    const { link, stack } = await setup();
    const before = stack.counters()[c.layer]!.drops[c.reason] ?? 0;
    link.inject(c.frame());
    assert.is(link.take().length, 0, 'no answer');
    assert.is(stack.counters()[c.layer]!.drops[c.reason], before + 1);
    assertAlive(link, stack);
  });
}

test('fragments are dropped as unsupported when no reassembler is installed, first and later ones', async () => {
  const { link, stack } = await setup();
  stack.ipv4.reassembler = null;
  const req = icmpMessage(ICMP_ECHO_REQUEST, 0, 1, Buffer.alloc(100));
  link.inject(ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP, moreFragments: true }), req.subarray(0, 64)));
  link.inject(ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP, fragmentOffset: 64 }), req.subarray(64)));
  assert.is(link.take().length, 0);
  assert.is(stack.ipv4.counters.drops['ip-fragment-unsupported'], 2);
  assertAlive(link, stack);
});

test('well-formed options (NOP, End, record route, timestamp, unknown) are skipped and the echo answered', async () => {
  const { link, stack } = await setup();
  const optionSets = [
    Buffer.from([1, 1, 1, 1]),
    Buffer.from([0, 0, 0, 0]),
    Buffer.concat([Buffer.from([7, 11, 4]), Buffer.alloc(8), Buffer.from([0])]), // record route
    Buffer.concat([Buffer.from([68, 12, 5, 0]), Buffer.alloc(8)]), // timestamp
    Buffer.concat([Buffer.from([0x9e, 40]), Buffer.alloc(38)]), // unknown, 40 bytes
  ];
  for (const o of optionSets) {
    link.inject(echoRequest(Buffer.from('opt'), o));
    const out = link.take();
    assert.is(out.length, 1, o.toString('hex'));
  }
  assertNoInternalError(stack);
});

test('random bytes, as any EtherType and as IPv4 and ARP to our MAC, never throw', async () => {
  const { link, stack } = await setup();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 1600 }), fc.constantFrom(null, ETHERTYPE_IPV4, ETHERTYPE_ARP), (bytes, etherType) => {
      const f = Buffer.from(bytes);
      if (etherType !== null && f.length >= 14) {
        OUR_MAC.copy(f, 0);
        f.writeUInt16BE(etherType, 12);
        if (etherType === ETHERTYPE_IPV4 && f.length > IP) f[IP] = 0x40 | (f[IP]! & 15);
      }
      link.inject(f);
      link.take();
    }),
    { numRuns: 5000, seed: 2 },
  );
  assertNoInternalError(stack);
  assertAlive(link, stack);
});

test('valid frames with random mutations: never throw, each frame answered or counted, still alive', async () => {
  const { link, stack } = await setup();
  stack.ipv4.reassembler = null;
  const base = [
    echoRequest(Buffer.alloc(64, 0x5a)),
    echoRequest(Buffer.from('with options'), Buffer.from([1, 7, 7, 4, 0, 0, 0, 0])),
    arpFrame(BROADCAST_MAC, { op: ARP_REQUEST, senderMac: HOST_MAC, senderIp: HOST_IP, targetMac: Buffer.alloc(6), targetIp: OUR_IP }),
  ];
  const mutation = fc.record({
    which: fc.nat({ max: base.length - 1 }),
    edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    cut: fc.option(fc.nat()),
    extra: fc.uint8Array({ maxLength: 8 }),
    fixChecksum: fc.boolean(),
  });
  fc.assert(
    fc.property(mutation, (m) => {
      let f: Buffer = Buffer.from(base[m.which]!);
      for (const [at, value] of m.edits) f[12 + (at % (f.length - 12))] = value; // keep the MAC addresses
      if (m.fixChecksum && f.readUInt16BE(12) === ETHERTYPE_IPV4 && f.length >= IP + 20 && (f[IP]! & 15) >= 5) fixIpChecksum(f);
      if (m.cut !== null) f = f.subarray(0, m.cut % (f.length + 1));
      f = Buffer.concat([f, Buffer.from(m.extra)]);
      const protocol = f.length > IP + 9 ? f[IP + 9] : undefined;
      const isArp = f.length >= 14 && f.readUInt16BE(12) === ETHERTYPE_ARP;
      const dropsBefore = totalDrops(stack);
      link.inject(f);
      const answered = link.take().length > 0;
      // ARP packets may be learned from silently; TCP and UDP belong to their own layers.
      if (!isArp && protocol !== 6 && protocol !== 17) assert.ok(answered || totalDrops(stack) > dropsBefore, `silently ignored: ${f.toString('hex')}`);
    }),
    { numRuns: 5000, seed: 3 },
  );
  assertNoInternalError(stack);
  assertAlive(link, stack);
});

test.run();
