// IPv4 routing, output fragmentation and loopback (RFC 791, RFC 1122 3.3), and ICMP echo
// and errors (RFC 792, RFC 1122 3.2.2) with Linux's rate limits, in virtual time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARP_REPLY, ARP_REQUEST } from '../../src/arp/arp-packet.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import {
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  IcmpPacket,
  UNREACH_PORT,
  UNREACH_PROTOCOL,
} from '../../src/ipv4/icmp-packet.ts';
import { Ipv4Packet, PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { TX_HEADROOM } from '../../src/ipv4/ipv4.ts';
import { BROADCAST_MAC, parseMac } from '../../src/link/ethernet.ts';
import { createStack, type Stack, type StackOptions } from '../../src/stack.ts';
import { arpFrame, icmpMessage, ipv4Frame, ipv4Repr, parseArpFrame, parseIpv4Frame, RecordingLink } from '../helpers/frames.ts';

const OUR_MAC = parseMac('02:00:00:00:00:02')!;
const OUR_IP = parseIpv4('10.0.0.2')!;
const HOST_MAC = parseMac('02:00:00:00:00:01')!;
const HOST_IP = parseIpv4('10.0.0.1')!;
const PROTO_TEST = 253;

async function setup(extra: Partial<StackOptions> = {}) {
  const link = new RecordingLink(extra.mtu ?? 1500);
  const clock = new VirtualClock();
  const stack = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', ...extra });
  link.take();
  return { link, clock, stack };
}

/** Tells the stack the MAC of an on-link address, as an ARP request from it would. */
function teach(link: RecordingLink, ip: number, mac = HOST_MAC): void {
  link.inject(arpFrame(BROADCAST_MAC, { op: ARP_REQUEST, senderMac: mac, senderIp: ip, targetMac: Buffer.alloc(6), targetIp: OUR_IP }));
  link.take();
}

function fromHost(ip: Parameters<typeof ipv4Repr>[0], payload: Buffer, srcMac = HOST_MAC): Buffer {
  return ipv4Frame(OUR_MAC, srcMac, ipv4Repr(ip), payload);
}

function payloadOf(stackSend: (buf: Buffer, off: number, len: number) => unknown, data: Buffer): unknown {
  const buf = Buffer.alloc(TX_HEADROOM + data.length);
  data.copy(buf, TX_HEADROOM);
  return stackSend(buf, TX_HEADROOM, data.length);
}

function sendTest(stack: Stack, dst: number, data: Buffer, opts?: { dontFragment?: boolean }): unknown {
  return payloadOf((b, o, l) => stack.ipv4.send(PROTO_TEST, dst, b, o, l, opts), data);
}

function icmpOf(frame: Buffer): { ip: Ipv4Packet; icmp: IcmpPacket } | null {
  const ip = parseIpv4Frame(frame);
  if (!ip || ip.protocol !== PROTO_ICMP) return null;
  const icmp = new IcmpPacket();
  return icmp.parse(frame, ip.payloadOffset, ip.payloadLength) ? null : { ip, icmp };
}

test('next hop: on-link addresses are resolved directly, others through the gateway; no gateway is ENETUNREACH', async () => {
  const { link, stack } = await setup({ gateway: '10.0.0.1' });
  assert.is(sendTest(stack, parseIpv4('10.0.0.77')!, Buffer.from('x')), null);
  assert.is(parseArpFrame(link.take()[0]!)!.targetIp, parseIpv4('10.0.0.77')!);
  assert.is(sendTest(stack, parseIpv4('192.0.2.9')!, Buffer.from('x')), null);
  assert.is(parseArpFrame(link.take()[0]!)!.targetIp, HOST_IP, 'off-link: ask for the gateway');
  const alone = await setup();
  assert.is(sendTest(alone.stack, parseIpv4('192.0.2.9')!, Buffer.from('x')), 'ENETUNREACH');
  assert.is(alone.link.take().length, 0);
  assert.is(alone.stack.ipv4.counters.drops['ip-no-route'], 1);
  // Once the gateway is known, off-link packets carry its MAC and the real destination.
  teach(link, HOST_IP);
  link.take();
  sendTest(stack, parseIpv4('192.0.2.10')!, Buffer.from('y'));
  const out = link.take().filter((f) => parseIpv4Frame(f));
  const last = out[out.length - 1]!;
  assert.ok(last.subarray(0, 6).equals(HOST_MAC));
  assert.is(parseIpv4Frame(last)!.dst, parseIpv4('192.0.2.10')!);
});

test('createStack with a link takes the link MTU unless told otherwise', async () => {
  const link = new RecordingLink(576);
  const stack = await createStack({ link, clock: new VirtualClock(), ip: '10.0.0.2/24' });
  assert.is(stack.mtu, 576);
  assert.is(stack.ipv4.mtu, 576);
});

test('an unknown protocol is answered with ICMP protocol unreachable quoting the datagram', async () => {
  const { link, stack } = await setup();
  teach(link, HOST_IP);
  const payload = Buffer.from('0123456789abcdef');
  link.inject(fromHost({ src: HOST_IP, dst: OUR_IP, protocol: 200, id: 0x4242, tos: 0x10 }, payload));
  const out = link.take();
  assert.is(out.length, 1);
  const m = icmpOf(out[0]!)!;
  assert.ok(m);
  assert.is(m.ip.dst, HOST_IP);
  assert.is(m.ip.tos, 0xc0 | 0x10, 'precedence 6 with the TOS bits kept (RFC 1812 4.3.2.5)');
  assert.is(m.icmp.type, ICMP_DEST_UNREACHABLE);
  assert.is(m.icmp.code, UNREACH_PROTOCOL);
  const quoted = new Ipv4Packet();
  assert.is(quoted.parse(out[0]!, m.icmp.dataOffset, m.icmp.dataLength), null);
  assert.is(quoted.id, 0x4242);
  assert.is(quoted.protocol, 200);
  assert.ok(out[0]!.subarray(quoted.payloadOffset, quoted.payloadOffset + payload.length).equals(payload));
  assert.is(stack.ipv4.counters.drops['ip-unknown-protocol'], 1);
});

test('errors are rate limited per destination as Linux does: a burst of 6, then 1 per second', async () => {
  const { link, clock, stack } = await setup();
  teach(link, HOST_IP);
  const send = (): void => link.inject(fromHost({ src: HOST_IP, dst: OUR_IP, protocol: 200 }, Buffer.alloc(8)));
  for (let i = 0; i < 10; i++) send();
  assert.is(link.take().length, 6);
  assert.is(stack.icmp.counters.drops['icmp-rate-limited'], 4);
  clock.advance(999);
  send();
  assert.is(link.take().length, 0);
  clock.advance(1);
  send();
  send();
  assert.is(link.take().length, 1, 'one token a second');
  clock.advance(60_000);
  for (let i = 0; i < 10; i++) send();
  // (The neighbour entry has expired meanwhile: an ARP probe goes out too.)
  assert.is(link.take().filter((f) => icmpOf(f)).length, 6, 'the burst never exceeds 6');
});

test('errors are rate limited globally: a burst of 50, then 1000 per second', async () => {
  const { link, clock, stack } = await setup({ gateway: '10.0.0.1' });
  teach(link, HOST_IP);
  // 80 different off-link sources, one datagram each: the per-destination limit never bites.
  const src = (i: number): number => parseIpv4('198.51.100.0')! + i;
  for (let i = 0; i < 80; i++) link.inject(fromHost({ src: src(i), dst: OUR_IP, protocol: 200 }, Buffer.alloc(8)));
  assert.is(link.take().length, 50);
  assert.is(stack.icmp.counters.drops['icmp-rate-limited'], 30);
  // Linux refills the spent credit at most every 20 ms (HZ/50), by 1000/s x elapsed time.
  clock.advance(19);
  for (let i = 80; i < 90; i++) link.inject(fromHost({ src: src(i), dst: OUR_IP, protocol: 200 }, Buffer.alloc(8)));
  assert.is(link.take().length, 0, 'no credit before 20 ms');
  clock.advance(11); // 30 ms since the burst was spent: 30 credits
  for (let i = 90; i < 130; i++) link.inject(fromHost({ src: src(i), dst: OUR_IP, protocol: 200 }, Buffer.alloc(8)));
  assert.is(link.take().length, 30);
  clock.advance(5_000); // a long pause refills to the burst, not beyond
  for (let i = 130; i < 200; i++) link.inject(fromHost({ src: src(i), dst: OUR_IP, protocol: 200 }, Buffer.alloc(8)));
  assert.is(link.take().length, 50);
});

test('never an error about an ICMP error, a broadcast, a non-first fragment, or from a non-unicast source', async () => {
  const { link, stack } = await setup();
  teach(link, HOST_IP);
  const icmp = stack.icmp;
  const view = new Ipv4Packet();
  const offending = (frame: Buffer): Ipv4Packet => {
    assert.is(view.parse(frame, 14, frame.length - 14), null);
    return view;
  };
  // An ICMP error (destination unreachable) as the offending datagram.
  const err = icmpMessage(ICMP_DEST_UNREACHABLE, UNREACH_PORT, 0, Buffer.alloc(28));
  assert.is(icmp.sendError(ICMP_DEST_UNREACHABLE, UNREACH_PROTOCOL, 0, offending(fromHost({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP }, err))), false);
  assert.is(icmp.counters.drops['icmp-error-about-error'], 1);
  // An ICMP echo request may be answered with an error.
  const echo = icmpMessage(ICMP_ECHO_REQUEST, 0, 0, Buffer.alloc(4));
  assert.is(icmp.sendError(ICMP_DEST_UNREACHABLE, UNREACH_PROTOCOL, 0, offending(fromHost({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP }, echo))), true);
  // A non-first fragment.
  assert.is(icmp.sendError(ICMP_DEST_UNREACHABLE, UNREACH_PROTOCOL, 0, offending(fromHost({ src: HOST_IP, dst: OUR_IP, protocol: 200, fragmentOffset: 8 }, Buffer.alloc(8)))), false);
  assert.is(icmp.counters.drops['icmp-error-non-first-fragment'], 1);
  // A first fragment may get one.
  assert.is(icmp.sendError(ICMP_DEST_UNREACHABLE, UNREACH_PROTOCOL, 0, offending(fromHost({ src: HOST_IP, dst: OUR_IP, protocol: 200, moreFragments: true }, Buffer.alloc(8)))), true);
  link.take();
  // A datagram to a broadcast address, received whole: dropped silently.
  for (const dst of ['10.0.0.255', '255.255.255.255'])
    link.inject(ipv4Frame(BROADCAST_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: parseIpv4(dst)!, protocol: 200 }), Buffer.alloc(8)));
  assert.is(link.take().length, 0);
  assert.is(icmp.counters.drops['icmp-error-to-broadcast'], 2);
  // Source 0.0.0.0 or a multicast source.
  assert.is(icmp.sendError(ICMP_DEST_UNREACHABLE, UNREACH_PROTOCOL, 0, offending(fromHost({ src: 0, dst: OUR_IP, protocol: 200 }, Buffer.alloc(8)))), false);
  assert.is(icmp.counters.drops['icmp-error-bad-source'], 1);
  assert.is(link.take().length, 0);
});

test('don\'t fragment and too big gives EMSGSIZE; one byte less goes out whole', async () => {
  const { link, stack } = await setup();
  teach(link, HOST_IP);
  assert.is(sendTest(stack, HOST_IP, Buffer.alloc(1481), { dontFragment: true }), 'EMSGSIZE');
  assert.is(link.take().length, 0);
  assert.is(stack.ipv4.counters.drops['ip-too-big'], 1);
  assert.is(sendTest(stack, HOST_IP, Buffer.alloc(1480), { dontFragment: true }), null);
  const out = link.take();
  assert.is(out.length, 1);
  assert.is(out[0]!.length, 1514);
  assert.ok(parseIpv4Frame(out[0]!)!.dontFragment);
  assert.is(sendTest(stack, HOST_IP, Buffer.alloc(65516)), 'EMSGSIZE', 'beyond the largest datagram');
  assert.is(sendTest(stack, OUR_IP, Buffer.alloc(65516)), 'EMSGSIZE', 'also through the loopback');
});

for (const mtu of [1500, 576, 1006]) {
  test(`output fragmentation at MTU ${mtu}: offsets multiple of 8, MF on all but the last, sizes within the MTU, payload intact`, async () => {
    const { link, stack } = await setup({ mtu });
    teach(link, HOST_IP);
    for (const size of [mtu - 19, 4000, 8 * 1000 + 3, 65515]) {
      const data = Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + size) & 255));
      assert.is(sendTest(stack, HOST_IP, data), null);
      const frames = link.take();
      const pieces = frames.map((f) => parseIpv4Frame(f)!);
      const whole = Buffer.alloc(size);
      let expectOff = 0;
      pieces.forEach((p, i) => {
        assert.ok(p, 'valid IPv4');
        assert.ok(p.totalLength <= mtu, `fragment ${i} fits the MTU`);
        assert.is(p.fragmentOffset % 8, 0);
        assert.is(p.fragmentOffset, expectOff, 'contiguous');
        assert.is(p.moreFragments, i < pieces.length - 1);
        assert.is(p.id, pieces[0]!.id, 'same identification');
        assert.is(p.protocol, PROTO_TEST);
        if (i < pieces.length - 1) assert.is(p.payloadLength % 8, 0);
        p.buf.copy(whole, p.fragmentOffset, p.payloadOffset, p.payloadOffset + p.payloadLength);
        expectOff += p.payloadLength;
      });
      assert.is(expectOff, size);
      assert.ok(whole.equals(data));
      assert.is(pieces.length, Math.ceil(size / ((mtu - 20) & ~7)));
    }
  });
}

test('a 64 KB datagram to an unresolved neighbour waits whole and leaves whole on reply', async () => {
  const { link, stack } = await setup();
  assert.is(sendTest(stack, HOST_IP, Buffer.alloc(65515, 1)), null);
  assert.is(link.take().length, 1, 'one ARP request');
  link.inject(arpFrame(OUR_MAC, { op: ARP_REPLY, senderMac: HOST_MAC, senderIp: HOST_IP, targetMac: OUR_MAC, targetIp: OUR_IP }));
  assert.is(link.take().length, 45);
  assert.is(stack.arp.counters.drops['arp-queue-full'], undefined);
});

test('echo replies for every size up to the MTU, identifier, sequence and payload intact', async () => {
  const { link, stack } = await setup();
  teach(link, HOST_IP);
  for (let size = 0; size <= 1472; size++) {
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = (i + size) & 255;
    const req = icmpMessage(ICMP_ECHO_REQUEST, 0, (0xbeef << 16) | size, data);
    link.inject(fromHost({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_ICMP, tos: 0x10 }, req));
    const out = link.take();
    assert.is(out.length, 1, `size ${size}`);
    const m = icmpOf(out[0]!)!;
    assert.ok(m, `valid reply at size ${size}`);
    assert.is(m.icmp.type, ICMP_ECHO_REPLY);
    assert.is(m.icmp.identifier, 0xbeef);
    assert.is(m.icmp.sequence, size);
    assert.is(m.ip.dst, HOST_IP);
    assert.is(m.ip.src, OUR_IP);
    assert.is(m.ip.tos, 0x10, 'RFC 1122 3.2.2.6: same TOS');
    assert.is(out[0]!.length, 14 + 20 + 8 + size);
    assert.ok(out[0]!.subarray(m.icmp.dataOffset, m.icmp.dataOffset + size).equals(data), `payload at size ${size}`);
  }
  assert.is(stack.icmp.counters.tx, 1473);
});

test('datagrams to our own address loop back on the next turn and never reach the link', async () => {
  const { link, clock, stack } = await setup();
  const got: Buffer[] = [];
  stack.ipv4.register(PROTO_TEST, (ip, off, len) => got.push(Buffer.from(ip.buf.subarray(off, off + len))));
  const data = Buffer.from('to myself');
  assert.is(sendTest(stack, OUR_IP, data), null);
  assert.is(got.length, 0, 'not re-entrant');
  clock.advance(0);
  assert.is(got.length, 1);
  assert.ok(got[0]!.equals(data));
  // An echo request to ourselves is answered through the loopback too.
  const req = icmpMessage(ICMP_ECHO_REQUEST, 0, 0x10001, Buffer.from('ping me'));
  payloadOf((b, o, l) => stack.ipv4.send(PROTO_ICMP, OUR_IP, b, o, l), req);
  clock.advance(0);
  clock.advance(0);
  assert.is(stack.icmp.counters.tx, 1);
  assert.is(stack.icmp.counters.drops['icmp-echo-reply-unsolicited'], 1, 'the reply came back to us');
  assert.is(link.take().length, 0);
});

test('martian sources are dropped: broadcast, multicast, and 0.0.0.0 to a unicast address', async () => {
  const { link, stack } = await setup();
  for (const src of ['255.255.255.255', '224.0.0.1', '10.0.0.255', '0.0.0.0'])
    link.inject(fromHost({ src: parseIpv4(src)!, dst: OUR_IP, protocol: PROTO_ICMP }, icmpMessage(ICMP_ECHO_REQUEST, 0, 1, Buffer.alloc(4))));
  assert.is(stack.ipv4.counters.drops['ip-martian-source'], 4);
  assert.is(link.take().length, 0);
});

test('createStack refuses a gateway off the subnet and a host address equal to ours', async () => {
  const make = (o: Partial<StackOptions>) => createStack({ link: new RecordingLink(), clock: new VirtualClock(), ip: '10.0.0.2/24', ...o });
  for (const [o, text] of [
    [{ gateway: '192.168.1.1' }, 'gateway 192.168.1.1'],
    [{ gateway: '10.0.0.2' }, 'gateway 10.0.0.2'],
    [{ hostIp: '192.168.1.1/24' }, 'hostIp'],
    [{ hostIp: '10.0.0.2/24' }, 'own address'],
  ] as const) {
    let error: unknown = null;
    await make(o).catch((e: unknown) => (error = e));
    assert.ok(error instanceof Error && error.message.includes(text), `${JSON.stringify(o)}: ${String(error)}`);
    assert.is((error as { code?: string }).code, 'ERR_INVALID_ARG_VALUE');
  }
  // A host address on the subnet is the default gateway; an explicit one overrides it.
  const s = await make({ hostIp: '10.0.0.1/24', gateway: '10.0.0.254' });
  assert.is(s.ipv4.gateway, parseIpv4('10.0.0.254')!);
});

test('a handler that throws on a looped-back datagram is counted, not an uncaught exception', async () => {
  const { clock, stack } = await setup();
  stack.ipv4.register(PROTO_TEST, () => {
    throw new Error('bug above');
  });
  sendTest(stack, OUR_IP, Buffer.from('x'));
  clock.advance(0);
  assert.is(stack.ipv4.counters.drops['internal-error: bug above'], 1);
  // The same bug on a frame from the link is caught by the stack's guard.
  const link = stack.link as RecordingLink;
  link.inject(fromHost({ src: HOST_IP, dst: OUR_IP, protocol: PROTO_TEST }, Buffer.from('y')));
  assert.is(stack.counters().ethernet!.drops['internal-error: bug above'], 1);
});

test.run();
