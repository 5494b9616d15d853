// TCP wire format and arithmetic: sequence numbers modulo 2^32, segment emit/parse round
// trips, parse never throws, and out-of-order reassembly rebuilds any stream.

import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ReassemblyQueue } from '../../src/tcp/reassembly.ts';
import { seqAdd, seqBetween, seqGe, seqGt, seqInWindow, seqLe, seqLt, seqSub } from '../../src/tcp/seq.ts';
import { emitTcp, newTcpRepr, TCP_MIN_HEADER, tcpHeaderLength, TcpSegment } from '../../src/tcp/tcp-segment.ts';

const RUNS = { numRuns: 2000, seed: 0x7c9 };
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
/** Distances below 2^31, where sequence comparisons are defined. */
const distance = fc.integer({ min: 1, max: 0x7fffffff });

test('seq: a + d is after a for 0 < d < 2^31, across the wrap', () => {
  fc.assert(
    fc.property(u32, distance, (a, d) => {
      const b = seqAdd(a, d);
      assert.ok(seqLt(a, b) && seqLe(a, b) && seqGt(b, a) && seqGe(b, a));
      assert.ok(!seqLt(b, a) && !seqGt(a, b));
      assert.is(seqSub(b, a), d);
      assert.ok(seqLe(a, a) && seqGe(a, a) && !seqLt(a, a));
    }),
    RUNS,
  );
});

test('seq: windows and ranges agree with plain arithmetic on the unwrapped numbers', () => {
  fc.assert(
    fc.property(u32, fc.integer({ min: 0, max: 1 << 30 }), fc.integer({ min: -(1 << 30), max: 1 << 30 }), (start, len, off) => {
      const x = seqAdd(start, off);
      assert.is(seqInWindow(x, start, len), off >= 0 && off < len);
      assert.is(seqBetween(start, x, seqAdd(start, len)), off >= 0 && off <= len);
    }),
    RUNS,
  );
});

test('seq: comparisons are antisymmetric and add/sub invert each other', () => {
  fc.assert(
    fc.property(u32, u32, (a, b) => {
      if (a !== b && ((a - b) | 0) !== -0x80000000) assert.is(seqLt(a, b), !seqLt(b, a));
      assert.is(seqAdd(b, seqSub(a, b)), a >>> 0);
    }),
    RUNS,
  );
});

const tcpRepr = fc.record({
  srcPort: u16,
  dstPort: u16,
  seq: u32,
  ack: u32,
  flags: fc.integer({ min: 0, max: 255 }),
  window: u16,
  urgentPointer: u16,
  mss: fc.oneof(fc.constant(-1), u16),
  windowScale: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 14 })),
  sackPermitted: fc.boolean(),
  ts: fc.option(fc.tuple(u32, u32), { nil: undefined }),
  sack: fc.array(fc.tuple(u32, u32), { maxLength: 4 }),
});

test('segment: emit then parse gives the same header, options and payload, at any offset', () => {
  fc.assert(
    fc.property(tcpRepr, fc.uint8Array({ maxLength: 300 }), u32, u32, fc.nat({ max: 40 }), (o, data, src, dst, at) => {
      const r = newTcpRepr();
      Object.assign(r, { ...o, sackBlocks: r.sackBlocks });
      r.hasTimestamp = o.ts !== undefined;
      if (o.ts) [r.tsVal, r.tsEcr] = o.ts;
      r.sackCount = o.sack.length;
      o.sack.forEach(([l, rr], i) => {
        r.sackBlocks[2 * i] = l;
        r.sackBlocks[2 * i + 1] = rr;
      });
      const hl = tcpHeaderLength(r);
      assert.ok(hl >= TCP_MIN_HEADER && hl <= 60 && hl % 4 === 0);
      const buf = Buffer.alloc(at + hl + data.length);
      buf.set(data, at + hl);
      emitTcp(buf, at, r, data.length, src, dst);
      const s = new TcpSegment();
      assert.is(s.parse(buf, at, hl + data.length, src >>> 0, dst >>> 0), null);
      assert.is(s.srcPort, o.srcPort);
      assert.is(s.dstPort, o.dstPort);
      assert.is(s.seq, o.seq);
      assert.is(s.ack, o.ack);
      assert.is(s.flags, o.flags);
      assert.is(s.window, o.window);
      assert.is(s.urgentPointer, o.urgentPointer);
      assert.is(s.mss, o.mss);
      assert.is(s.windowScale, o.windowScale);
      assert.is(s.sackPermitted, o.sackPermitted);
      assert.is(s.hasTimestamp, o.ts !== undefined);
      if (o.ts) assert.equal([s.tsVal, s.tsEcr], o.ts);
      // SACK blocks: as many as fit in 40 bytes after the other options.
      assert.ok(s.sackCount <= o.sack.length);
      for (let i = 0; i < s.sackCount; i++) assert.equal([s.sackBlocks[2 * i], s.sackBlocks[2 * i + 1]], o.sack[i]);
      assert.ok(Buffer.from(buf.subarray(s.payloadOffset, s.payloadOffset + s.payloadLength)).equals(Buffer.from(data)));
      assert.is(s.malformedOptions, false);
      // A flipped bit in the ports, sequence numbers or payload is caught by the checksum.
      const where = data.length > 0 ? hl + ((at * 7) % data.length) : (at * 7) % 12;
      buf[at + where]! ^= 1 << (at & 7);
      assert.is(s.parse(buf, at, hl + data.length, src >>> 0, dst >>> 0), 'tcp-bad-checksum');
    }),
    RUNS,
  );
});

test('segment: parse never throws and never reads outside the segment', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.boolean(), u32, u32, (bytes, verify, src, dst) => {
      const b = Buffer.from(bytes);
      const s = new TcpSegment();
      const bad = s.parse(b, 0, b.length, src, dst, verify);
      if (bad === null) {
        assert.ok(s.headerLength >= TCP_MIN_HEADER && s.headerLength <= b.length);
        assert.ok(s.payloadOffset + s.payloadLength === b.length);
      } else assert.ok(['tcp-short', 'tcp-bad-data-offset', 'tcp-bad-checksum'].includes(bad));
    }),
    { ...RUNS, numRuns: 5000 },
  );
});

test('segment: malformed option lengths end option parsing without failing the segment', () => {
  const s = new TcpSegment();
  const b = Buffer.alloc(24);
  b[12] = 6 << 4;
  b.set([2, 4, 0x05, 0xb4], 20); // MSS 1460, fine
  assert.is(s.parse(b, 0, 24, 0, 0, false), null);
  assert.is(s.mss, 1460);
  b.set([3, 9, 7, 0], 20); // window scale with a length past the header
  assert.is(s.parse(b, 0, 24, 0, 0, false), null);
  assert.is(s.malformedOptions, true);
  assert.is(s.windowScale, -1);
  b.set([8, 1, 0, 0], 20); // length below 2
  assert.is(s.parse(b, 0, 24, 0, 0, false), null);
  assert.is(s.malformedOptions, true);
  b.set([3, 3, 200, 0], 20); // a shift above 14 counts as 14 (RFC 7323 2.3)
  assert.is(s.parse(b, 0, 24, 0, 0, false), null);
  assert.is(s.windowScale, 14);
});

test('reassembly: pieces of a stream in any order, duplicated and overlapping, drain to the stream', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 400 }),
      u32,
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 60 })), { minLength: 1, maxLength: 40 }),
      (stream, isn, cuts) => {
        const data = Buffer.from(stream);
        const q = new ReassemblyQueue(1000);
        let rcvNxt = isn;
        const out: Buffer[] = [];
        let fin = false;
        // Random pieces, then the whole stream once at the end so that everything is covered.
        const pieces = cuts.map(([start, len]) => [start % data.length, len] as const);
        pieces.push([0, data.length]);
        for (const [start, len] of pieces) {
          const end = Math.min(data.length, start + len);
          const pieceSeq = seqAdd(isn, start);
          if (start === 0) {
            // In order: deliver directly, as the connection does, then drain.
            if (seqSub(rcvNxt, isn) >= end) continue;
            const from = seqSub(rcvNxt, isn);
            if (from < end) out.push(data.subarray(from, end));
            rcvNxt = seqAdd(isn, end);
            rcvNxt = q.drain(rcvNxt, (d) => out.push(d), () => (fin = true));
          } else if (seqGt(pieceSeq, rcvNxt)) {
            q.insert(pieceSeq, data, start, end - start, end === data.length);
          } else if (seqLt(pieceSeq, rcvNxt) && seqGt(seqAdd(isn, end), rcvNxt)) {
            const from = seqSub(rcvNxt, isn);
            out.push(data.subarray(from, end));
            rcvNxt = seqAdd(isn, end);
            rcvNxt = q.drain(rcvNxt, (d) => out.push(d), () => (fin = true));
          } else if (pieceSeq === rcvNxt && end > start) {
            out.push(data.subarray(start, end));
            rcvNxt = seqAdd(isn, end);
            rcvNxt = q.drain(rcvNxt, (d) => out.push(d), () => (fin = true));
          }
        }
        assert.ok(Buffer.concat(out).equals(data));
        assert.is(seqSub(rcvNxt, isn), data.length);
        assert.is(q.bytes, 0);
        void fin;
      },
    ),
    RUNS,
  );
});

test.run();
