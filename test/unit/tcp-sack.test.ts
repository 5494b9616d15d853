// SACK (RFC 2018) and SACK-based loss recovery (RFC 6675): negotiation, the blocks we send
// for out-of-order data, the sender's scoreboard, pipe and NextSeg, and recovery segment by
// segment.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SackScoreboard } from '../../src/tcp/recovery/scoreboard.ts';
import { SentSegments } from '../../src/tcp/recovery/sent-log.ts';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, ack, expectSegment, flags, payloadLength, seq, SYN, TcpHarness } from '../helpers/tcp-harness.ts';

const MSS = 1460;

test('scoreboard: blocks mark whole segments, SND.UNA advances past them, blocks outside the window are ignored', () => {
  const s = new SackScoreboard();
  const log = new SentSegments(1024);
  const una = 0xfffff000; // across the wrap
  const at = (n: number) => (una + n) >>> 0;
  log.appendSent(una, at(10_000), 0, 500);
  const sink = { delivered: () => {} };
  const blocks = new Uint32Array([at(3000), at(4000), at(1000), at(2000), at(1900), at(3100)]);
  assert.ok(s.update(log, una, at(10_000), blocks, 3, sink));
  assert.is(log.sackedBytes, 3000); // [1000, 4000)
  // Blocks outside (SND.UNA, SND.MAX] are ignored (a D-SACK, or forged); inside a segment, nothing is marked.
  assert.is(s.update(log, una, at(10_000), new Uint32Array([at(-500), at(-100), at(9000), at(12_000), at(5100), at(5300)]), 3, sink), false);
  log.acknowledge(at(1000), sink);
  assert.ok(log.reneged);
  log.acknowledge(at(2500), sink);
  assert.is(log.sackedBytes, 1500);
  log.acknowledge(at(5000), sink);
  assert.is(log.sackedBytes, 0);
});

test('SACK is negotiated, and out-of-order data is reported with the newest block first', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { sackPermitted: true });
  assert.ok(h.connection(80)!.sackPermitted);
  const s = o.peerSeq;
  h.inject({ dstPort: 80, seq: s + 100, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  let a = expectSegment(h.one(), flags(ACK), ack(s));
  assert.equal(a.sackBlocks, [(s + 100) >>> 0, (s + 200) >>> 0]);
  h.inject({ dstPort: 80, seq: s + 300, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  a = expectSegment(h.one(), flags(ACK), ack(s));
  assert.equal(a.sackBlocks, [(s + 300) >>> 0, (s + 400) >>> 0, (s + 100) >>> 0, (s + 200) >>> 0]);
  h.inject({ dstPort: 80, seq: s, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
  a = expectSegment(h.one(), flags(ACK), ack(s + 200));
  assert.equal(a.sackBlocks, [(s + 300) >>> 0, (s + 400) >>> 0]);
});

test('the blocks after the first repeat the most recently reported ones, not the lowest (RFC 2018 4)', async () => {
  const h = await TcpHarness.create({ tcp: { timestamps: false } });
  const o = await acceptOne(h, 80, 1000, { sackPermitted: true });
  const s = o.peerSeq;
  const send = (off: number) => {
    h.inject({ dstPort: 80, seq: s + off, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(100) });
    return expectSegment(h.one(), flags(ACK), ack(s)).sackBlocks;
  };
  const block = (off: number) => [(s + off) >>> 0, (s + off + 100) >>> 0];
  send(100);
  send(500);
  send(300);
  // 700 arrives: then 300 and 500, in the order they were reported (the lowest would be 100
  // and 300). Three blocks at most, as this stack sends.
  assert.equal(send(700), [...block(700), ...block(300), ...block(500)]);
  // 500 extended by 600: its block is the first, the others keep their recency.
  assert.equal(send(600), [(s + 500) >>> 0, (s + 800) >>> 0, ...block(300), ...block(100)]);
});

test('without the peer offering SACK, no blocks are sent', async () => {
  const h = await TcpHarness.create();
  h.stack.createServer(() => {}).listen(80);
  await h.advance(0);
  h.inject({ dstPort: 80, seq: 1, flags: SYN });
  assert.is(h.one().sackPermitted, false);
});

test('SACK recovery: the first ACK showing a loss retransmits it, then every other hole, sized by PRR', async () => {
  const h = await TcpHarness.create({ tcp: { congestion: 'newreno' } });
  const o = await acceptOne(h, 80, 1000, { mss: MSS, sackPermitted: true }, {}, 100);
  const conn = h.connection(80)!;
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(10 * MSS, 1));
  assert.is(h.sent().length, 10);
  const start = o.iss + 1;
  const at = (n: number) => (start + n * MSS) >>> 0;
  // Segments 0 and 5 are lost. The first ACK already SACKs three segments above 0: lost.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [at(1), at(4)] });
  expectSegment(h.one(), seq(at(0)), payloadLength(MSS));
  assert.ok(conn.recovery.inRecovery && conn.recovery.sackRecovery);
  assert.is(conn.cc.ssthresh, 5 * MSS, 'ssthresh = FlightSize / 2 (RFC 5681 eq. 4)');
  // PRR (RFC 6937): pipe is 7 segments (4-9 in flight, 0 retransmitted), above ssthresh, so
  // sndcnt = ceil(prr_delivered * ssthresh / RecoverFS) - prr_out = ceil(3 * 5 / 10) MSS - 1 MSS.
  assert.is(conn.cc.cwnd, 7 * MSS + Math.ceil((3 * MSS * 5 * MSS) / (10 * MSS)) - MSS, 'cwnd = pipe + sndcnt');
  // More SACKs: 5 is a hole with three segments above it. The pipe (1 segment) is now below
  // ssthresh: the slow start reduction bound lets cwnd back up to ssthresh.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [at(6), at(10), at(1), at(5)] });
  expectSegment(h.one(), seq(at(5)), payloadLength(MSS));
  assert.is(conn.cc.cwnd, 5 * MSS);
  // Nothing else is lost: no more retransmissions on a duplicate.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [at(6), at(10), at(1), at(5)] });
  h.none();
  // The retransmissions arrive: a partial ACK up to 5, then the full ACK ends recovery.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: at(5), flags: ACK, sack: [at(6), at(10)] });
  assert.ok(conn.recovery.inRecovery);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: at(10), flags: ACK });
  assert.is(conn.recovery.inRecovery, false);
  assert.is(h.stack.tcp.counters.fastRetransmits, 1);
  assert.is(conn.sent.sackedBytes, 0);
});

test('a lost retransmission is sent again once data sent after it is SACKed (no RTO)', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: MSS, sackPermitted: true }, {}, 100);
  const conn = h.connection(80)!;
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(20 * MSS, 1));
  assert.is(h.sent().length, 10);
  const start = o.iss + 1;
  const at = (n: number) => (start + n * MSS) >>> 0;
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [at(1), at(4)] });
  expectSegment(h.sent()[0], seq(at(0)));
  // Everything else arrives; the pipe empties and new data goes out after the retransmission.
  await h.advance(5);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [at(1), at(10)] });
  const fresh = h.sent();
  assert.ok(fresh.length > 0 && fresh.every((s) => s.seq - start >= 10 * MSS), 'only new data');
  // New data, sent after the retransmission, is SACKed but segment 0 is still missing: RACK
  // (RFC 8985 6.2) finds the retransmission lost.
  await h.advance(100);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [at(1), at(11)] });
  expectSegment(h.sent()[0], seq(at(0)), payloadLength(MSS));
  assert.is(h.stack.tcp.counters.timeouts, 0);
  assert.is(h.stack.tcp.counters.lostRetransmissions, 1);
  assert.ok(conn.recovery.inRecovery);
});

test('tail loss probe (RFC 8985 7): a whole lost flight is probed after 2 SRTT, and its SACK starts recovery', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: MSS, sackPermitted: true }, {}, 100);
  const conn = h.connection(80)!;
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(5 * MSS, 1));
  assert.is(h.sent().length, 5);
  const start = o.iss + 1;
  const at = (n: number) => (start + n * MSS) >>> 0;
  // Nothing comes back. PTO = 2 * SRTT + 2 ms = 202 ms (Linux's TCP_TIMEOUT_MIN), before the
  // RTO of 300 ms.
  await h.advance(201);
  h.none();
  await h.advance(1);
  expectSegment(h.one(), seq(at(4)), payloadLength(MSS));
  assert.is(h.stack.tcp.counters.tailLossProbes, 1);
  // The probe arrives and is SACKed: everything before it is lost; recovery starts at once.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [at(4), at(5)] });
  const resent = h.sent();
  assert.ok(resent.length >= 1);
  expectSegment(resent[0], seq(at(0)), payloadLength(MSS));
  assert.ok(conn.recovery.inRecovery && conn.recovery.sackRecovery);
  assert.is(h.stack.tcp.counters.timeouts, 0);
});

test('tail loss probe: the ACK of everything ends the probe without recovery', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: MSS, sackPermitted: true }, {}, 100);
  o.socket.write(Buffer.alloc(2 * MSS, 1));
  h.sent();
  await h.advance(202);
  h.one();
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1 + 2 * MSS, flags: ACK });
  assert.is(h.connection(80)!.recovery.inRecovery, false);
  await h.advance(1000);
  h.none();
});

test.run();
