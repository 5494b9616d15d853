// Work per receive batch (the frames one wake-up of the TAP reads): the segments of a batch
// are acknowledged once, at its end, and the data their ACKs let out leaves then, in one go.
// ACKs that RFC 5681 4.2 wants at once (out of order data) still go at once.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, ack, expectSegment, flags, payloadLength, seq, TcpHarness } from '../helpers/tcp-harness.ts';

const MSS = 1460;

test('in a batch as outside one, every second full-sized segment is acknowledged at once (RFC 5681 4.2)', async () => {
  // Quick-ACK mode off, to see the delayed ACK of a lone segment below.
  const h = await TcpHarness.create({ tcp: { maxQuickAcks: 0 } });
  const o = await acceptOne(h);
  o.socket.resume();
  const full = Buffer.alloc(MSS, 1);
  h.link.injectBatch(() => {
    for (let i = 0; i < 6; i++) {
      h.inject({ dstPort: 80, seq: o.peerSeq + i * MSS, ack: o.iss + 1, flags: ACK, payload: full });
      // Not one ACK for the whole batch: a sender clocked by so few ACKs recovers slowly.
      if (i % 2 === 1) expectSegment(h.one(), flags(ACK), ack(o.peerSeq + (i + 1) * MSS));
      else h.none();
    }
  });
  h.none();
  // One segment alone in its batch: the delayed-ACK timer, as before.
  h.inject({ dstPort: 80, seq: o.peerSeq + 6 * MSS, ack: o.iss + 1, flags: ACK, payload: full });
  h.none();
  await h.advance(40);
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 7 * MSS));
});

test('out-of-order segments in a batch still get their duplicate ACKs at once', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  o.socket.resume();
  const full = Buffer.alloc(MSS, 1);
  h.link.injectBatch(() => {
    h.inject({ dstPort: 80, seq: o.peerSeq + MSS, ack: o.iss + 1, flags: ACK, payload: full });
    expectSegment(h.one(), flags(ACK), ack(o.peerSeq));
    h.inject({ dstPort: 80, seq: o.peerSeq + 2 * MSS, ack: o.iss + 1, flags: ACK, payload: full });
    expectSegment(h.one(), flags(ACK), ack(o.peerSeq));
  });
  h.none();
});

test('the ACKs of a batch release their data at its end, with the ACK for data received in the batch', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: MSS }, {}, 100);
  const conn = h.connection(80)!;
  o.socket.resume();
  o.socket.write(Buffer.alloc(30 * MSS, 2));
  assert.is(h.sent().length, 10); // the initial window
  const start = o.iss + 1;
  h.link.injectBatch(() => {
    for (let i = 1; i <= 5; i++) {
      h.inject({ dstPort: 80, seq: o.peerSeq + (i - 1) * MSS, ack: start + 2 * i * MSS, flags: ACK, payload: Buffer.alloc(MSS, 3) });
      // Every second segment's ACK goes at once; the data waits for the batch's end.
      if (i % 2 === 0) expectSegment(h.one(), flags(ACK), payloadLength(0), ack(o.peerSeq + i * MSS));
      else h.none();
    }
  });
  // Slow start grew cwnd by one MSS per ACK: 15 segments may be in flight, 10 were acknowledged.
  const out = h.sent();
  assert.is(out.length, 15);
  for (let i = 0; i < out.length; i++) expectSegment(out[i], seq(start + (10 + i) * MSS), payloadLength(MSS), ack(o.peerSeq + 5 * MSS));
  assert.is(conn.cc.cwnd, 15 * MSS);
});

test.run();
