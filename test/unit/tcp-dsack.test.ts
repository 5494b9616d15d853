// D-SACK (RFC 2883): a duplicate segment is reported in the first SACK block of the ACK it
// causes, once; a D-SACK from the peer is counted and does not disturb the scoreboard.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, ack, expectSegment, flags, TcpHarness } from '../helpers/tcp-harness.ts';

test('a duplicate below RCV.NXT is reported first in the next ACK (RFC 2883 4), once', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { sackPermitted: true });
  const s = o.peerSeq;
  h.inject({ dstPort: 80, seq: s, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  h.sent();
  // The same segment again (a spurious retransmission): answered at once with the D-SACK.
  h.inject({ dstPort: 80, seq: s, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  const a = expectSegment(h.one(), flags(ACK), ack(s + 100));
  assert.equal(a.sackBlocks, [s >>> 0, (s + 100) >>> 0]);
  assert.is(h.stack.tcp.counters.dsacksSent, 1);
  // With out-of-order data held as well, the D-SACK comes first and the SACK block after it.
  h.inject({ dstPort: 80, seq: s + 200, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  assert.equal(expectSegment(h.one(), ack(s + 100)).sackBlocks, [(s + 200) >>> 0, (s + 300) >>> 0]);
  h.inject({ dstPort: 80, seq: s + 50, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(50) });
  assert.equal(expectSegment(h.one(), ack(s + 100)).sackBlocks, [(s + 50) >>> 0, (s + 100) >>> 0, (s + 200) >>> 0, (s + 300) >>> 0]);
  // The next ACK carries no D-SACK any more.
  h.inject({ dstPort: 80, seq: s + 400, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  const last = expectSegment(h.one(), ack(s + 100));
  assert.ok(!last.sackBlocks.includes((s + 50) >>> 0), `no D-SACK again: ${last.sackBlocks}`);
});

test('a duplicate of out-of-order data held is reported first, then the block that holds it (RFC 2883 4.2)', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { sackPermitted: true });
  const s = o.peerSeq;
  h.inject({ dstPort: 80, seq: s + 100, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  h.inject({ dstPort: 80, seq: s + 200, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  h.sent();
  h.inject({ dstPort: 80, seq: s + 200, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  assert.equal(expectSegment(h.one(), ack(s)).sackBlocks, [(s + 200) >>> 0, (s + 300) >>> 0, (s + 100) >>> 0, (s + 300) >>> 0]);
  assert.is(h.stack.tcp.counters.dsacksSent, 1);
  // New out-of-order data is no duplicate.
  h.inject({ dstPort: 80, seq: s + 400, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  assert.equal(expectSegment(h.one(), ack(s)).sackBlocks, [(s + 400) >>> 0, (s + 500) >>> 0, (s + 100) >>> 0, (s + 300) >>> 0]);
});

test('without SACK, or with dsack off, no D-SACK is sent', async () => {
  for (const [sack, dsack] of [[false, true], [true, false]] as const) {
    const h = await TcpHarness.create({ tcp: { dsack } });
    const o = await acceptOne(h, 80, 1000, { sackPermitted: sack });
    const s = o.peerSeq;
    h.inject({ dstPort: 80, seq: s, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
    h.sent();
    h.inject({ dstPort: 80, seq: s, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
    assert.equal(expectSegment(h.one(), ack(s + 100)).sackBlocks, []);
    assert.is(h.stack.tcp.counters.dsacksSent, 0);
  }
});

test("the peer's D-SACK (a block at or below its ACK, or inside the next block) is counted, the scoreboard left alone", async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: 1000, sackPermitted: true }, {}, 100);
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(4000, 1));
  h.sent();
  const start = (o.iss + 1) >>> 0;
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start + 2000, flags: ACK, sack: [start, start + 1000] });
  assert.is(h.stack.tcp.counters.dsacksReceived, 1);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start + 2000, flags: ACK, sack: [start + 3000, start + 3500, start + 3000, start + 4000] });
  assert.is(h.stack.tcp.counters.dsacksReceived, 2);
  assert.is(h.connection(80)!.sent.sackedBytes, 1000);
});

test.run();
