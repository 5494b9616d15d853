// IPv4 reassembly: properties (any split, order and duplication gives the datagram back
// exactly; memory stays under the caps under random floods) and the Linux rules for
// overlaps, inconsistent ends, oversize datagrams and the timeout.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { LayerCounters } from '../../src/util/counters.ts';
import { ICMP_TIME_EXCEEDED, TIME_EXCEEDED_REASSEMBLY } from '../../src/ipv4/icmp-packet.ts';
import { emitIpv4, IPV4_MIN_HEADER, Ipv4Packet, PROTO_UDP } from '../../src/ipv4/ipv4-packet.ts';
import { FRAGMENT_OVERHEAD, Ipv4Reassembler, type ReassemblyOptions } from '../../src/ipv4/reassembly.ts';

const SRC = 0x0a000001;
const DST = 0x0a000002;

interface Piece {
  start: number;
  data: Buffer;
  more: boolean;
}

/** An IPv4 fragment as it comes off the wire, parsed into its own view. */
function fragment(p: Piece, id = 7, src = SRC, protocol = PROTO_UDP): Ipv4Packet {
  const buf = Buffer.alloc(IPV4_MIN_HEADER + p.data.length);
  emitIpv4(
    buf,
    0,
    { tos: 0, id, dontFragment: false, moreFragments: p.more, fragmentOffset: p.start, ttl: 64, protocol, src, dst: DST },
    p.data.length,
  );
  p.data.copy(buf, IPV4_MIN_HEADER);
  const view = new Ipv4Packet();
  assert.is(view.parse(buf, 0, buf.length), null);
  return view;
}

/** Cuts payload at the given points (rounded to multiples of 8) into pieces. */
function split(payload: Buffer, cuts: number[]): Piece[] {
  const points = [...new Set(cuts.map((c) => c & ~7).filter((c) => c > 0 && c < payload.length))].sort((a, b) => a - b);
  const bounds = [0, ...points, payload.length];
  const pieces: Piece[] = [];
  for (let i = 0; i + 1 < bounds.length; i++)
    pieces.push({ start: bounds[i]!, data: payload.subarray(bounds[i]!, bounds[i + 1]!), more: i + 2 < bounds.length });
  return pieces;
}

function setup(options: ReassemblyOptions = {}) {
  const clock = new VirtualClock();
  const counters = new LayerCounters();
  const errors: { type: number; code: number; quoted: Buffer }[] = [];
  const r = new Ipv4Reassembler(
    clock,
    counters,
    (type, code, _rest, first) => errors.push({ type, code, quoted: Buffer.from(first.buf.subarray(first.off, first.off + first.totalLength)) }),
    options,
  );
  return { clock, counters, errors, r };
}

test('property: any split, order and duplication gives back the datagram exactly, once complete', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 9, maxLength: 4000 }),
      fc.array(fc.nat(4000), { maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      fc.nat(),
      (bytes, cuts, dupPicks, shuffleSeed) => {
        const payload = Buffer.from(bytes);
        const pieces = split(payload, cuts);
        if (pieces.length < 2) return; // not fragmented
        const sequence = [...pieces, ...dupPicks.map((d) => pieces[d % pieces.length]!)];
        // A seeded Fisher-Yates shuffle.
        let s = shuffleSeed;
        for (let i = sequence.length - 1; i > 0; i--) {
          s = (Math.imul(s, 1103515245) + 12345) >>> 0;
          const j = s % (i + 1);
          [sequence[i], sequence[j]] = [sequence[j]!, sequence[i]!];
        }
        const { r } = setup();
        const seen = new Set<Piece>();
        for (const p of sequence) {
          seen.add(p);
          const out = r.add(fragment(p));
          if (seen.size < pieces.length) {
            assert.is(out, null);
            continue;
          }
          assert.ok(out, 'complete once every piece has arrived');
          assert.is(out.isFragment, false);
          assert.is(out.src, SRC);
          assert.is(out.dst, DST);
          assert.is(out.protocol, PROTO_UDP);
          assert.is(out.totalLength, IPV4_MIN_HEADER + payload.length);
          assert.ok(out.buf.subarray(out.payloadOffset, out.payloadOffset + out.payloadLength).equals(payload));
          // The rebuilt header is valid on its own.
          assert.is(new Ipv4Packet().parse(out.buf, out.off, out.totalLength), null);
          assert.is(r.datagrams, 0);
          assert.is(r.bytesHeld, 0);
          return;
        }
        assert.unreachable('never completed');
      },
    ),
    { numRuns: 300 },
  );
});

test('property: random fragment floods never hold more than the caps', () => {
  const maxBytes = 64 * 1024;
  const maxDatagrams = 16;
  const arbFragment = fc.record({
    src: fc.integer({ min: 1, max: 4 }),
    id: fc.integer({ min: 0, max: 40 }),
    start: fc.integer({ min: 0, max: 8000 }).map((n) => n * 8),
    length: fc.integer({ min: 1, max: 1480 }),
    more: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(arbFragment, { minLength: 1, maxLength: 400 }), (frags) => {
      const { r, clock } = setup({ maxBytes, maxDatagrams });
      for (const f of frags) {
        if (f.start + f.length > 65515) continue;
        r.add(fragment({ start: f.start, data: Buffer.alloc(f.length, f.id), more: f.more }, f.id, SRC + f.src));
        assert.ok(r.bytesHeld <= maxBytes, `held ${r.bytesHeld}`);
        assert.ok(r.datagrams <= maxDatagrams);
        clock.advance(10);
      }
      clock.advance(60_000);
      assert.is(r.datagrams, 0);
      assert.is(r.bytesHeld, 0);
    }),
    { numRuns: 200 },
  );
});

test('the default cap is 4 MB: a flood of distinct first fragments evicts the oldest', () => {
  const { r, counters } = setup();
  let maxHeld = 0;
  for (let id = 0; id < 5000; id++) {
    r.add(fragment({ start: 0, data: Buffer.alloc(1480), more: true }, id & 0xffff, SRC + (id >> 16)));
    maxHeld = Math.max(maxHeld, r.bytesHeld);
  }
  assert.ok(maxHeld <= 4 * 1024 * 1024, String(maxHeld));
  assert.ok(counters.drops['frag-evicted']! > 0);
  // The oldest went first: id 0 is gone, the newest is still there.
  const last = r.add(fragment({ start: 1480, data: Buffer.alloc(8), more: false }, 4999));
  assert.ok(last, 'the newest datagram completes');
  assert.is(r.add(fragment({ start: 1480, data: Buffer.alloc(8), more: false }, 0)), null);
});

test('the datagram count is capped too', () => {
  const { r } = setup({ maxDatagrams: 3 });
  for (let id = 0; id < 10; id++) r.add(fragment({ start: 8, data: Buffer.alloc(8), more: true }, id));
  assert.is(r.datagrams, 3);
  assert.is(r.bytesHeld, 3 * (8 + FRAGMENT_OVERHEAD));
});

test('a partly overlapping fragment drops the whole datagram (Linux since 4.19)', () => {
  const { r, counters } = setup();
  assert.is(r.add(fragment({ start: 0, data: Buffer.alloc(16, 1), more: true })), null);
  assert.is(r.add(fragment({ start: 8, data: Buffer.alloc(16, 2), more: true })), null);
  assert.is(counters.drops['frag-overlap'], 1);
  assert.is(r.datagrams, 0);
  // The rest of the original datagram cannot complete it any more.
  assert.is(r.add(fragment({ start: 16, data: Buffer.alloc(8, 3), more: false })), null);
  assert.is(r.datagrams, 1);
});

test('an identical duplicate, or one inside data already held, is ignored and the datagram completes', () => {
  const { r, counters } = setup();
  const a = Buffer.alloc(16, 1);
  r.add(fragment({ start: 0, data: a, more: true }));
  r.add(fragment({ start: 0, data: a, more: true }));
  r.add(fragment({ start: 8, data: Buffer.alloc(8, 9), more: true })); // inside [0, 16): first copy wins
  assert.is(counters.drops['frag-duplicate'], 2);
  const out = r.add(fragment({ start: 16, data: Buffer.alloc(4, 2), more: false }));
  assert.ok(out);
  assert.equal([...out.buf.subarray(out.payloadOffset, out.payloadOffset + 20)], [...Buffer.alloc(16, 1), 2, 2, 2, 2]);
});

test('fragments of different datagrams (id, source, protocol) are kept apart', () => {
  const { r } = setup();
  r.add(fragment({ start: 0, data: Buffer.alloc(8, 1), more: true }, 1));
  r.add(fragment({ start: 0, data: Buffer.alloc(8, 2), more: true }, 2));
  r.add(fragment({ start: 0, data: Buffer.alloc(8, 3), more: true }, 1, SRC + 1));
  r.add(fragment({ start: 0, data: Buffer.alloc(8, 4), more: true }, 1, SRC, 6));
  assert.is(r.datagrams, 4);
  const out = r.add(fragment({ start: 8, data: Buffer.alloc(1, 5), more: false }, 2));
  assert.ok(out);
  assert.equal([...out.buf.subarray(out.payloadOffset, out.payloadOffset + 9)], [2, 2, 2, 2, 2, 2, 2, 2, 5]);
});

test('a second last fragment with a different end, or data past the end, kills the datagram', () => {
  const { r, counters } = setup();
  r.add(fragment({ start: 0, data: Buffer.alloc(8), more: true }));
  r.add(fragment({ start: 16, data: Buffer.alloc(8), more: false }));
  r.add(fragment({ start: 16, data: Buffer.alloc(16), more: false }));
  assert.is(counters.drops['frag-bad-end'], 1);
  assert.is(r.datagrams, 0);
  r.add(fragment({ start: 8, data: Buffer.alloc(8), more: false }, 9));
  r.add(fragment({ start: 16, data: Buffer.alloc(8), more: true }, 9));
  assert.is(counters.drops['frag-beyond-end'], 1);
});

test('a datagram that would exceed 65535 bytes is dropped', () => {
  const { r, counters } = setup();
  assert.is(r.add(fragment({ start: 65512, data: Buffer.alloc(8), more: false })), null);
  assert.is(counters.drops['frag-oversize'], 1);
  assert.is(r.datagrams, 0);
});

test('after 30 s an incomplete datagram is dropped; time exceeded only if the first fragment came', () => {
  const { r, clock, counters, errors } = setup();
  r.add(fragment({ start: 0, data: Buffer.alloc(24, 0xab), more: true }, 1));
  r.add(fragment({ start: 48, data: Buffer.alloc(8), more: false }, 1));
  r.add(fragment({ start: 8, data: Buffer.alloc(8), more: true }, 2)); // no first fragment
  clock.advance(29_999);
  assert.is(r.datagrams, 2);
  assert.is(errors.length, 0);
  clock.advance(1);
  assert.is(r.datagrams, 0);
  assert.is(counters.drops['frag-timeout'], 2);
  assert.is(errors.length, 1);
  assert.is(errors[0]!.type, ICMP_TIME_EXCEEDED);
  assert.is(errors[0]!.code, TIME_EXCEEDED_REASSEMBLY);
  // The quote is the first fragment: its header (id 1, offset 0) and its data.
  const q = new Ipv4Packet();
  assert.is(q.parse(errors[0]!.quoted, 0, errors[0]!.quoted.length), null);
  assert.is(q.id, 1);
  assert.is(q.fragmentOffset, 0);
  assert.ok(q.moreFragments);
  assert.ok(errors[0]!.quoted.subarray(20).equals(Buffer.alloc(24, 0xab)));
});

test('a non-last fragment that is not a multiple of 8 long is trimmed, as Linux does', () => {
  const { r } = setup();
  r.add(fragment({ start: 0, data: Buffer.alloc(13, 1), more: true }));
  const out = r.add(fragment({ start: 8, data: Buffer.alloc(3, 2), more: false }));
  assert.ok(out);
  assert.equal([...out.buf.subarray(out.payloadOffset, out.payloadOffset + out.payloadLength)], [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2]);
});

test.run();
