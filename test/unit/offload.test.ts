// Offloads at the link and IPv4 level (virtio-net header, partial checksums, TCP
// super-frames) and batch-end handlers, over fake links in virtual time.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { foldChecksum, internetChecksum, pseudoHeaderSum } from '../../src/util/checksum.ts';
import { emitIcmp, ICMP_ECHO_REQUEST } from '../../src/ipv4/icmp-packet.ts';
import { IPV4_MIN_HEADER, Ipv4Packet, PROTO_ICMP, PROTO_TCP, PROTO_UDP } from '../../src/ipv4/ipv4-packet.ts';
import { TX_HEADROOM } from '../../src/ipv4/ipv4.ts';
import { emitEthernet, ETH_HEADER_LEN, ETHERTYPE_ARP, parseMac } from '../../src/link/ethernet.ts';
import type { FrameReceiver, Link } from '../../src/link/link.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { CapturingLink, PcapWriter } from '../../src/link/pcap.ts';
import {
  emitVnetHeader,
  emptyRxFrameInfo,
  emptyTxOffload,
  parseVnetHeader,
  type RxFrameInfo,
  type TxOffload,
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_HDR_LEN,
} from '../../src/link/vnet.ts';
import { createStack } from '../../src/stack.ts';
import { ipv4Frame, ipv4Repr } from '../helpers/frames.ts';

const STACK_MAC = parseMac('02:00:00:00:00:02')!;
const HOST_MAC = parseMac('02:00:00:00:00:01')!;
const STACK_IP = parseIpv4('10.0.0.2')!;
const HOST_IP = parseIpv4('10.0.0.1')!;

interface SentFrame {
  frame: Buffer;
  offload: TxOffload;
}

/** A link with offloads, like a TAP with IFF_VNET_HDR: records frames with their request. */
class OffloadLink implements Link {
  readonly mtu = 1500;
  readonly gsoMaxSize = 65535;
  private readonly rxInfo: RxFrameInfo = emptyRxFrameInfo();
  readonly txOffload: TxOffload = emptyTxOffload();
  readonly sent: SentFrame[] = [];
  private receiver: FrameReceiver = () => {};
  send(buf: Buffer, off: number, len: number): void {
    this.sent.push({ frame: Buffer.from(buf.subarray(off, off + len)), offload: { ...this.txOffload } });
  }
  setReceiver(r: FrameReceiver): void {
    this.receiver = r;
  }
  /** Injects a frame with the given offload facts (offsets relative to the frame). */
  inject(frame: Buffer, info: Partial<RxFrameInfo> = {}): void {
    Object.assign(this.rxInfo, emptyRxFrameInfo(), info);
    this.receiver(frame, 0, frame.length, this.rxInfo);
  }
  take(): SentFrame[] {
    return this.sent.splice(0);
  }
  close(): void {}
}

/** A link without offloads that records plain frames. */
class PlainLink implements Link {
  readonly mtu = 1500;
  readonly sent: Buffer[] = [];
  receiver: FrameReceiver = () => {};
  send(buf: Buffer, off: number, len: number): void {
    this.sent.push(Buffer.from(buf.subarray(off, off + len)));
  }
  setReceiver(r: FrameReceiver): void {
    this.receiver = r;
  }
  close(): void {}
}

/** The host asks for us: the stack learns it (an unsolicited reply teaches nothing: arp_accept = 0). */
function arpAsk(): Buffer {
  const ask = arpReply();
  ask.fill(0xff, 0, 6);
  ask.writeUInt16BE(1, 20);
  ask.fill(0, 32, 38);
  return ask;
}

function arpReply(): Buffer {
  const reply = Buffer.alloc(42);
  emitEthernet(reply, 0, STACK_MAC, HOST_MAC, ETHERTYPE_ARP);
  reply.writeUInt16BE(1, 14);
  reply.writeUInt16BE(0x0800, 16);
  reply[18] = 6;
  reply[19] = 4;
  reply.writeUInt16BE(2, 20);
  HOST_MAC.copy(reply, 22);
  reply.writeUInt32BE(HOST_IP, 28);
  STACK_MAC.copy(reply, 32);
  reply.writeUInt32BE(STACK_IP, 38);
  return reply;
}

/** A UDP datagram host -> stack whose checksum field holds only the pseudo-header sum. */
function partialUdpFrame(payload: Buffer): { frame: Buffer; start: number; field: number } {
  const udp = Buffer.alloc(8 + payload.length);
  udp.writeUInt16BE(5000, 0);
  udp.writeUInt16BE(7, 2);
  udp.writeUInt16BE(udp.length, 4);
  payload.copy(udp, 8);
  udp.writeUInt16BE(foldChecksum(pseudoHeaderSum(HOST_IP, STACK_IP, PROTO_UDP, udp.length)), 6);
  const frame = ipv4Frame(STACK_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: STACK_IP, protocol: PROTO_UDP }), udp);
  const start = ETH_HEADER_LEN + IPV4_MIN_HEADER;
  return { frame, start, field: start + 6 };
}

function transportChecksumOk(frame: Buffer, protocol: number): boolean {
  const ip = new Ipv4Packet();
  if (ip.parse(frame, ETH_HEADER_LEN, frame.length - ETH_HEADER_LEN) !== null) return false;
  // ICMP's checksum has no pseudo-header (RFC 792).
  const pseudo = protocol === PROTO_ICMP ? 0 : pseudoHeaderSum(ip.src, ip.dst, protocol, ip.payloadLength);
  return internetChecksum(frame, ip.payloadOffset, ip.payloadLength, pseudo) === 0;
}

test('virtio-net header: emit then parse gives the same offload facts', () => {
  const t: TxOffload = { checksumStart: 34, checksumOffset: 16, gsoType: VNET_GSO_TCPV4, segmentSize: 1448, headerLength: 66 };
  const buf = Buffer.alloc(VNET_HDR_LEN + 70000);
  emitVnetHeader(buf, 0, t);
  assert.is(buf[0], VNET_F_NEEDS_CSUM);
  assert.is(buf[1], VNET_GSO_TCPV4);
  assert.is(buf.readUInt16LE(2), 66);
  assert.is(buf.readUInt16LE(4), 1448);
  const info = emptyRxFrameInfo();
  assert.is(parseVnetHeader(buf, 0, 65000, info), null);
  assert.equal(info, { checksumPartial: true, checksumValid: false, checksumStart: VNET_HDR_LEN + 34, checksumField: VNET_HDR_LEN + 50, segmentSize: 1448 });
  emitVnetHeader(buf, 0, emptyTxOffload());
  assert.ok(buf.subarray(0, VNET_HDR_LEN).equals(Buffer.alloc(VNET_HDR_LEN)));
  assert.is(parseVnetHeader(buf, 0, 60, info), null);
  assert.equal(info, emptyRxFrameInfo());
  buf[0] = VNET_F_DATA_VALID;
  assert.is(parseVnetHeader(buf, 0, 60, info), null);
  assert.ok(info.checksumValid && !info.checksumPartial);
});

test('virtio-net header: checksum offsets beyond the frame are refused', () => {
  const buf = Buffer.alloc(VNET_HDR_LEN + 60);
  emitVnetHeader(buf, 0, { checksumStart: 34, checksumOffset: 30, gsoType: VNET_GSO_NONE, segmentSize: 0, headerLength: 0 });
  assert.is(parseVnetHeader(buf, 0, 60, emptyRxFrameInfo()), 'vnet-bad-checksum-offsets');
  assert.is(parseVnetHeader(buf, 0, 66, emptyRxFrameInfo()), null);
});

test('a partial checksum is completed for a handler that did not opt in', async () => {
  const link = new OffloadLink();
  const stack = await createStack({ link, clock: new VirtualClock(), ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  const seen: { ok: boolean; trusted: boolean }[] = [];
  stack.ipv4.register(PROTO_UDP, (ip, _off, _len, trusted) => {
    seen.push({ ok: transportChecksumOk(ip.buf.subarray(0, ip.off + ip.totalLength), PROTO_UDP), trusted });
  });
  const { frame, start, field } = partialUdpFrame(Buffer.from('hello, partial checksum'));
  assert.not.ok(transportChecksumOk(frame, PROTO_UDP));
  link.inject(frame, { checksumPartial: true, checksumStart: start, checksumField: field });
  assert.equal(seen, [{ ok: true, trusted: false }]);
});

test('a handler that opted in is told the checksum is trusted and sees the bytes untouched', async () => {
  const link = new OffloadLink();
  const stack = await createStack({ link, clock: new VirtualClock(), ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  const seen: { checksum: number; trusted: boolean }[] = [];
  stack.ipv4.register(PROTO_UDP, (ip, off, _len, trusted) => seen.push({ checksum: ip.buf.readUInt16BE(off + 6), trusted }), undefined, {
    checksumOffload: true,
  });
  const { frame, start, field } = partialUdpFrame(Buffer.from('x'.repeat(100)));
  const partial = frame.readUInt16BE(field);
  link.inject(frame, { checksumPartial: true, checksumStart: start, checksumField: field });
  link.inject(frame);
  assert.equal(seen, [
    { checksum: partial, trusted: true },
    { checksum: partial, trusted: false },
  ]);
});

test('partial checksum offsets outside the datagram are dropped and counted', async () => {
  const link = new OffloadLink();
  const stack = await createStack({ link, clock: new VirtualClock(), ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  let calls = 0;
  stack.ipv4.register(PROTO_UDP, () => calls++);
  const { frame } = partialUdpFrame(Buffer.from('abc'));
  link.inject(frame, { checksumPartial: true, checksumStart: 10, checksumField: 16 });
  assert.is(calls, 0);
  assert.is(stack.ipv4.counters.drops['ip-bad-partial-checksum'], 1);
});

test('fragments: said valid, they are reassembled and verified as usual; said partial, dropped', async () => {
  const link = new OffloadLink();
  const stack = await createStack({ link, clock: new VirtualClock(), ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  const got: { length: number; trusted: boolean }[] = [];
  stack.ipv4.register(PROTO_UDP, (_ip, _off, len, trusted) => got.push({ length: len, trusted }), undefined, { checksumOffload: true });
  const udp = Buffer.alloc(8 + 2000, 0x5a);
  udp.writeUInt16BE(5000, 0);
  udp.writeUInt16BE(7, 2);
  udp.writeUInt16BE(udp.length, 4);
  udp.writeUInt16BE(internetChecksum(udp, 0, udp.length, pseudoHeaderSum(HOST_IP, STACK_IP, PROTO_UDP, udp.length)), 6);
  const fragment = (id: number, offset: number, more: boolean, part: Buffer): Buffer =>
    ipv4Frame(STACK_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: STACK_IP, protocol: PROTO_UDP, id, fragmentOffset: offset, moreFragments: more }), part);
  link.inject(fragment(1, 0, true, udp.subarray(0, 1480)), { checksumValid: true });
  link.inject(fragment(1, 1480, false, udp.subarray(1480)), { checksumValid: true });
  assert.equal(got, [{ length: udp.length, trusted: false }]);
  link.inject(fragment(2, 0, true, udp.subarray(0, 1480)), { checksumPartial: true, checksumStart: 34, checksumField: 40 });
  assert.is(stack.ipv4.counters.drops['ip-offload-fragment'], 1);
});

test('ICMP trusts a checksum the kernel validated, and verifies it otherwise', async () => {
  const link = new OffloadLink();
  const stack = await createStack({ link, clock: new VirtualClock(), ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  link.inject(arpAsk());
  link.take();
  const icmp = Buffer.alloc(8 + 32);
  emitIcmp(icmp, 0, { type: ICMP_ECHO_REQUEST, code: 0, rest: 0x10001, data: Buffer.alloc(32, 7) });
  icmp.writeUInt16BE(icmp.readUInt16BE(2) ^ 0xffff, 2); // a wrong checksum
  const frame = ipv4Frame(STACK_MAC, HOST_MAC, ipv4Repr({ src: HOST_IP, dst: STACK_IP, protocol: PROTO_ICMP }), icmp);
  link.inject(frame);
  assert.is(link.take().length, 0);
  assert.is(stack.icmp.counters.drops['icmp-bad-checksum'], 1);
  link.inject(frame, { checksumValid: true });
  const out = link.take();
  assert.is(out.length, 1);
  assert.ok(transportChecksumOk(out[0]!.frame, PROTO_ICMP));
});

/** A TCP segment (header only, no options) + payload in a transmit buffer at TX_HEADROOM. */
function tcpSegment(payloadLength: number): { buf: Buffer; len: number } {
  const buf = Buffer.alloc(TX_HEADROOM + 20 + payloadLength);
  const t = TX_HEADROOM;
  buf.writeUInt16BE(40000, t);
  buf.writeUInt16BE(5001, t + 2);
  buf.writeUInt32BE(1000, t + 4);
  buf.writeUInt32BE(1, t + 8);
  buf[t + 12] = 5 << 4;
  buf[t + 13] = 0x18; // PSH|ACK
  buf.writeUInt16BE(65535, t + 14);
  for (let i = 0; i < payloadLength; i++) buf[t + 20 + i] = (i * 7) & 255;
  return { buf, len: 20 + payloadLength };
}

test('send with checksumField on an offloading link leaves the pseudo-header sum and asks the link', async () => {
  const link = new OffloadLink();
  const stack = await createStack({ link, clock: new VirtualClock(), ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', hostIp: '10.0.0.1/24' });
  link.inject(arpAsk());
  link.take();
  assert.is(stack.gsoMaxSize, 65535);
  assert.ok(stack.offload);
  const small = tcpSegment(100);
  assert.is(stack.ipv4.send(PROTO_TCP, HOST_IP, small.buf, TX_HEADROOM, small.len, { checksumField: 16 }), null);
  const big = tcpSegment(60000);
  assert.is(stack.ipv4.send(PROTO_TCP, HOST_IP, big.buf, TX_HEADROOM, big.len, { checksumField: 16, segmentSize: 1460 }), null);
  const [a, b] = link.take();
  const start = ETH_HEADER_LEN + IPV4_MIN_HEADER;
  assert.equal(a!.offload, { checksumStart: start, checksumOffset: 16, gsoType: VNET_GSO_NONE, segmentSize: 0, headerLength: 0 });
  assert.is(a!.frame.readUInt16BE(start + 16), foldChecksum(pseudoHeaderSum(STACK_IP, HOST_IP, PROTO_TCP, 120)));
  assert.equal(b!.offload, { checksumStart: start, checksumOffset: 16, gsoType: VNET_GSO_TCPV4, segmentSize: 1460, headerLength: start + 20 });
  assert.is(b!.frame.length, ETH_HEADER_LEN + IPV4_MIN_HEADER + 20 + 60000);
  assert.is(b!.frame.readUInt16BE(ETH_HEADER_LEN + 2), IPV4_MIN_HEADER + 20 + 60000);
  // The request is for one frame only.
  assert.equal(link.txOffload, emptyTxOffload());
  // Too big even for segmentation.
  const huge = tcpSegment(65535 - 40 + 1);
  assert.is(stack.ipv4.send(PROTO_TCP, HOST_IP, huge.buf, TX_HEADROOM, huge.len, { checksumField: 16, segmentSize: 1460 }), 'EMSGSIZE');
});

test('without offloads IPv4 computes the checksum and refuses super-frames', async () => {
  const link = new PlainLink();
  const stack = await createStack({ link, clock: new VirtualClock(), ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', hostIp: '10.0.0.1/24' });
  link.receiver(arpAsk(), 0, 42, null);
  link.sent.splice(0);
  assert.is(stack.gsoMaxSize, 1500);
  assert.not.ok(stack.offload);
  const seg = tcpSegment(999);
  assert.is(stack.ipv4.send(PROTO_TCP, HOST_IP, seg.buf, TX_HEADROOM, seg.len, { checksumField: 16 }), null);
  assert.is(link.sent.length, 1);
  assert.ok(transportChecksumOk(link.sent[0]!, PROTO_TCP));
  const big = tcpSegment(3000);
  assert.is(stack.ipv4.send(PROTO_TCP, HOST_IP, big.buf, TX_HEADROOM, big.len, { checksumField: 16, segmentSize: 1460 }), 'EMSGSIZE');
});

test('an unresolved next hop gets a software checksum, not an offload request', async () => {
  const link = new OffloadLink();
  const stack = await createStack({ link, clock: new VirtualClock(), ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', hostIp: '10.0.0.1/24' });
  link.take();
  const seg = tcpSegment(50);
  assert.is(stack.ipv4.send(PROTO_TCP, HOST_IP, seg.buf, TX_HEADROOM, seg.len, { checksumField: 16 }), null);
  assert.is(link.take().length, 1); // the ARP request; the segment waits
  link.inject(arpReply());
  const out = link.take();
  assert.is(out.length, 1);
  assert.is(out[0]!.offload.checksumStart, 0);
  assert.ok(transportChecksumOk(out[0]!.frame, PROTO_TCP));
});

test('pcap capture shows offloaded frames with completed checksums', async () => {
  const file = path.join(os.tmpdir(), `tapstack-offload-${process.pid}.pcap`);
  const inner = new OffloadLink();
  const link = new CapturingLink(inner, new PcapWriter(file), () => 0);
  const stack = await createStack({ link, clock: new VirtualClock(), ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', hostIp: '10.0.0.1/24' });
  assert.is(stack.gsoMaxSize, 65535);
  stack.ipv4.register(PROTO_UDP, () => {}, undefined, { checksumOffload: true });
  inner.inject(arpAsk());
  const big = tcpSegment(30000);
  assert.is(stack.ipv4.send(PROTO_TCP, HOST_IP, big.buf, TX_HEADROOM, big.len, { checksumField: 16, segmentSize: 1460 }), null);
  const { frame, start, field } = partialUdpFrame(Buffer.from('partial in'));
  inner.inject(frame, { checksumPartial: true, checksumStart: start, checksumField: field });
  await link.close();
  const pcap = fs.readFileSync(file);
  fs.unlinkSync(file);
  const frames: Buffer[] = [];
  for (let at = 24; at + 16 <= pcap.length; ) {
    const caplen = pcap.readUInt32LE(at + 8);
    frames.push(pcap.subarray(at + 16, at + 16 + caplen));
    at += 16 + caplen;
  }
  // gratuitous ARP, ARP request in, our reply, the TCP super-frame out, the UDP datagram in
  assert.is(frames.length, 5);
  assert.is(frames[3]!.length, ETH_HEADER_LEN + IPV4_MIN_HEADER + 20 + 30000);
  assert.ok(transportChecksumOk(frames[3]!, PROTO_TCP));
  assert.ok(transportChecksumOk(frames[4]!, PROTO_UDP));
  // The stack's own copy was not changed: it still holds the pseudo-header sum.
  assert.is(inner.sent[2]!.frame.readUInt16BE(ETH_HEADER_LEN + IPV4_MIN_HEADER + 16), foldChecksum(pseudoHeaderSum(STACK_IP, HOST_IP, PROTO_TCP, 30020)));
});

test('batch end: once per batch on a batching link, once per frame otherwise', async () => {
  const clock = new VirtualClock();
  const [a, b] = createLinkPair(clock);
  const stack = await createStack({ link: b, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  const events: string[] = [];
  stack.ipv4.register(PROTO_UDP, () => events.push('frame'));
  const remove = stack.onBatchEnd(() => events.push('end'));
  clock.runAll();
  events.length = 0;
  const { frame } = partialUdpFrame(Buffer.from('one'));
  const fixed = Buffer.from(frame);
  for (let i = 0; i < 3; i++) a.send(fixed, 0, fixed.length);
  clock.runAll();
  assert.equal(events, ['frame', 'frame', 'frame', 'end']);
  remove();
  a.send(fixed, 0, fixed.length);
  clock.runAll();
  assert.equal(events, ['frame', 'frame', 'frame', 'end', 'frame']);

  const plain = new PlainLink();
  const s2 = await createStack({ link: plain, clock: new VirtualClock(), ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
  let ends = 0;
  s2.onBatchEnd(() => ends++);
  plain.receiver(fixed, 0, fixed.length, null);
  plain.receiver(fixed, 0, fixed.length, null);
  assert.is(ends, 2);
});

test.run();
