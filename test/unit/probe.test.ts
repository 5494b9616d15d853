// The stack's frame probe: every frame in and out, decoded by the layers' views, and nothing
// decoded without a probe.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { ICMP_ECHO_REQUEST } from '../../src/ipv4/icmp-packet.ts';
import { PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { TX_HEADROOM } from '../../src/ipv4/ipv4.ts';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../../src/link/ethernet.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { DecodedFrame, type Probe, type Stack } from '../../src/index.ts';
import { createStack } from '../../src/stack.ts';
import { SYN, ACK } from '../../src/tcp/tcp-segment.ts';
import { icmpMessage } from '../helpers/frames.ts';

/** Keeps a line per frame, and what a check function pulls out of the views during the call. */
class RecordingProbe implements Probe {
  readonly lines: string[] = [];
  readonly facts: Record<string, unknown>[] = [];
  in = 0;
  out = 0;
  constructor(private readonly who: string) {}
  frame(direction: 'in' | 'out', f: DecodedFrame): void {
    if (direction === 'in') this.in++;
    else this.out++;
    this.lines.push(`${f.time} ${this.who} ${direction} ${f.describe()}`);
    const fact: Record<string, unknown> = { direction, len: f.len, error: f.error, type: f.ethernet?.etherType, src: f.srcMac, dst: f.dstMac };
    if (f.arp) Object.assign(fact, { arpOp: f.arp.op, senderIp: f.arp.senderIp, targetIp: f.arp.targetIp });
    if (f.ipv4) Object.assign(fact, { ipSrc: f.ipv4.src, ipDst: f.ipv4.dst, protocol: f.ipv4.protocol, ttl: f.ipv4.ttl });
    if (f.icmp) Object.assign(fact, { icmpType: f.icmp.type, icmpId: f.icmp.identifier, icmpSeq: f.icmp.sequence });
    if (f.udp) Object.assign(fact, { srcPort: f.udp.srcPort, dstPort: f.udp.dstPort, data: f.buf.toString('latin1', f.udp.dataOffset, f.udp.dataOffset + f.udp.dataLength) });
    if (f.tcp) Object.assign(fact, { srcPort: f.tcp.srcPort, dstPort: f.tcp.dstPort, flags: f.tcp.flags, seq: f.tcp.seq, ack: f.tcp.ack, mss: f.tcp.mss, payload: f.tcp.payloadLength });
    this.facts.push(fact);
  }
}

function ping(from: Stack, dst: string, seq: number): void {
  const msg = icmpMessage(ICMP_ECHO_REQUEST, 0, (0x77 << 16) | seq, Buffer.alloc(32, seq));
  const buf = Buffer.alloc(TX_HEADROOM + msg.length);
  msg.copy(buf, TX_HEADROOM);
  from.ipv4.send(PROTO_ICMP, parseIpv4(dst)!, buf, TX_HEADROOM, msg.length);
}

async function twoStacks() {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock, { latencyMs: 1 });
  const a = await createStack({ link: la, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const b = await createStack({ link: lb, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  return { clock, a, b };
}

async function traffic(clock: VirtualClock, a: Stack, b: Stack): Promise<void> {
  ping(a, '10.0.0.2', 1);
  clock.advance(10);
  const sb = b.createSocket('udp4');
  sb.bind(7);
  const sa = a.createSocket('udp4');
  sa.send('hello', 7, '10.0.0.2');
  clock.advance(10);
  await new Promise((r) => setImmediate(r));
  const server = b.createServer((s) => s.resume());
  server.listen(80);
  const client = a.connect(80, '10.0.0.2');
  client.write('GET / HTTP/1.0\r\n\r\n');
  for (let i = 0; i < 20; i++) {
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
  }
  client.destroy();
  server.close();
  sa.close();
  sb.close();
  clock.advance(10);
}

test('the probe sees every frame both ways: its counts are the Ethernet counters', async () => {
  const { clock, a, b } = await twoStacks();
  const pa = new RecordingProbe('A');
  const pb = new RecordingProbe('B');
  // From the start: the gratuitous ARPs went out before; count from here.
  const base = { a: a.ethCounters.toJSON(), b: b.ethCounters.toJSON() };
  a.setProbe(pa);
  b.setProbe(pb);
  await traffic(clock, a, b);
  assert.is(pa.in, a.ethCounters.rx - base.a.rx);
  assert.is(pa.out, a.ethCounters.tx - base.a.tx);
  assert.is(pb.in, b.ethCounters.rx - base.b.rx);
  assert.is(pb.out, b.ethCounters.tx - base.b.tx);
  assert.ok(pa.in > 5 && pa.out > 5, `${pa.in} in, ${pa.out} out`);
  // What A sends, B receives, with the same bytes decoded the same way.
  const outA = pa.lines.filter((l) => l.includes(' A out ')).map((l) => l.split(' out ')[1]!);
  const inB = pb.lines.filter((l) => l.includes(' B in ')).map((l) => l.split(' in ')[1]!);
  assert.equal(inB.filter((l) => !l.startsWith('ARP, Request')), outA.filter((l) => !l.startsWith('ARP, Request')));
});

test('decoded fields and lines for ARP, ICMP echo, UDP and TCP', async () => {
  const { clock, a, b } = await twoStacks();
  clock.advance(10); // the gratuitous ARPs land before the probe is set
  const pa = new RecordingProbe('A');
  a.setProbe(pa);
  await traffic(clock, a, b);
  const A = parseIpv4('10.0.0.1')!;
  const B = parseIpv4('10.0.0.2')!;
  const [arpOut, arpIn, echoOut, echoIn, udpOut] = pa.facts;
  assert.equal(arpOut, { direction: 'out', len: 42, error: null, type: ETHERTYPE_ARP, src: '02:00:00:00:00:01', dst: 'ff:ff:ff:ff:ff:ff', arpOp: 1, senderIp: A, targetIp: B });
  assert.equal(arpIn, { direction: 'in', len: 42, error: null, type: ETHERTYPE_ARP, src: '02:00:00:00:00:02', dst: '02:00:00:00:00:01', arpOp: 2, senderIp: B, targetIp: A });
  assert.equal(echoOut, { direction: 'out', len: 14 + 20 + 40, error: null, type: ETHERTYPE_IPV4, src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02', ipSrc: A, ipDst: B, protocol: 1, ttl: 64, icmpType: 8, icmpId: 0x77, icmpSeq: 1 });
  assert.is(echoIn!.icmpType, 0);
  assert.is(echoIn!.icmpSeq, 1);
  assert.equal(udpOut, { direction: 'out', len: 14 + 20 + 8 + 5, error: null, type: ETHERTYPE_IPV4, src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02', ipSrc: A, ipDst: B, protocol: 17, ttl: 64, srcPort: udpOut!.srcPort, dstPort: 7, data: 'hello' });
  const syn = pa.facts.find((f) => f.flags === SYN)!;
  const synAck = pa.facts.find((f) => f.flags === (SYN | ACK))!;
  assert.is(syn.direction, 'out');
  assert.is(syn.dstPort, 80);
  assert.is(syn.mss, 1460);
  assert.is(synAck.direction, 'in');
  assert.is(synAck.ack, ((syn.seq as number) + 1) >>> 0);
  assert.ok(pa.facts.some((f) => f.direction === 'out' && f.payload === 18), 'the request went out');

  const lines = pa.lines.map((l) => l.replace(/^\S+ A /, ''));
  assert.is(lines[0], 'out ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28');
  assert.is(lines[1], 'in ARP, Reply 10.0.0.2 is-at 02:00:00:00:00:02, length 28');
  assert.is(lines[2], 'out 10.0.0.1 > 10.0.0.2: ICMP echo request, id 119, seq 1, length 40');
  assert.is(lines[3], 'in 10.0.0.2 > 10.0.0.1: ICMP echo reply, id 119, seq 1, length 40');
  assert.is(lines[4], `out 10.0.0.1.${udpOut!.srcPort} > 10.0.0.2.7: UDP, length 5`);
  const synLine = lines.find((l) => l.includes('Flags [S]'))!;
  assert.match(synLine, new RegExp(`^out 10\\.0\\.0\\.1\\.\\d+ > 10\\.0\\.0\\.2\\.80: Flags \\[S\\], seq ${syn.seq}, win \\d+, options \\[mss 1460,sackOK,TS val \\d+ ecr 0,wscale \\d+\\], length 0$`));
  const synAckLine = lines.find((l) => l.includes('Flags [S.]'))!;
  assert.match(synAckLine, new RegExp(`^in 10\\.0\\.0\\.2\\.80 > 10\\.0\\.0\\.1\\.\\d+: Flags \\[S\\.\\], seq \\d+, ack ${synAck.ack}, win \\d+, options \\[.*\\], length 0$`));
  assert.ok(lines.some((l) => /Flags \[P\.\], seq \d+:\d+, ack \d+, win \d+, options \[TS val \d+ ecr \d+\], length 18$/.test(l)), lines.join('\n'));
  // The time is the stack's clock.
  assert.ok(pa.lines.every((l) => Number(l.split(' ')[0]) >= 10));
});

test('broken frames are described with the reason, never thrown', () => {
  const d = new DecodedFrame();
  assert.is(d.decode(Buffer.alloc(10), 0, 10, 0).error, 'eth-short');
  assert.is(d.describe(), 'frame, length 10 [eth-short]');
  const f = Buffer.alloc(60);
  Buffer.from('020000000002020000000001', 'hex').copy(f, 0);
  f.writeUInt16BE(ETHERTYPE_IPV4, 12);
  f[14] = 0x45;
  d.decode(f, 0, 60, 0);
  assert.ok(d.ethernet !== null && d.ipv4 === null && d.error !== null);
  assert.is(d.describe(), `02:00:00:00:00:01 > 02:00:00:00:00:02, IPv4, length 60 [${d.error}]`);
  f.writeUInt16BE(0x86dd, 12);
  assert.is(d.decode(f, 0, 60, 0).describe(), '02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 0x86dd, length 60');
  for (let i = 0; i < 2000; i++) {
    const len = 14 + Math.floor(Math.random() * 80);
    const r = Buffer.alloc(len);
    for (let j = 0; j < len; j++) r[j] = Math.floor(Math.random() * 256);
    r.writeUInt16BE(i % 2 ? ETHERTYPE_IPV4 : ETHERTYPE_ARP, 12);
    if (i % 2) r[14] = 0x45;
    d.decode(r, 0, len, 0).describe();
  }
});

test('without a probe nothing is decoded; setProbe(null) stops it', async () => {
  const { clock, a, b } = await twoStacks();
  const original = DecodedFrame.prototype.decode;
  let calls = 0;
  DecodedFrame.prototype.decode = function (this: DecodedFrame, ...args: Parameters<typeof original>) {
    calls++;
    return original.apply(this, args);
  };
  try {
    await traffic(clock, a, b);
    assert.is(calls, 0);
    const p = new RecordingProbe('A');
    a.setProbe(p);
    ping(a, '10.0.0.2', 2);
    clock.advance(10);
    assert.is(calls, 2);
    assert.is(p.lines.length, 2);
    a.setProbe(null);
    ping(a, '10.0.0.2', 3);
    clock.advance(10);
    assert.is(calls, 2);
  } finally {
    DecodedFrame.prototype.decode = original;
  }
});

test('a probe that throws is counted, and the frame goes on', async () => {
  const { clock, a, b } = await twoStacks();
  clock.advance(10);
  a.setProbe({
    frame() {
      throw new Error('probe bug');
    },
  });
  ping(a, '10.0.0.2', 1);
  clock.advance(10);
  assert.is(b.icmp.counters.rx, 1);
  assert.ok((a.ethCounters.drops['probe-error: probe bug'] ?? 0) >= 2);
});

test.run();
