import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { emitIcmp, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IcmpPacket } from '../../src/ipv4/icmp-packet.ts';
import { Ipv4Packet, PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import { EthernetFrame, parseMac } from '../../src/link/ethernet.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { createStack } from '../../src/stack.ts';
import { runFor } from '../helpers/net-services.ts';
import { ipv4Frame, ipv4Repr, RecordingLink } from '../helpers/frames.ts';

const HOST_MAC = parseMac('02:00:00:00:00:01')!;
const HOST_IP = parseIpv4('10.0.0.1')!;

async function setup() {
  const link = new RecordingLink();
  const clock = new VirtualClock();
  const stack = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  link.take(); // the gratuitous ARP
  return { link, clock, stack };
}

function echoRequest(data: Buffer, dst = parseIpv4('10.0.0.2')!, id = 0x1234, seq = 7): Buffer {
  const icmp = Buffer.alloc(8 + data.length);
  emitIcmp(icmp, 0, { type: ICMP_ECHO_REQUEST, code: 0, rest: (id << 16) | seq, data });
  return ipv4Frame(parseMac('02:00:00:00:00:02')!, HOST_MAC, ipv4Repr({ src: HOST_IP, dst, protocol: PROTO_ICMP }), icmp);
}

test('echo request is answered after ARP resolves, with identifier, sequence and data intact', async () => {
  const { link, stack } = await setup();
  const data = Buffer.from(Array.from({ length: 1472 }, (_, i) => i & 255));
  link.inject(echoRequest(data));
  // The stack does not know the host's MAC yet: it must ask first.
  const arp = link.take();
  assert.is(arp.length, 1);
  assert.is(arp[0]!.readUInt16BE(12), 0x0806);
  // Answer the ARP request.
  const reply = Buffer.alloc(42);
  reply.set(parseMac('02:00:00:00:00:02')!, 0);
  HOST_MAC.copy(reply, 6);
  reply.writeUInt16BE(0x0806, 12);
  reply.writeUInt16BE(1, 14);
  reply.writeUInt16BE(0x0800, 16);
  reply[18] = 6;
  reply[19] = 4;
  reply.writeUInt16BE(2, 20);
  HOST_MAC.copy(reply, 22);
  reply.writeUInt32BE(HOST_IP, 28);
  reply.set(parseMac('02:00:00:00:00:02')!, 32);
  reply.writeUInt32BE(parseIpv4('10.0.0.2')!, 38);
  link.inject(reply);
  const out = link.take();
  assert.is(out.length, 1);
  const eth = new EthernetFrame();
  assert.is(eth.parse(out[0]!, 0, out[0]!.length), null);
  assert.ok(out[0]!.subarray(0, 6).equals(HOST_MAC));
  const ip = new Ipv4Packet();
  assert.is(ip.parse(out[0]!, 14, out[0]!.length - 14), null);
  assert.is(ip.dst, HOST_IP);
  const icmp = new IcmpPacket();
  assert.is(icmp.parse(out[0]!, ip.payloadOffset, ip.payloadLength), null);
  assert.is(icmp.type, ICMP_ECHO_REPLY);
  assert.is(icmp.identifier, 0x1234);
  assert.is(icmp.sequence, 7);
  assert.ok(out[0]!.subarray(icmp.dataOffset, icmp.dataOffset + icmp.dataLength).equals(data));
  assert.is(stack.counters().icmp!.tx, 1);
});

test('broadcast echo requests are ignored, as Linux does by default', async () => {
  const { link, stack } = await setup();
  link.inject(echoRequest(Buffer.from('hi'), parseIpv4('10.0.0.255')!));
  assert.is(link.take().length, 0);
  assert.is(stack.icmp.counters.drops['icmp-echo-broadcast'], 1);
});

test('a corrupted echo request is dropped with a reason', async () => {
  const { link, stack } = await setup();
  const f = echoRequest(Buffer.from('hello'));
  f[f.length - 1]! ^= 0xff;
  link.inject(f);
  assert.is(link.take().length, 0);
  assert.is(stack.icmp.counters.drops['icmp-bad-checksum'], 1);
});

test('stack.ping: an echo request out, its reply matched by identifier and sequence; no reply, ETIMEDOUT', async () => {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock, { latencyMs: 2 });
  const a = await createStack({ link: la, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01' });
  const b = await createStack({ link: lb, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  const first = a.ping('10.0.0.2');
  await runFor(clock, 100);
  // The first waited for ARP as well, as ping(8)'s first does; then two crossings of 2 ms.
  assert.ok((await first) > 4);
  const rtts = Promise.all([a.ping('10.0.0.2'), a.ping('10.0.0.2', { size: 1000 })]);
  const lost = a.ping('10.0.0.9', { timeoutMs: 2000 }).then(
    () => 'answered',
    (e: Error & { code?: string }) => e.code,
  );
  await runFor(clock, 3000);
  assert.equal(await rtts, [4, 4]);
  assert.is(await lost, 'ETIMEDOUT');
  assert.is(b.icmp.counters.tx, 3);
  assert.is(a.icmp.counters.drops['icmp-echo-reply-unsolicited'], undefined);
  assert.match(await a.ping('not-an-address').then(String, (e: Error) => e.message), /not an IPv4 address/);
  await a.close();
  await b.close();
});

test.run();
