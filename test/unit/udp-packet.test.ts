// The UDP view: round trips, checksum rules of RFC 768, and a parse that never throws.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { finishChecksum, pseudoHeaderSum, sumBytes } from '../../src/util/checksum.ts';
import { PROTO_UDP } from '../../src/ipv4/ipv4-packet.ts';
import { emitUdpHeader, UDP_HEADER_LEN, UdpPacket } from '../../src/udp/udp-packet.ts';

const arbAddr = fc.integer({ min: 0, max: 0xffffffff });
const arbPort = fc.integer({ min: 0, max: 65535 });

function datagram(src: number, dst: number, sp: number, dp: number, data: Uint8Array): Buffer {
  const buf = Buffer.alloc(UDP_HEADER_LEN + data.length);
  buf.set(data, UDP_HEADER_LEN);
  emitUdpHeader(buf, 0, src, dst, sp, dp, data.length);
  return buf;
}

test('property: emit then parse gives back ports, length and data; the checksum is never 0', () => {
  fc.assert(
    fc.property(arbAddr, arbAddr, arbPort, arbPort, fc.uint8Array({ maxLength: 2000 }), (src, dst, sp, dp, data) => {
      const buf = datagram(src, dst, sp, dp, data);
      const v = new UdpPacket();
      assert.is(v.parse(buf, 0, buf.length, src, dst), null);
      assert.is(v.srcPort, sp);
      assert.is(v.dstPort, dp);
      assert.is(v.length, buf.length);
      assert.is(v.dataLength, data.length);
      assert.ok(buf.subarray(v.dataOffset, v.dataOffset + v.dataLength).equals(data));
      assert.is.not(v.checksum, 0);
    }),
  );
});

test('property: parse never throws on any bytes and any claimed length', () => {
  const v = new UdpPacket();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(400), arbAddr, arbAddr, (bytes, extra, src, dst) => {
      const buf = Buffer.from(bytes);
      const avail = Math.min(buf.length, extra);
      const r = v.parse(buf, 0, avail, src, dst);
      assert.ok(r === null || r === 'udp-short' || r === 'udp-bad-length' || r === 'udp-bad-checksum');
      if (r === null) assert.ok(v.length <= avail && v.length >= UDP_HEADER_LEN);
    }),
  );
});

test('property: one flipped bit outside the length field is always caught by the checksum', () => {
  fc.assert(
    fc.property(arbAddr, arbAddr, arbPort, arbPort, fc.uint8Array({ maxLength: 600 }), fc.nat(), fc.nat(7), (src, dst, sp, dp, data, at, bit) => {
      const buf = datagram(src, dst, sp, dp, data);
      const positions = [...buf.keys()].filter((i) => i !== 4 && i !== 5);
      const i = positions[at % positions.length]!;
      buf[i]! ^= 1 << bit;
      if (buf.readUInt16BE(6) === 0) return; // the flip turned the checksum off: allowed by RFC 768
      assert.is(new UdpPacket().parse(buf, 0, buf.length, src, dst), 'udp-bad-checksum');
    }),
  );
});

test('a computed checksum of 0 is sent as 0xffff (RFC 768)', () => {
  const src = 0x0a000001;
  const dst = 0x0a000002;
  // Choose the last data word so that the one's complement sum is 0xffff, i.e. checksum 0.
  const buf = Buffer.alloc(UDP_HEADER_LEN + 4);
  buf.writeUInt16BE(1000, 0);
  buf.writeUInt16BE(2000, 2);
  buf.writeUInt16BE(buf.length, 4);
  buf.writeUInt16BE(0x1234, 8);
  const partial = 0xffff - (~finishChecksum(sumBytes(buf, 0, buf.length, pseudoHeaderSum(src, dst, PROTO_UDP, buf.length))) & 0xffff);
  buf.writeUInt16BE(partial, 10);
  assert.is(finishChecksum(sumBytes(buf, 0, buf.length, pseudoHeaderSum(src, dst, PROTO_UDP, buf.length))), 0);
  emitUdpHeader(buf, 0, src, dst, 1000, 2000, 4);
  assert.is(buf.readUInt16BE(6), 0xffff);
  assert.is(new UdpPacket().parse(buf, 0, buf.length, src, dst), null);
});

test('checksum 0 means none: accepted whatever the data', () => {
  const buf = datagram(1, 2, 3, 4, Buffer.from('hello'));
  buf.writeUInt16BE(0, 6);
  buf[10]! ^= 0xff;
  assert.is(new UdpPacket().parse(buf, 0, buf.length, 1, 2), null);
});

test('short, bad length and wrong pseudo-header are each dropped with their reason', () => {
  const buf = datagram(1, 2, 3, 4, Buffer.from('hello'));
  const v = new UdpPacket();
  assert.is(v.parse(buf, 0, 7, 1, 2), 'udp-short');
  assert.is(v.parse(buf, 0, buf.length - 1, 1, 2), 'udp-bad-length');
  const b2 = Buffer.from(buf);
  b2.writeUInt16BE(7, 4);
  assert.is(v.parse(b2, 0, b2.length, 1, 2), 'udp-bad-length');
  assert.is(v.parse(buf, 0, buf.length, 1, 3), 'udp-bad-checksum');
  // Trailing bytes beyond the UDP length (IPv4 padding) are allowed and left out.
  const padded = Buffer.concat([buf, Buffer.alloc(4)]);
  assert.is(v.parse(padded, 0, padded.length, 1, 2), null);
  assert.is(v.dataLength, 5);
});

test.run();
