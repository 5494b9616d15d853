// Wire views: emit then parse gives the same fields, and parse never throws on any bytes.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ARP_LEN, ArpPacket, type ArpRepr, emitArp } from '../../src/arp/arp-packet.ts';
import { internetChecksum } from '../../src/util/checksum.ts';
import { emitIcmp, IcmpPacket, type IcmpRepr } from '../../src/ipv4/icmp-packet.ts';
import { emitIpv4, IPV4_MIN_HEADER, Ipv4Packet, type Ipv4Repr } from '../../src/ipv4/ipv4-packet.ts';
import { emitEthernet, ETH_HEADER_LEN, EthernetFrame } from '../../src/link/ethernet.ts';

const RUNS = { numRuns: 1500 };
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u8 = fc.integer({ min: 0, max: 255 });
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((a) => Buffer.from(a));
/** Bytes placed at a random offset inside a larger buffer, like frames in a receive ring. */
const slack = fc.nat({ max: 64 });

/** Well-formed IPv4 options (RFC 791 3.1): No-op, or type-length-value, padded with End to 4n. */
const ipv4Options = fc
  .array(
    fc.oneof(
      fc.constant(Buffer.from([1])),
      fc
        .tuple(fc.integer({ min: 2, max: 255 }), fc.uint8Array({ maxLength: 10 }))
        .map(([type, value]) => Buffer.concat([Buffer.from([type, 2 + value.length]), Buffer.from(value)])),
    ),
    { maxLength: 6 },
  )
  .map((parts) => {
    const raw = Buffer.concat(parts);
    return Buffer.concat([raw, Buffer.alloc((4 - (raw.length % 4)) % 4)]); // End of options list
  })
  .filter((o) => o.length <= 40);

const ipv4Repr: fc.Arbitrary<Ipv4Repr> = fc.record(
  {
    tos: u8,
    id: u16,
    dontFragment: fc.boolean(),
    moreFragments: fc.boolean(),
    fragmentOffset: fc.integer({ min: 0, max: 0x1fff }).map((n) => n * 8),
    ttl: u8,
    protocol: u8,
    src: u32,
    dst: u32,
    options: ipv4Options,
  },
  { requiredKeys: ['tos', 'id', 'dontFragment', 'moreFragments', 'fragmentOffset', 'ttl', 'protocol', 'src', 'dst'] },
).map((r) => {
  const plain: Ipv4Repr = { ...r }; // fc.record makes prototype-less objects
  if (plain.options && plain.options.length === 0) delete plain.options;
  return plain;
});

function neverThrows(parse: (buf: Buffer, off: number, len: number) => unknown, readAll: () => void): void {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const buf = Buffer.from(bytes);
      const off = a % (buf.length + 1);
      const len = b % (buf.length - off + 1);
      const r = parse(buf, off, len);
      if (r === null) readAll(); // a view that parsed must read its fields without throwing
    }),
    { numRuns: 3000 },
  );
}

test('Ethernet: emit then parse gives the same fields', () => {
  fc.assert(
    fc.property(mac, mac, u16, fc.uint8Array({ maxLength: 100 }), slack, (dst, src, etherType, payload, at) => {
      const buf = Buffer.alloc(at + ETH_HEADER_LEN + payload.length);
      assert.is(emitEthernet(buf, at, dst, src, etherType), ETH_HEADER_LEN);
      buf.set(payload, at + ETH_HEADER_LEN);
      const view = new EthernetFrame();
      assert.is(view.parse(buf, at, ETH_HEADER_LEN + payload.length), null);
      assert.equal(view.toRepr(), { dst, src, etherType });
      assert.is(view.payloadOffset, at + ETH_HEADER_LEN);
      assert.is(view.payloadLength, payload.length);
    }),
    RUNS,
  );
});

test('Ethernet: parse never throws, short frames are dropped', () => {
  const v = new EthernetFrame();
  neverThrows((b, o, l) => v.parse(b, o, l), () => void v.toRepr());
  assert.is(v.parse(Buffer.alloc(13), 0, 13), 'eth-short');
});

test('ARP: emit then parse gives the same fields', () => {
  const arpRepr: fc.Arbitrary<ArpRepr> = fc.record({ op: u16, senderMac: mac, senderIp: u32, targetMac: mac, targetIp: u32 }).map((r) => ({ ...r }));
  fc.assert(
    fc.property(arpRepr, slack, (r, at) => {
      const buf = Buffer.alloc(at + ARP_LEN + 18); // Ethernet pads ARP to 46 bytes
      assert.is(emitArp(buf, at, r), ARP_LEN);
      const view = new ArpPacket();
      assert.is(view.parse(buf, at, ARP_LEN + 18), null);
      assert.equal(view.toRepr(), r);
    }),
    RUNS,
  );
});

test('ARP: parse never throws; short and non-Ethernet/IPv4 packets are dropped with a reason', () => {
  const v = new ArpPacket();
  neverThrows((b, o, l) => v.parse(b, o, l), () => void v.toRepr());
  const good = Buffer.alloc(ARP_LEN);
  emitArp(good, 0, { op: 1, senderMac: Buffer.alloc(6), senderIp: 1, targetMac: Buffer.alloc(6), targetIp: 2 });
  assert.is(v.parse(good, 0, ARP_LEN - 1), 'arp-short');
  for (const at of [0, 2, 4, 5]) {
    const bad = Buffer.from(good);
    bad[at + (at < 4 ? 1 : 0)]! ^= 0x10;
    assert.is(v.parse(bad, 0, ARP_LEN), 'arp-unsupported', `byte ${at}`);
  }
});

test('IPv4 (with options): emit then parse gives the same fields', () => {
  fc.assert(
    fc.property(ipv4Repr, fc.uint8Array({ maxLength: 300 }), slack, fc.nat({ max: 20 }), (r, payload, at, padding) => {
      const hl = IPV4_MIN_HEADER + (r.options?.length ?? 0);
      // The link may pad a frame: bytes after the datagram are not part of it.
      const buf = Buffer.alloc(at + hl + payload.length + padding, 0xee);
      assert.is(emitIpv4(buf, at, r, payload.length), hl);
      buf.set(payload, at + hl);
      const view = new Ipv4Packet();
      assert.is(view.parse(buf, at, hl + payload.length + padding), null);
      assert.equal(view.toRepr(), r);
      assert.is(view.headerLength, hl);
      assert.is(view.totalLength, hl + payload.length);
      assert.is(view.payloadOffset, at + hl);
      assert.is(view.payloadLength, payload.length);
      assert.is(internetChecksum(buf, at, hl), 0);
    }),
    RUNS,
  );
});

test('IPv4: parse never throws on arbitrary bytes, nor on a valid header with random options', () => {
  const v = new Ipv4Packet();
  const readAll = (): void => {
    void v.toRepr();
    assert.ok(v.payloadOffset + v.payloadLength <= v.buf.length);
  };
  neverThrows((b, o, l) => v.parse(b, o, l, false), readAll);
  neverThrows((b, o, l) => v.parse(b, o, l), readAll);
  // Random option bytes under a correct checksum: only the options can be wrong.
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 10 }), fc.uint8Array({ minLength: 40, maxLength: 40 }), (words, junk) => {
      const hl = IPV4_MIN_HEADER + 4 * words;
      const buf = Buffer.alloc(hl);
      emitIpv4(buf, 0, { tos: 0, id: 1, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol: 1, src: 1, dst: 2, options: Buffer.from(junk.subarray(0, 4 * words)) }, 0);
      const r = v.parse(buf, 0, hl);
      assert.ok(r === null || r === 'ip-bad-options', String(r));
      if (r === null) readAll();
    }),
    { numRuns: 3000 },
  );
});

test('IPv4: each defect gets its own drop reason', () => {
  const v = new Ipv4Packet();
  const r: Ipv4Repr = { tos: 0, id: 1, dontFragment: false, moreFragments: false, fragmentOffset: 0, ttl: 64, protocol: 1, src: 1, dst: 2 };
  const make = (options?: Buffer): Buffer => {
    const hl = IPV4_MIN_HEADER + (options?.length ?? 0);
    const b = Buffer.alloc(hl + 8);
    emitIpv4(b, 0, { ...r, options }, 8);
    return b;
  };
  const fixChecksum = (b: Buffer): void => {
    b.writeUInt16BE(0, 10);
    b.writeUInt16BE(internetChecksum(b, 0, (b[0]! & 15) * 4), 10);
  };
  const good = make();
  assert.is(v.parse(good, 0, good.length), null);
  assert.is(v.parse(good, 0, 19), 'ip-short');
  let b = Buffer.from(good);
  b[0] = 0x65;
  assert.is(v.parse(b, 0, b.length), 'ip-version');
  b = Buffer.from(good);
  b[0] = 0x44; // IHL 4 words: shorter than the fixed header
  assert.is(v.parse(b, 0, b.length), 'ip-bad-ihl');
  b = Buffer.from(good);
  b[0] = 0x48; // IHL 32 bytes: beyond the 28 bytes present
  assert.is(v.parse(b, 0, b.length), 'ip-bad-ihl');
  b = Buffer.from(good);
  b.writeUInt16BE(29, 2); // total length beyond the frame
  fixChecksum(b);
  assert.is(v.parse(b, 0, b.length), 'ip-bad-length');
  b.writeUInt16BE(19, 2); // total length shorter than the header
  fixChecksum(b);
  assert.is(v.parse(b, 0, b.length), 'ip-bad-length');
  b = Buffer.from(good);
  b[8]! ^= 1;
  assert.is(v.parse(b, 0, b.length), 'ip-bad-checksum');
  // An option whose length runs past the header, and one with length 1.
  assert.is(v.parse(make(Buffer.from([0x07, 0x09, 4, 0])), 0, 32), 'ip-bad-options');
  assert.is(v.parse(make(Buffer.from([0x07, 0x01, 0, 0])), 0, 32), 'ip-bad-options');
  assert.is(v.parse(make(Buffer.from([0x01, 0x01, 0x01, 0x44])), 0, 32), 'ip-bad-options');
  // End of list stops the walk, whatever follows (RFC 791 3.1).
  assert.is(v.parse(make(Buffer.from([0x00, 0xff, 0xff, 0xff])), 0, 32), null);
});

test('ICMP: emit then parse gives the same fields, and the checksum verifies', () => {
  const icmpRepr: fc.Arbitrary<IcmpRepr> = fc.record({ type: u8, code: u8, rest: u32, data: fc.uint8Array({ maxLength: 1500 }).map((a) => Buffer.from(a)) }).map((r) => ({ ...r }));
  fc.assert(
    fc.property(icmpRepr, slack, fc.nat(), (r, at, flip) => {
      const len = 8 + r.data.length;
      const buf = Buffer.alloc(at + len);
      assert.is(emitIcmp(buf, at, r), len);
      const view = new IcmpPacket();
      assert.is(view.parse(buf, at, len), null);
      assert.equal(view.toRepr(), r);
      assert.is(view.identifier, r.rest >>> 16);
      assert.is(view.sequence, r.rest & 0xffff);
      const bit = flip % (len * 8);
      buf[at + (bit >> 3)]! ^= 1 << (bit & 7);
      assert.is(view.parse(buf, at, len), 'icmp-bad-checksum');
    }),
    RUNS,
  );
});

test('ICMP: parse never throws; truncated messages are dropped', () => {
  const v = new IcmpPacket();
  neverThrows((b, o, l) => v.parse(b, o, l), () => void v.toRepr());
  assert.is(v.parse(Buffer.alloc(7), 0, 7), 'icmp-short');
});

test.run();
