// Any IGMP message a host on the link may send (random types, codes, lengths, source lists,
// checksums right or wrong) never throws in the stack, never counts an internal error, and
// never makes it send more than one answer per group and query: IGMP state is bounded.
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseIpv4 } from '../../src/ipv4/address.ts';
import { PROTO_IGMP } from '../../src/ipv4/igmp-packet.ts';
import { parseMac } from '../../src/link/ethernet.ts';
import { createStack } from '../../src/stack.ts';
import { internetChecksum } from '../../src/util/checksum.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { ipv4Frame, ipv4Repr, parseIpv4Frame, RecordingLink } from '../helpers/frames.ts';

const HOST_MAC = parseMac('02:00:00:00:00:01')!;
const GROUPS = ['224.0.0.1', '239.1.2.3', '232.1.1.1'].map((g) => parseIpv4(g)!);

const message = fc.record({
  type: fc.constantFrom(0x11, 0x12, 0x16, 0x17, 0x22, 0x00, 0xff),
  code: fc.integer({ min: 0, max: 255 }),
  group: fc.constantFrom(0, ...GROUPS, parseIpv4('10.0.0.9')!),
  tail: fc.uint8Array({ maxLength: 60 }),
  fixChecksum: fc.boolean(),
  dst: fc.constantFrom(...GROUPS),
  src: fc.constantFrom(parseIpv4('10.0.0.1')!, 0),
});

test('random IGMP messages: no throw, no internal error, answers bounded', async () => {
  let answers = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 30 }), async (msgs) => {
      const link = new RecordingLink();
      const clock = new VirtualClock();
      const stack = await createStack({ link, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 3 });
      const s = stack.dgram.createSocket('udp4');
      s.bind(6000);
      s.addMembership('239.1.2.3');
      s.addSourceSpecificMembership('10.0.0.1', '232.1.1.1');
      clock.runAll(5000);
      link.take();
      for (const m of msgs) {
        const body = Buffer.alloc(8 + m.tail.length);
        body[0] = m.type;
        body[1] = m.code;
        body.writeUInt32BE(m.group >>> 0, 4);
        Buffer.from(m.tail).copy(body, 8);
        if (m.fixChecksum) body.writeUInt16BE(internetChecksum(body, 0, body.length), 2);
        const mac = Buffer.from([0x01, 0x00, 0x5e, (m.dst >>> 16) & 0x7f, (m.dst >>> 8) & 0xff, m.dst & 0xff]);
        link.inject(ipv4Frame(mac, HOST_MAC, ipv4Repr({ src: m.src, dst: m.dst, protocol: PROTO_IGMP, ttl: 1 }), body));
        clock.advance(7);
      }
      clock.runAll(600_000);
      const igmpOut = link.take().filter((f) => parseIpv4Frame(f)?.protocol === PROTO_IGMP).length;
      // At most one answer per query for each of our two groups (and a general v3 report).
      answers += igmpOut;
      assert.ok(igmpOut <= 2 * msgs.length, `${igmpOut} IGMP messages for ${msgs.length} in`);
      const counts = stack.counters();
      for (const layer of Object.values(counts)) for (const reason of Object.keys(layer.drops)) assert.not.match(reason, /internal-error/);
      await stack.close();
    }),
    { numRuns: 150 },
  );
  assert.ok(answers > 10, `the queries were answered (${answers} answers)`);
});

test.run();
