// The log of segments in flight (src/tcp/recovery/sent-log.ts): records per MSS, the marks
// and the pipe (Linux's tcp_packets_in_flight), across the sequence wrap; and its bound, which
// a peer SACKing tiny segments one by one cannot push past.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EVER_RETRANSMITTED, LOST, RETRANS_IN_FLIGHT, SACKED, SentSegments, type DeliverySink } from '../../src/tcp/recovery/sent-log.ts';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, TcpHarness } from '../helpers/tcp-harness.ts';

class Deliveries implements DeliverySink {
  seen: string[] = [];
  delivered(start: number, end: number, sentAt: number, flags: number): void {
    this.seen.push(`${start}-${end}@${sentAt}/${flags}`);
  }
}

test('records: a super-frame is cut per MSS, marks move the pipe', () => {
  const una = 0xffffff00; // across the wrap
  const at = (n: number) => (una + n) >>> 0;
  const log = new SentSegments(1024);
  log.appendSent(una, at(2500), 10, 1000); // one 2,500-byte super-frame: 1000 + 1000 + 500
  assert.is(log.count, 3);
  log.appendSent(at(2500), at(2800), 11, 1000); // a segment of its own, never merged
  assert.is(log.count, 4);
  assert.is(log.endOf(3), at(2800));
  assert.is(log.sentAtOf(3), 11);
  assert.is(log.bytes, 2800);
  assert.is(log.inFlight, 2800);
  const sink = new Deliveries();
  // A SACK covering [1000, 2800) marks the records wholly inside it; a partial cover marks nothing.
  log.sacked(at(1000), at(2800), sink);
  assert.equal(sink.seen, [`${at(1000)}-${at(2000)}@10/0`, `${at(2000)}-${at(2500)}@10/0`, `${at(2500)}-${at(2800)}@11/0`]);
  log.sacked(at(0), at(500), sink);
  assert.is(log.flagsOf(0), 0);
  assert.is(log.sackedBytes, 1800);
  // The first record is lost, then retransmitted: out of the pipe, then back in.
  log.markLost(0);
  assert.is(log.inFlight, 0);
  assert.is(log.nextLost(una), 0);
  log.retransmitted(una, at(1000), 20);
  assert.is(log.flagsOf(0), LOST | RETRANS_IN_FLIGHT | EVER_RETRANSMITTED);
  assert.is(log.inFlight, 1000);
  assert.is(log.nextLost(una), -1, 'being retransmitted');
  // The retransmission is lost too: RACK marks it again, and the next search starts over.
  log.markLost(0);
  assert.ok(log.retransmissionLost);
  assert.is(log.inFlight, 0);
  assert.is(log.nextLost(una), 0);
  // A cumulative ACK in the middle of a record cuts it.
  sink.seen = [];
  log.acknowledge(at(600), sink);
  assert.equal(sink.seen, [`${una}-${at(600)}@20/${LOST | EVER_RETRANSMITTED}`]);
  assert.is(log.startOf(0), at(600));
  assert.is(log.lostBytes, 400);
  log.acknowledge(at(2800), sink);
  assert.is(log.count, 0);
  assert.equal([log.bytes, log.sackedBytes, log.lostBytes, log.retransInFlightBytes], [0, 0, 0, 0]);
});

test('records: a timeout marks all but the SACKed lost; reneging forgets the SACKs; undo forgets the losses', () => {
  const log = new SentSegments(1024);
  log.appendSent(1000, 5000, 1, 1000);
  log.sacked(2000, 3000, new Deliveries());
  log.markAllLost();
  assert.equal([0, 1, 2, 3].map((i) => log.flagsOf(i)), [LOST, SACKED, LOST, LOST]);
  assert.is(log.inFlight, 0);
  log.forgetSacks();
  assert.is(log.sackedBytes, 0);
  log.forgetLosses();
  assert.is(log.inFlight, 4000);
});

test('the log is bounded: a peer SACKing each 1-byte segment stops new data at the bound, not the buffer', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: 1460, sackPermitted: true }, {}, 100);
  const conn = h.connection(80)!;
  o.socket.setNoDelay(true);
  const start = (o.iss + 1) >>> 0;
  o.socket.write(Buffer.alloc(1, 1)); // byte 0: lost, never ACKed
  await h.advance(1);
  h.sent();
  const max = conn.sent.maxRecords;
  const seqs = new Set<number>();
  for (let i = 1; i <= max + 100; i++) {
    o.socket.write(Buffer.alloc(1, 2));
    await h.advance(0);
    for (const s of h.sent()) if (s.payload.length > 0) seqs.add(s.seq);
    // Everything but byte 0 arrived: a SACK of all of it, so no two records can merge.
    h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [(start + 1) >>> 0, (conn.snd.max) >>> 0] });
    for (const s of h.sent()) if (s.payload.length > 0) seqs.add(s.seq);
  }
  assert.ok(conn.sent.count <= max, `${conn.sent.count} records, bound ${max}`);
  assert.ok(conn.sendBuffer.length > 50, 'new data waits in the send buffer');
  assert.ok(seqs.size <= max + 1, `${seqs.size} segments of new data`);
});

test.run();
