// The Internet checksum (RFC 1071) against a plain reference, and the incremental update
// (RFC 1624) against a full recomputation.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { finishChecksum, internetChecksum, pseudoHeaderSum, sumBytes, updateChecksum16, updateChecksum32 } from '../../src/util/checksum.ts';

/** The obvious version: 16-bit big-endian words, an odd last byte padded with zero, fold, complement. */
function referenceChecksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < bytes.length; i += 2) {
    const hi = bytes[i]!;
    const lo = i + 1 < bytes.length ? bytes[i + 1]! : 0;
    sum += hi * 256 + lo;
    while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  }
  return ~sum & 0xffff;
}

const RUNS = { numRuns: 2000 };
const u32 = fc.integer({ min: 0, max: 0xffffffff });

test('internetChecksum equals the reference on any bytes, any offset, odd and even lengths', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(), fc.nat(), (data, a, b) => {
      const off = data.length === 0 ? 0 : a % (data.length + 1);
      const len = (data.length - off === 0) ? 0 : b % (data.length - off + 1);
      const buf = Buffer.from(data);
      assert.is(internetChecksum(buf, off, len), referenceChecksum(data.subarray(off, off + len)));
    }),
    RUNS,
  );
});

test('odd lengths pad the last byte with zero (RFC 1071 4.1)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 999 }).filter((d) => d.length % 2 === 1), (data) => {
      const padded = Buffer.concat([Buffer.from(data), Buffer.from([0])]);
      assert.is(internetChecksum(Buffer.from(data), 0, data.length), internetChecksum(padded, 0, padded.length));
    }),
    RUNS,
  );
  // A known value: RFC 1071 section 3's example bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
  const example = Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.is(internetChecksum(example, 0, 8), ~0xddf2 & 0xffff);
});

test('large data does not overflow the running sum', () => {
  const all = Buffer.alloc(65535, 0xff);
  assert.is(internetChecksum(all, 0, all.length), referenceChecksum(all));
  assert.is(internetChecksum(all, 1, 65534), referenceChecksum(all.subarray(1)));
});

test('an initial sum (pseudo-header) gives the same result as summing it in the data', () => {
  fc.assert(
    fc.property(u32, u32, fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 200 }), (src, dst, proto, data) => {
      const pseudo = Buffer.alloc(12);
      pseudo.writeUInt32BE(src, 0);
      pseudo.writeUInt32BE(dst, 4);
      pseudo[9] = proto;
      pseudo.writeUInt16BE(data.length, 10);
      const whole = Buffer.concat([pseudo, Buffer.from(data)]);
      const sum = pseudoHeaderSum(src, dst, proto, data.length);
      assert.is(finishChecksum(sumBytes(Buffer.from(data), 0, data.length, sum)), referenceChecksum(whole));
    }),
    RUNS,
  );
});

test('a buffer with its checksum inserted sums to zero, and any single bit flip is detected', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 2, maxLength: 400 }), fc.nat(), (data, flip) => {
      const buf = Buffer.concat([Buffer.from([0, 0]), Buffer.from(data)]);
      buf.writeUInt16BE(internetChecksum(buf, 0, buf.length), 0);
      assert.is(internetChecksum(buf, 0, buf.length), 0);
      const bit = flip % (buf.length * 8);
      buf[bit >> 3]! ^= 1 << (bit & 7);
      assert.is.not(internetChecksum(buf, 0, buf.length), 0);
    }),
    RUNS,
  );
});

// RFC 1624 3: eqn. 3 equals a full recomputation except when the new data is all zero (a
// one's complement sum cannot tell +0 from -0 then); a header never is, so the data here
// always keeps a non-zero first word, like an IPv4 header's version byte.
function withNonZeroHead(data: Uint8Array): Buffer {
  const buf = Buffer.from(data);
  buf[0] = buf[0]! | 0x40;
  return buf;
}

test('updateChecksum16 equals a full recomputation', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 300 }), fc.nat(), fc.integer({ min: 0, max: 0xffff }), (data, at, newWord) => {
      const buf = withNonZeroHead(data);
      const words = buf.length >> 1;
      const i = 2 * (1 + (at % (words - 1))); // any word but the first
      const before = internetChecksum(buf, 0, buf.length);
      const oldWord = buf.readUInt16BE(i);
      buf.writeUInt16BE(newWord, i);
      assert.is(updateChecksum16(before, oldWord, newWord), internetChecksum(buf, 0, buf.length));
    }),
    RUNS,
  );
});

test('updateChecksum32 equals a full recomputation (an address or a sequence number changes)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 8, maxLength: 300 }), fc.nat(), u32, (data, at, newValue) => {
      const buf = withNonZeroHead(data);
      const slots = (buf.length >> 1) - 2; // 16-bit aligned positions for 4 bytes after the first word
      const i = 2 * (1 + (at % slots));
      const before = internetChecksum(buf, 0, buf.length);
      const oldValue = buf.readUInt32BE(i);
      buf.writeUInt32BE(newValue, i);
      assert.is(updateChecksum32(before, oldValue, newValue), internetChecksum(buf, 0, buf.length));
    }),
    RUNS,
  );
});

test.run();
