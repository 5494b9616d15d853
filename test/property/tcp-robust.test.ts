// The receive path never throws: random segments (any flags, sequence and acknowledgment
// numbers near and far from the connection's, options, payloads) thrown at a listener and
// at established connections never raise an internal error, and the connections' sequence
// variables keep their invariants.

import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seqLe } from '../../src/tcp/seq.ts';
import { acceptOne } from '../helpers/tcp-open.ts';
import { TcpHarness } from '../helpers/tcp-harness.ts';

const segment = fc.record({
  port: fc.constantFrom(80, 81),
  srcPort: fc.constantFrom(40000, 40001),
  seqOffset: fc.oneof(fc.integer({ min: -70_000, max: 70_000 }), fc.integer({ min: 0, max: 0xffffffff })),
  ackOffset: fc.oneof(fc.integer({ min: -70_000, max: 70_000 }), fc.integer({ min: 0, max: 0xffffffff })),
  flags: fc.integer({ min: 0, max: 255 }),
  window: fc.integer({ min: 0, max: 0xffff }),
  payload: fc.uint8Array({ maxLength: 1400 }),
  mss: fc.option(fc.integer({ min: 0, max: 0xffff }), { nil: undefined }),
  windowScale: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
  ts: fc.option(fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff })), { nil: undefined }),
  sack: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 8 }).map((a) => a.slice(0, a.length - (a.length % 2))),
  advanceMs: fc.integer({ min: 0, max: 3000 }),
});

const totals = { segments: 0, sent: 0 };

test('random segments never throw and keep SND.UNA <= SND.NXT <= SND.MAX', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(segment, { minLength: 20, maxLength: 60 }), fc.boolean(), async (segments, sack) => {
      const h = await TcpHarness.create({ tcp: { maxSynBacklog: 4 } });
      const o = await acceptOne(h, 80, 1000, sack ? { sackPermitted: true, ts: [1, 0] } : {});
      o.socket.on('error', () => {});
      o.socket.write(Buffer.alloc(20_000, 1));
      for (const s of segments) {
        const conn = h.connection(80, s.srcPort);
        const baseSeq = conn ? conn.rcv.nxt : 1000;
        const baseAck = conn ? conn.snd.una : 0;
        h.inject({
          dstPort: s.port,
          srcPort: s.srcPort,
          seq: (baseSeq + s.seqOffset) >>> 0,
          ack: (baseAck + s.ackOffset) >>> 0,
          flags: s.flags,
          window: s.window,
          payload: Buffer.from(s.payload),
          mss: s.mss,
          windowScale: s.windowScale,
          ts: s.ts,
          sack: s.sack.length > 0 ? s.sack : undefined,
        });
        await h.advance(s.advanceMs, 500);
        for (const c of h.stack.tcp.all()) {
          assert.ok(seqLe(c.snd.una, c.snd.nxt) && seqLe(c.snd.nxt, c.snd.max), `${c.state} una ${c.snd.una} nxt ${c.snd.nxt} max ${c.snd.max}`);
          assert.ok(seqLe(c.rcv.nxt, c.rcv.adv), `${c.state} rcvNxt ${c.rcv.nxt} rcvAdv ${c.rcv.adv}`);
        }
        h.sent();
      }
      totals.segments += h.stack.tcp.counters.rx;
      totals.sent += h.stack.tcp.counters.tx;
      const drops = h.stack.counters().ethernet!.drops;
      const internal = Object.keys(drops).filter((k) => k.startsWith('internal-error'));
      assert.equal(internal, [], JSON.stringify(drops));
    }),
    { numRuns: Number(process.env.TCP_ROBUST_RUNS ?? 150), seed: Number(process.env.TCP_ROBUST_SEED ?? 4242), endOnFailure: true },
  );
  // The segments reached TCP and were answered (guards against a property that tests nothing).
  console.log(`tcp-robust: ${JSON.stringify(totals)}`);
  assert.ok(totals.segments > 1000 && totals.sent > 500);
});

test.run();
