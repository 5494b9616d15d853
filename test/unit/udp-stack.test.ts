// UDP on one stack seen from the wire: frames injected as a host would send them, frames the
// stack sends read back. Services, fragmented datagrams in, reassembly timeout on the wire.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import {
  ICMP_DEST_UNREACHABLE,
  ICMP_PARAMETER_PROBLEM,
  ICMP_TIME_EXCEEDED,
  IcmpPacket,
  TIME_EXCEEDED_REASSEMBLY,
  UNREACH_FRAG_NEEDED,
  UNREACH_HOST,
  UNREACH_NET,
  UNREACH_PORT,
  UNREACH_PROTOCOL,
} from '../../src/ipv4/icmp-packet.ts';
import { PROTO_ICMP, PROTO_UDP } from '../../src/ipv4/ipv4-packet.ts';
import { parseMac } from '../../src/link/ethernet.ts';
import { startServices } from '../../src/services/index.ts';
import '../../src/services/all.ts';
import { emitUdpHeader, UDP_HEADER_LEN, UdpPacket } from '../../src/udp/udp-packet.ts';
import { icmpMessage, ipv4Frame, ipv4Repr, parseIpv4Frame, stackWithKnownHost } from '../helpers/frames.ts';

const OUR_MAC = parseMac('02:00:00:00:00:02')!;
const OUR_IP = parseIpv4('10.0.0.2')!;
const HOST_MAC = parseMac('02:00:00:00:00:01')!;
const HOST_IP = parseIpv4('10.0.0.1')!;

const setup = stackWithKnownHost;

function udpDatagram(srcPort: number, dstPort: number, data: Buffer, dst = OUR_IP): Buffer {
  const d = Buffer.alloc(UDP_HEADER_LEN + data.length);
  data.copy(d, UDP_HEADER_LEN);
  emitUdpHeader(d, 0, HOST_IP, dst, srcPort, dstPort, data.length);
  return d;
}

/** The host's fragments of one datagram, cut every `piece` bytes. */
function fragments(datagram: Buffer, piece: number, id: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < datagram.length; at += piece) {
    const part = datagram.subarray(at, Math.min(at + piece, datagram.length));
    const more = at + piece < datagram.length;
    out.push(ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_UDP, id, fragmentOffset: at, moreFragments: more }), part));
  }
  return out;
}

/** UDP datagrams the stack sent, reassembled from its fragments by a second stack's rules. */
function udpSent(frames: Buffer[]): { srcPort: number; dstPort: number; data: Buffer }[] {
  const out: { srcPort: number; dstPort: number; data: Buffer }[] = [];
  const parts = new Map<number, Buffer[]>();
  for (const f of frames) {
    const ip = parseIpv4Frame(f);
    if (!ip || ip.protocol !== PROTO_UDP) continue;
    assert.ok(ip.totalLength <= 1500);
    const list = parts.get(ip.id) ?? [];
    const payload = Buffer.from(f.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength));
    list[ip.fragmentOffset / 8] = payload;
    parts.set(ip.id, list);
    if (ip.moreFragments) continue;
    const whole = Buffer.concat(list.filter((x) => x !== undefined));
    const udp = new UdpPacket();
    assert.is(udp.parse(whole, 0, whole.length, OUR_IP, HOST_IP), null);
    out.push({ srcPort: udp.srcPort, dstPort: udp.dstPort, data: Buffer.from(whole.subarray(UDP_HEADER_LEN, udp.length)) });
  }
  return out;
}

test('the echo service answers on port 7, discard on 9 stays silent, both stop cleanly', async () => {
  const { link, clock, stack } = await setup();
  const stop = await startServices(stack, ['echo', 'discard']);
  link.inject(ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_UDP }), udpDatagram(40000, 7, Buffer.from('ping'))));
  link.inject(ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_UDP }), udpDatagram(40000, 9, Buffer.from('gone'))));
  clock.runAll(100);
  const sent = udpSent(link.take());
  assert.equal(sent.map((s) => [s.srcPort, s.dstPort, s.data.toString()]), [[7, 40000, 'ping']]);
  assert.is(stack.udp.counters.rx, 2);
  await stop();
  link.inject(ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_UDP }), udpDatagram(40000, 7, Buffer.from('ping'))));
  // Closed now: the answer is port unreachable.
  const after = link.take().map((f) => parseIpv4Frame(f)!);
  assert.equal(after.map((ip) => ip.protocol), [PROTO_ICMP]);
});

test('a host datagram in out-of-order, duplicated fragments is echoed whole, fragmented by us', async () => {
  const { link, clock, stack } = await setup();
  await startServices(stack, ['echo']);
  const data = Buffer.alloc(8000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 255;
  const frags = fragments(udpDatagram(40001, 7, data), 1480, 0x4242);
  assert.is(frags.length, 6);
  for (const i of [5, 2, 2, 0, 4, 1, 0, 3]) link.inject(frags[i]!);
  clock.runAll(100);
  const out = link.take();
  assert.is(out.length, 6);
  const sent = udpSent(out);
  assert.is(sent.length, 1);
  assert.ok(sent[0]!.data.equals(data));
  assert.is(stack.ipv4.counters.drops['frag-duplicate'], 2);
});

test('an incomplete datagram draws ICMP time exceeded (reassembly) after 30 s, quoting the first fragment', async () => {
  const { link, clock } = await setup();
  const frags = fragments(udpDatagram(40002, 7, Buffer.alloc(3000, 1)), 1480, 0x777);
  link.inject(frags[0]!);
  link.inject(frags[2]!);
  clock.advance(29_000);
  assert.is(link.take().length, 0);
  clock.advance(1_000);
  // (The ARP entry is being refreshed by now too: only IPv4 frames matter here.)
  const out = link.take().filter((f) => parseIpv4Frame(f) !== null);
  assert.is(out.length, 1);
  const ip = parseIpv4Frame(out[0]!)!;
  assert.is(ip.protocol, PROTO_ICMP);
  assert.is(ip.dst, HOST_IP);
  const icmp = new IcmpPacket();
  assert.is(icmp.parse(out[0]!, ip.payloadOffset, ip.payloadLength), null);
  assert.is(icmp.type, ICMP_TIME_EXCEEDED);
  assert.is(icmp.code, TIME_EXCEEDED_REASSEMBLY);
  // The quoted header is the first fragment's: id 0x777, offset 0, more fragments.
  const quoted = out[0]!.subarray(icmp.dataOffset);
  assert.is(quoted.readUInt16BE(4), 0x777);
  assert.is(quoted.readUInt16BE(6), 0x2000);
});

test('without the first fragment the timeout is silent', async () => {
  const { link, clock, stack } = await setup();
  const frags = fragments(udpDatagram(40003, 7, Buffer.alloc(3000, 1)), 1480, 0x778);
  link.inject(frags[1]!);
  clock.advance(31_000);
  assert.is(link.take().filter((f) => parseIpv4Frame(f) !== null).length, 0);
  assert.is(stack.ipv4.counters.drops['frag-timeout'], 1);
});

test('a datagram with a bad UDP checksum is dropped, not answered, not delivered', async () => {
  const { link, clock, stack } = await setup();
  const s = stack.createSocket('udp4').bind(5000);
  let got = 0;
  s.on('message', () => got++);
  const d = udpDatagram(40004, 5000, Buffer.from('hello'));
  d[UDP_HEADER_LEN]! ^= 1;
  link.inject(ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_UDP }), d));
  clock.runAll(100);
  assert.is(got, 0);
  assert.is(link.take().length, 0);
  assert.is(stack.udp.counters.drops['udp-bad-checksum'], 1);
});

/** The ICMP error a router would send about `frame` (the IPv4 datagram in it). */
function icmpErrorAbout(frame: Buffer, type: number, code: number): Buffer {
  const ip = parseIpv4Frame(frame)!;
  const quote = frame.subarray(ip.off, ip.off + Math.min(ip.totalLength, ip.headerLength + 8));
  return ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP }), icmpMessage(type, code, 0, Buffer.from(quote)));
}

const ticks = () => new Promise<void>((resolve) => setImmediate(resolve));

test('ICMP errors reach a connected socket only when Linux calls them hard, with its errno', async () => {
  const cases: [number, number, string | null][] = [
    [ICMP_DEST_UNREACHABLE, UNREACH_PORT, 'ECONNREFUSED'],
    [ICMP_DEST_UNREACHABLE, UNREACH_PROTOCOL, 'ENOPROTOOPT'],
    [ICMP_DEST_UNREACHABLE, UNREACH_FRAG_NEEDED, 'EMSGSIZE'],
    [ICMP_DEST_UNREACHABLE, 13, 'EHOSTUNREACH'], // administratively prohibited
    [ICMP_DEST_UNREACHABLE, UNREACH_HOST, null], // soft: Linux keeps quiet without IP_RECVERR
    [ICMP_DEST_UNREACHABLE, UNREACH_NET, null],
    [ICMP_TIME_EXCEEDED, 0, null],
    [ICMP_PARAMETER_PROBLEM, 0, 'EPROTO'],
  ];
  for (const [type, code, expected] of cases) {
    const { link, clock, stack } = await setup();
    const connected = stack.createSocket('udp4');
    const errors: string[] = [];
    connected.on('error', (e: Error & { code?: string }) => errors.push(e.code!));
    connected.connect(6000, '10.0.0.1');
    await ticks(); // as on Node, a send while connecting has no port yet
    connected.send('probe');
    clock.runAll(10);
    const [sent] = link.take();
    // The same error about an unconnected socket's datagram is never reported.
    const loose = stack.createSocket('udp4');
    const looseErrors: string[] = [];
    loose.on('error', (e: Error & { code?: string }) => looseErrors.push(e.code!));
    loose.send('probe', 6000, '10.0.0.1');
    clock.runAll(10);
    const [sentLoose] = link.take();
    link.inject(icmpErrorAbout(sent!, type, code));
    link.inject(icmpErrorAbout(sentLoose!, type, code));
    await ticks();
    assert.equal(errors, expected ? [expected] : [], `type ${type} code ${code}`);
    assert.equal(looseErrors, []);
  }
});

test('an ICMP error about another peer or port of ours is not the connected socket\'s', async () => {
  const { link, clock, stack } = await setup();
  const s = stack.createSocket('udp4');
  const errors: string[] = [];
  s.on('error', (e: Error & { code?: string }) => errors.push(e.code!));
  s.connect(6000, '10.0.0.1');
  await ticks();
  s.send('probe');
  clock.runAll(10);
  const [sent] = link.take();
  // The same datagram, as if it had gone to port 6001: not what the socket is connected to.
  const other = Buffer.from(sent!);
  const ip = parseIpv4Frame(other)!;
  other.writeUInt16BE(6001, ip.payloadOffset + 2);
  link.inject(icmpErrorAbout(other, ICMP_DEST_UNREACHABLE, UNREACH_PORT));
  await ticks();
  assert.equal(errors, []);
  assert.is(stack.udp.counters.drops['udp-icmp-no-socket'], 1);
});

test.run();
