// Hardening of IPv4, UDP and the UDP services (issue 10): no packet loops through our own
// address (LAND, self-addressed echo), martian sources and destinations dropped as Linux's
// ip_route_input_slow does, no reflection from services to broadcasts or between two echo
// services, reassembly that checks the total against the first fragment's header, a minimum
// path MTU, and IP IDs per destination. All in virtual time, over in-memory links.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARP_REQUEST } from '../../src/arp/arp-packet.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { ICMP_DEST_UNREACHABLE, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED, UNREACH_FRAG_NEEDED } from '../../src/ipv4/icmp-packet.ts';
import { emitIpv4, IPV4_MIN_HEADER, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../src/ipv4/ipv4-packet.ts';
import { IpIdentGenerator } from '../../src/ipv4/ip-ident.ts';
import { Ipv4Reassembler } from '../../src/ipv4/reassembly.ts';
import { BROADCAST_MAC, parseMac } from '../../src/link/ethernet.ts';
import { startServices } from '../../src/services/index.ts';
import '../../src/services/all.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { emitTcp, newTcpRepr, SYN } from '../../src/tcp/tcp-segment.ts';
import { emitUdpHeader, UDP_HEADER_LEN } from '../../src/udp/udp-packet.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { arpFrame, icmpMessage, ipv4Frame, ipv4Repr, parseIpv4Frame, RecordingLink } from '../helpers/frames.ts';
import { acceptOne } from '../helpers/tcp-open.ts';
import { PEER_IP, PEER_MAC, STACK_IP, STACK_MAC, TcpHarness } from '../helpers/tcp-harness.ts';
import { stackPair } from '../helpers/tcp-pair.ts';

const OUR_MAC = parseMac('02:00:00:00:00:02')!;
const OUR_IP = parseIpv4('10.0.0.2')!;
const HOST_MAC = parseMac('02:00:00:00:00:01')!;
const HOST_IP = parseIpv4('10.0.0.1')!;
const ip = (text: string): number => parseIpv4(text)!;

/**
 * A virtual clock that refuses to run away: a loop through our own address sets a timer per
 * datagram at the same instant, which would never let advance() return. Past `limit` timers
 * it drops them, which ends the loop; the test's counts then fail.
 */
class BoundedClock extends VirtualClock {
  timers = 0;
  constructor(private readonly limit = 100_000) {
    super();
  }
  override setTimer(ms: number, fn: () => void) {
    if (++this.timers > this.limit) return { cancel: () => {} };
    return super.setTimer(ms, fn);
  }
}

/** A stack at 10.0.0.2 on a RecordingLink that knows the host 10.0.0.1 (as stackWithKnownHost). */
async function setup(seed?: number) {
  const link = new RecordingLink();
  const clock = new BoundedClock();
  const stack = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed });
  teachArp(link, HOST_MAC, HOST_IP);
  link.take();
  return { link, clock, stack };
}

/** The host `senderIp` asks for our MAC: the stack learns its MAC (RFC 826 merge). */
function teachArp(link: RecordingLink, senderMac: Buffer, senderIp: number): void {
  link.inject(arpFrame(BROADCAST_MAC, { op: ARP_REQUEST, senderMac, senderIp, targetMac: Buffer.alloc(6), targetIp: OUR_IP }));
}

function udpDatagram(src: number, srcPort: number, dst: number, dstPort: number, data: Buffer): Buffer {
  const d = Buffer.alloc(UDP_HEADER_LEN + data.length);
  data.copy(d, UDP_HEADER_LEN);
  emitUdpHeader(d, 0, src, dst, srcPort, dstPort, data.length);
  return d;
}

function udpFrame(src: number, srcPort: number, dst: number, dstPort: number, data = Buffer.from('x'), dstMac = OUR_MAC): Buffer {
  return ipv4Frame(dstMac, HOST_MAC, ipv4Repr({ src, dst, protocol: PROTO_UDP }), udpDatagram(src, srcPort, dst, dstPort, data));
}

function echoRequestFrame(src: number, dst: number, dstMac = OUR_MAC): Buffer {
  return ipv4Frame(dstMac, HOST_MAC, ipv4Repr({ src, dst, protocol: PROTO_ICMP }), icmpMessage(ICMP_ECHO_REQUEST, 0, 0x12340001, Buffer.from('ping')));
}

/** Frames sent that are IPv4 (ARP refreshes aside). */
function ipv4Sent(link: RecordingLink): Buffer[] {
  return link.take().filter((f) => parseIpv4Frame(f) !== null);
}

test('item 1: a LAND SYN (our address and port to themselves) from the link is a martian source: no loop', async () => {
  const { link, clock, stack } = await setup();
  stack.createServer(() => {}).listen(80);
  clock.advance(0);
  const r = newTcpRepr();
  r.srcPort = 80;
  r.dstPort = 80;
  r.seq = 1000;
  r.flags = SYN;
  r.window = 65535;
  const seg = Buffer.alloc(20);
  emitTcp(seg, 0, r, 0, OUR_IP, OUR_IP);
  link.inject(ipv4Frame(OUR_MAC, HOST_MAC, ipv4Repr({ src: OUR_IP, dst: OUR_IP, protocol: PROTO_TCP }), seg));
  clock.advance(10_000);
  assert.ok(link.take().length < 50, 'frames on the link');
  assert.ok(stack.ipv4.counters.tx < 50, `datagrams sent, loopback included: ${stack.ipv4.counters.tx}`);
  assert.is(stack.ipv4.counters.drops['ip-martian-source'], 1);
  assert.is(stack.tcp.find(80, OUR_IP, 80), undefined);
});

test('item 2: a self-addressed UDP echo datagram (10.0.0.2:7 -> 10.0.0.2:7) from the link is dropped: no loop', async () => {
  const { link, clock, stack } = await setup();
  await startServices(stack, ['echo']);
  link.inject(udpFrame(OUR_IP, 7, OUR_IP, 7));
  clock.advance(10_000);
  assert.ok(link.take().length < 50, 'frames on the link');
  assert.ok(stack.ipv4.counters.tx < 50, `datagrams sent, loopback included: ${stack.ipv4.counters.tx}`);
  assert.is(stack.ipv4.counters.drops['ip-martian-source'], 1);
  assert.is(stack.udp.counters.rx, 0);
});

test('item 2: our own datagrams to our own address still come back through loopback', async () => {
  const { clock, stack } = await setup();
  await startServices(stack, ['echo']);
  const client = stack.createSocket('udp4');
  const got: string[] = [];
  client.on('message', (m) => got.push(m.toString()));
  client.bind(5000);
  clock.advance(0);
  client.send('hello', 7, '10.0.0.2');
  await new Promise((r) => setImmediate(r));
  clock.advance(10);
  await new Promise((r) => setImmediate(r));
  assert.equal(got, ['hello']);
  assert.is(stack.ipv4.counters.drops['ip-martian-source'], undefined);
});

test('item 3: echo requests from martian sources are dropped, not answered (own, 0/8, 127/8, 240/4, multicast, broadcasts)', async () => {
  const { link, clock, stack } = await setup();
  const martians = ['10.0.0.2', '0.0.0.0', '0.1.2.3', '127.0.0.1', '127.255.0.9', '240.0.0.1', '255.255.255.255', '224.0.0.1', '239.1.1.1', '10.0.0.255', '10.0.0.0'];
  for (const src of martians) link.inject(echoRequestFrame(ip(src), OUR_IP));
  // 0.0.0.0 and 0/8 are sources only towards the limited broadcast; other sources to it are checked too.
  link.inject(echoRequestFrame(ip('127.0.0.1'), ip('255.255.255.255'), BROADCAST_MAC));
  clock.advance(1000);
  assert.equal(ipv4Sent(link), []);
  assert.is(stack.ipv4.counters.drops['ip-martian-source'], martians.length + 1);
  assert.is(stack.icmp.counters.rx, 0);
  // A unicast source is still answered.
  link.inject(echoRequestFrame(HOST_IP, OUR_IP));
  clock.advance(10);
  const out = ipv4Sent(link).map((f) => parseIpv4Frame(f)!);
  assert.is(out.length, 1);
  assert.is(out[0]!.buf[out[0]!.payloadOffset], ICMP_ECHO_REPLY);
});

test('item 3: datagrams to martian destinations (0/8, 127/8) from the link are dropped as such', async () => {
  const { link, clock, stack } = await setup();
  await startServices(stack, ['echo']);
  for (const dst of ['127.0.0.1', '127.1.2.3', '0.0.0.0', '0.0.0.7']) {
    link.inject(echoRequestFrame(HOST_IP, ip(dst)));
    link.inject(udpFrame(HOST_IP, 40000, ip(dst), 7));
  }
  clock.advance(1000);
  assert.equal(ipv4Sent(link), []);
  assert.is(stack.ipv4.counters.drops['ip-martian-destination'], 8);
});

test('item 3: a 0.0.0.0 source to the limited broadcast is let through (an address being obtained)', async () => {
  const { link, clock, stack } = await setup();
  const socket = stack.createSocket('udp4');
  const got: string[] = [];
  socket.on('message', (m, rinfo) => got.push(`${rinfo.address} ${m.toString()}`));
  socket.bind(67);
  clock.advance(0);
  link.inject(udpFrame(0, 68, ip('255.255.255.255'), 67, Buffer.from('discover'), BROADCAST_MAC));
  await new Promise((r) => setImmediate(r));
  assert.equal(got, ['0.0.0.0 discover']);
  assert.is(stack.ipv4.counters.drops['ip-martian-source'], undefined);
});

test('item 4: UDP echo and ICMP echo do not answer broadcasts (255.255.255.255, the subnet broadcast)', async () => {
  const { link, clock, stack } = await setup();
  await startServices(stack, ['echo', 'discard']);
  for (const dst of ['255.255.255.255', '10.0.0.255']) {
    link.inject(udpFrame(HOST_IP, 40000, ip(dst), 7, Buffer.from('fraggle'), BROADCAST_MAC));
    link.inject(echoRequestFrame(HOST_IP, ip(dst), BROADCAST_MAC));
  }
  clock.advance(1000);
  assert.equal(ipv4Sent(link), []);
  assert.is(stack.udp.counters.drops['udp-broadcast-no-socket'], 2);
  assert.is(stack.icmp.counters.drops['icmp-echo-broadcast'], 2);
  // Unicast is answered as before.
  link.inject(udpFrame(HOST_IP, 40000, OUR_IP, 7, Buffer.from('hi')));
  clock.advance(10);
  assert.is(ipv4Sent(link).length, 1);
});

test('item 4: UDP echo does not answer datagrams from a built-in service port or port 0 (inetd check_loop)', async () => {
  const { link, clock, stack } = await setup();
  await startServices(stack, ['echo']);
  for (const port of [0, 7, 9, 13, 19, 37]) link.inject(udpFrame(HOST_IP, port, OUR_IP, 7));
  clock.advance(10);
  await new Promise((r) => setImmediate(r));
  clock.advance(10);
  assert.equal(ipv4Sent(link), []);
  assert.is(stack.udp.counters.drops['udp-service-loop'], 6);
});

test('item 4: two echo services, one spoofed as the source to the other, do not ping-pong', async () => {
  const clock = new BoundedClock(1_000_000);
  const pair = await stackPair({ clock });
  const { a, b } = pair;
  await startServices(a, ['echo']);
  await startServices(b, ['echo']);
  const before = a.ipv4.counters.tx + b.ipv4.counters.tx;
  // An attacker on the link sends B a datagram from A:7 to B:7.
  const frame = ipv4Frame(b.mac, a.mac, ipv4Repr({ src: a.ip, dst: b.ip, protocol: PROTO_UDP }), udpDatagram(a.ip, 7, b.ip, 7, Buffer.from('pong')));
  a.link.send(frame, 0, frame.length);
  for (let i = 0; i < 100; i++) {
    clock.advance(50);
    await new Promise((r) => setImmediate(r));
  }
  const sent = a.ipv4.counters.tx + b.ipv4.counters.tx - before;
  assert.ok(sent < 50, `datagrams sent: ${sent}`);
  assert.is(b.udp.counters.drops['udp-service-loop'], 1);
  await a.close();
  await b.close();
});

/** Fragments of one UDP datagram from the host; the first with a header of `firstHeader` bytes. */
function craftedFragments(end: number, firstHeader: number, id: number): Buffer[] {
  const frames: Buffer[] = [];
  const options = Buffer.alloc(firstHeader - IPV4_MIN_HEADER, 1); // No-op options
  const firstLen = (1500 - firstHeader) & ~7;
  const piece = 1480;
  let at = 0;
  while (at < end) {
    const first = at === 0;
    const n = Math.min(first ? firstLen : piece, end - at);
    const more = at + n < end;
    const repr = ipv4Repr({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_UDP, id, fragmentOffset: at, moreFragments: more, ...(first ? { options } : {}) });
    const data = Buffer.alloc(n, 0x5a);
    if (first) emitUdpHeader(data, 0, HOST_IP, OUR_IP, 40000, 9, end - UDP_HEADER_LEN, false);
    frames.push(ipv4Frame(OUR_MAC, HOST_MAC, repr, data));
    at += n;
  }
  return frames;
}

test('item 9: fragments whose total with the first header exceeds 65,535 are dropped (oversized), no throw, no time exceeded', async () => {
  const { link, clock, stack } = await setup();
  const frames = craftedFragments(65_515, 60, 0x999);
  for (const f of frames) link.inject(f);
  const drops = stack.ipv4.counters.drops;
  assert.is(drops['frag-oversize'], 1);
  assert.equal(Object.keys(stack.ethCounters.drops).filter((k) => k.startsWith('internal-error')), []);
  assert.is((stack.ipv4.reassembler as Ipv4Reassembler).datagrams, 0);
  clock.advance(31_000);
  assert.equal(ipv4Sent(link).filter((f) => f[14 + IPV4_MIN_HEADER] === ICMP_TIME_EXCEEDED), []);
  assert.is(drops['frag-timeout'], undefined);
  // With a 20-byte first header the same datagram is within the limit and delivered.
  const ok = craftedFragments(65_515, 20, 0x99a);
  const socket = stack.createSocket('udp4');
  let got = 0;
  socket.on('message', (m) => (got = m.length));
  socket.bind(9);
  clock.advance(0);
  for (const f of ok) link.inject(f);
  await new Promise((r) => setImmediate(r));
  assert.is(got, 65_515 - UDP_HEADER_LEN);
});

test('item 13: an ICMP fragmentation needed cannot lower the path MTU below 552 (Linux min_pmtu)', async () => {
  const h = await TcpHarness.create();
  const { socket, iss } = await acceptOne(h, 80);
  const conn = h.connection(80)!;
  assert.is(conn.snd.mss, 1460);
  socket.write(Buffer.alloc(3000, 1));
  await h.advance(0);
  assert.ok(h.sent().length > 0);
  const quoted = Buffer.alloc(IPV4_MIN_HEADER + 8);
  emitIpv4(quoted, 0, ipv4Repr({ src: STACK_IP, dst: PEER_IP, protocol: PROTO_TCP }), 1460 + 20);
  quoted.writeUInt16BE(80, IPV4_MIN_HEADER);
  quoted.writeUInt16BE(40000, IPV4_MIN_HEADER + 2);
  quoted.writeUInt32BE((iss + 1) >>> 0, IPV4_MIN_HEADER + 4);
  const router = ip('10.0.0.1');
  h.link.inject(ipv4Frame(STACK_MAC, PEER_MAC, ipv4Repr({ src: router, dst: STACK_IP, protocol: PROTO_ICMP }), icmpMessage(ICMP_DEST_UNREACHABLE, UNREACH_FRAG_NEEDED, 68, quoted)));
  assert.is(conn.snd.mss, 552 - 40);
  assert.is(h.stack.icmp.counters.drops['icmp-pmtu-below-min'], 1);
  // A next-hop MTU above the minimum is taken as given.
  h.link.inject(ipv4Frame(STACK_MAC, PEER_MAC, ipv4Repr({ src: router, dst: STACK_IP, protocol: PROTO_ICMP }), icmpMessage(ICMP_DEST_UNREACHABLE, UNREACH_FRAG_NEEDED, 500, quoted)));
  assert.is(conn.snd.mss, 552 - 40);
});

/** The IP IDs of the next `n` UDP datagrams the stack sends to dst. */
function idsTo(stack: Stack, link: RecordingLink, dst: string, n: number): number[] {
  const socket = stack.createSocket('udp4');
  for (let i = 0; i < n; i++) socket.send('x', 9, dst);
  socket.close();
  return link
    .take()
    .map((f) => parseIpv4Frame(f))
    .filter((p) => p !== null && p.protocol === PROTO_UDP && p.dst === ip(dst))
    .map((p) => p!.id);
}

async function idStack(seed: number) {
  const { link, clock, stack } = await setup(seed);
  teachArp(link, parseMac('02:00:00:00:00:03')!, ip('10.0.0.3'));
  link.take();
  return { link, clock, stack };
}

test('item 13: a TSO super-frame reserves one IP ID per segment, as Linux ip_select_ident_segs', () => {
  const ids = new IpIdentGenerator(new VirtualClock(), OUR_IP, 3);
  const first = ids.reserve(HOST_IP, PROTO_TCP, 5);
  assert.is(ids.reserve(HOST_IP, PROTO_TCP), (first + 5) & 0xffff);
});

test('item 13: IP IDs are per destination (Linux ip_idents): traffic to one does not advance another, same per seed', async () => {
  const one = await idStack(5);
  await new Promise((r) => setImmediate(r));
  const first = idsTo(one.stack, one.link, '10.0.0.3', 3);
  await new Promise((r) => setImmediate(r));
  idsTo(one.stack, one.link, '10.0.0.1', 100);
  await new Promise((r) => setImmediate(r));
  const then = idsTo(one.stack, one.link, '10.0.0.3', 3);
  await new Promise((r) => setImmediate(r));
  const all = [...first, ...then];
  assert.is(all.length, 6);
  for (let i = 1; i < all.length; i++) assert.is(all[i], (all[0]! + i) & 0xffff, `ids ${all.join(' ')}`);
  // The same seed gives the same IDs; another seed others.
  const again = await idStack(5);
  await new Promise((r) => setImmediate(r));
  assert.equal(idsTo(again.stack, again.link, '10.0.0.3', 3), first);
  const other = await idStack(6);
  await new Promise((r) => setImmediate(r));
  assert.not.equal(idsTo(other.stack, other.link, '10.0.0.3', 3), first);
});

test.run();
