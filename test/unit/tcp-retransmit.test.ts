// Retransmission segment by segment: RTO from the measured RTT (RFC 6298), exponential
// backoff, Karn's rule, ETIMEDOUT after the retry limit, fast retransmit and NewReno
// recovery (RFC 5681 3.2, RFC 6582), the loss window after a timeout, and keepalive (RFC
// 1122 4.2.3.6).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, ack, expectSegment, flags, payloadLength, seq, TcpHarness } from '../helpers/tcp-harness.ts';

const MSS = 1460;

test('RTO follows the measured RTT (RFC 6298 2.2) and doubles on each expiry', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: MSS }, {}, 100);
  const conn = h.connection(80)!;
  // First sample R = 100: SRTT = 100, RTTVAR = 50, RTO = 100 + max(4 * 50, 200) = 300.
  assert.is(conn.rtt.srtt, 100);
  assert.is(conn.rtt.rttvar, 50);
  assert.is(conn.rtt.rto, 300);
  o.socket.write('data');
  expectSegment(h.one(), seq(o.iss + 1), payloadLength(4));
  for (const wait of [300, 600, 1200, 2400]) {
    await h.advance(wait - 1);
    h.none();
    await h.advance(1);
    expectSegment(h.one(), seq(o.iss + 1), payloadLength(4));
  }
  // Karn: the ACK of a retransmitted segment gives no sample.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 5, flags: ACK });
  assert.is(conn.rtt.srtt, 100);
  // A fresh segment is timed again: R = 20 gives SRTT = 90 and, the RTT falling by more than
  // the deviation, the finer gain of Linux's tcp_rtt_estimator: 4 mdev = 200 + (80 - 50) / 8.
  o.socket.write('more');
  h.one();
  h.clock.advance(20);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 9, flags: ACK });
  assert.is(conn.rtt.rttvar, (200 + 30 / 8) / 4);
  assert.is(conn.rtt.srtt, 90);
  assert.is(conn.rtt.backoffs, 0);
});

test('after the retry limit the connection fails with ETIMEDOUT', async () => {
  const h = await TcpHarness.create({ tcp: { maxRetries: 3 } });
  const o = await acceptOne(h, 80, 1000, {}, {}, 100);
  let error: (Error & { code?: string; syscall?: string }) | null = null;
  o.socket.on('error', (e) => (error = e));
  o.socket.write('hello');
  let sent = h.sent().length;
  await h.advance(300 + 600 + 1200, 10);
  sent += h.sent().length;
  assert.is(sent, 4, 'the original and three retransmissions');
  assert.is(error, null);
  await h.advance(2400, 10);
  h.none();
  assert.is(error!.code, 'ETIMEDOUT');
  assert.is(error!.syscall, 'read');
  assert.is(h.connection(80), undefined);
});

test('three duplicate ACKs trigger fast retransmit; partial ACKs retransmit the next hole (NewReno)', async () => {
  const h = await TcpHarness.create({ tcp: { congestion: 'newreno' } });
  const o = await acceptOne(h, 80, 1000, { mss: MSS }, {}, 100);
  const conn = h.connection(80)!;
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(10 * MSS, 1));
  // The initial window is ten segments (RFC 6928, as Linux).
  assert.is(h.sent().length, 10);
  const start = o.iss + 1;
  // Segments 1 and 4 are lost: the peer acknowledges 0 with each later segment.
  for (let i = 0; i < 2; i++) h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK });
  h.none();
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK });
  expectSegment(h.one(), seq(start), payloadLength(MSS));
  assert.ok(conn.recovery.inRecovery);
  // ssthresh = FlightSize / 2, cwnd = ssthresh + 3 * SMSS (RFC 5681 3.2 steps 2-3).
  assert.is(conn.cc.ssthresh, 5 * MSS);
  assert.is(conn.cc.cwnd, 8 * MSS);
  // Partial ACK up to the second hole: it is retransmitted at once (RFC 6582 3.2 step 5).
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start + 3 * MSS, flags: ACK });
  expectSegment(h.sent()[0], seq(start + 3 * MSS), payloadLength(MSS));
  assert.ok(conn.recovery.inRecovery);
  // The full ACK ends recovery: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS) (RFC 6582
  // step 6), with nothing left in flight.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start + 10 * MSS, flags: ACK });
  assert.is(conn.recovery.inRecovery, false);
  assert.is(conn.cc.cwnd, 2 * MSS);
  assert.is(h.stack.tcp.counters.fastRetransmits, 1);
});

test('limited transmit (RFC 3042): each of the first two duplicate ACKs sends one new segment', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: MSS }, {}, 100);
  const conn = h.connection(80)!;
  conn.cc.cwnd = 4 * MSS;
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(20 * MSS, 1));
  assert.is(h.sent().length, 4);
  const start = o.iss + 1;
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK });
  expectSegment(h.one(), seq(start + 4 * MSS));
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK });
  expectSegment(h.one(), seq(start + 5 * MSS));
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK });
  expectSegment(h.sent()[0], seq(start), payloadLength(MSS));
  assert.ok(conn.recovery.inRecovery);
});

test('a timeout collapses cwnd to one segment and resends from SND.UNA (go-back-N)', async () => {
  const h = await TcpHarness.create({ tcp: { congestion: 'newreno' } });
  const o = await acceptOne(h, 80, 1000, { mss: MSS }, {}, 100);
  const conn = h.connection(80)!;
  o.socket.write(Buffer.alloc(4 * MSS, 2));
  assert.is(h.sent().length, 4);
  await h.advance(300);
  // Only one segment: the loss window (RFC 5681 3.1).
  expectSegment(h.one(), seq(o.iss + 1), payloadLength(MSS));
  assert.is(conn.cc.cwnd, MSS);
  assert.is(conn.cc.ssthresh, 2 * MSS);
  // Its ACK lets slow start send two more.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1 + MSS, flags: ACK });
  const next = h.sent();
  assert.equal(
    next.map((s) => s.seq - o.iss - 1),
    [MSS, 2 * MSS],
  );
});

test('keepalive: probes with SEQ = SND.NXT - 1 after the idle time; silence ends with ETIMEDOUT', async () => {
  const h = await TcpHarness.create({ tcp: { keepAliveIntervalMs: 1000, keepAliveProbes: 3 } });
  const o = await acceptOne(h);
  let error: (Error & { code?: string }) | null = null;
  o.socket.on('error', (e) => (error = e));
  o.socket.setKeepAlive(true, 5000);
  await h.advance(4999);
  h.none();
  await h.advance(1);
  expectSegment(h.one(), flags(ACK), seq(o.iss), ack(o.peerSeq), payloadLength(0));
  // The peer answers: the connection is alive, the next probe comes after the idle time.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK });
  await h.advance(4999, 100);
  h.none();
  await h.advance(1, 1);
  await h.advance(100, 100);
  expectSegment(h.one(), seq(o.iss));
  // No answer: probes every interval, then the connection is dropped.
  await h.advance(1000);
  expectSegment(h.one(), seq(o.iss));
  await h.advance(1000);
  expectSegment(h.one(), seq(o.iss));
  await h.advance(1000);
  h.none();
  assert.is(error!.code, 'ETIMEDOUT');
});

test.run();
