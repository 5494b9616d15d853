// Closing segment by segment (RFC 9293 3.6): active close through FIN-WAIT-1, FIN-WAIT-2 and
// TIME-WAIT, passive close through CLOSE-WAIT and LAST-ACK, simultaneous close through
// CLOSING, and TIME-WAIT's 2*MSL expiry and reopening.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, ack, describe, expectSegment, FIN, flags, payload, PSH, RST, SYN, seq, TcpHarness } from '../helpers/tcp-harness.ts';

test('active close: FIN, FIN-WAIT-1, FIN-WAIT-2, the peer FIN, TIME-WAIT, then CLOSED after 2*MSL', async () => {
  const h = await TcpHarness.create({ tcp: { timeWaitMs: 5000 } });
  const o = await acceptOne(h);
  const conn = h.connection(80)!;
  o.socket.end();
  await h.advance(0);
  expectSegment(h.one(), flags(FIN | ACK), seq(o.iss + 1), ack(o.peerSeq));
  assert.is(conn.state, 'FIN-WAIT-1');
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 2, flags: ACK });
  assert.is(conn.state, 'FIN-WAIT-2');
  h.none();
  // Half-closed: the peer may still send.
  let got = '';
  o.socket.on('data', (d: Buffer) => (got += d.toString()));
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 2, flags: ACK | PSH, payload: 'late' });
  h.inject({ dstPort: 80, seq: o.peerSeq + 4, ack: o.iss + 2, flags: FIN | ACK });
  // The first data is acknowledged at once (quick-ACK mode), and so is the FIN.
  const acks = h.sent();
  assert.is(acks.length, 2);
  expectSegment(acks[0], flags(ACK), seq(o.iss + 2), ack(o.peerSeq + 4));
  expectSegment(acks[1], flags(ACK), seq(o.iss + 2), ack(o.peerSeq + 5));
  assert.is(h.stateOf(80), 'TIME-WAIT');
  await h.advance(0);
  assert.is(got, 'late');
  // A retransmitted FIN is acknowledged again and restarts the timer.
  await h.advance(3000);
  h.inject({ dstPort: 80, seq: o.peerSeq + 4, ack: o.iss + 2, flags: FIN | ACK });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 5));
  await h.advance(4999);
  assert.is(h.stateOf(80), 'TIME-WAIT');
  await h.advance(1);
  assert.is(h.stateOf(80), 'CLOSED');
  assert.is(conn.state, 'CLOSED');
});

test('once our FIN is acknowledged the send buffer is given back (FIN-WAIT-2 and TIME-WAIT keep no buffer)', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, {}, { allowHalfOpen: true });
  const conn = h.connection(80)!;
  o.socket.end(Buffer.alloc(5000, 'x'));
  await h.advance(0);
  assert.ok(conn.sendBuffer.capacity >= 5000);
  const fin = h.sent().find((s) => s.flags & FIN)!;
  assert.ok(fin, 'our FIN went out');
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: fin.seq + fin.payload.length + 1, flags: ACK });
  assert.is(conn.state, 'FIN-WAIT-2');
  assert.is(conn.sendBuffer.capacity, 0);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: fin.seq + fin.payload.length + 1, flags: FIN | ACK });
  assert.is(h.stateOf(80), 'TIME-WAIT');
  assert.is(conn.sendBuffer.capacity, 0);
  assert.ok(conn.reassembly.isEmpty);
});

test('FIN-WAIT-1: a FIN that also acknowledges ours goes straight to TIME-WAIT', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  o.socket.end('bye');
  await h.advance(0);
  // The data went at once; the FIN follows on its own (as Linux does after a sent segment).
  const segs = h.sent();
  expectSegment(segs[0], flags(ACK | PSH), payload('bye'));
  expectSegment(segs[1], flags(FIN | ACK), seq(o.iss + 4));
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 5, flags: FIN | ACK });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 1));
  assert.is(h.stateOf(80), 'TIME-WAIT');
});

test('passive close: the peer FIN gives end and CLOSE-WAIT; our end sends FIN, LAST-ACK, then CLOSED', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, {}, { allowHalfOpen: true });
  const conn = h.connection(80)!;
  let ended = false;
  let closed = false;
  o.socket.on('end', () => (ended = true));
  o.socket.on('close', () => (closed = true));
  o.socket.resume();
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: FIN | ACK });
  // The ACK waits for the end of this event-loop turn, in case the application answers
  // with its FIN (as Linux delays it); this one keeps its side open, so the bare ACK goes.
  h.none();
  await h.advance(1);
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 1));
  assert.is(conn.state, 'CLOSE-WAIT');
  assert.ok(ended);
  // allowHalfOpen: we may still send.
  o.socket.write('still here');
  await h.advance(0);
  expectSegment(h.one(), payload('still here'));
  o.socket.end();
  await h.advance(0);
  expectSegment(h.one(), flags(FIN | ACK), seq(o.iss + 11));
  assert.is(conn.state, 'LAST-ACK');
  h.inject({ dstPort: 80, seq: o.peerSeq + 1, ack: o.iss + 12, flags: ACK });
  assert.is(conn.state, 'CLOSED');
  await h.advance(0);
  assert.ok(closed);
});

test('without allowHalfOpen the peer FIN ends our side too (Node default)', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  o.socket.resume();
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: FIN | ACK });
  await h.advance(0);
  // The stream ends our side on the next tick, before the deferred ACK is due: our FIN
  // carries the ACK of theirs, one segment instead of two.
  expectSegment(h.one(), flags(FIN | ACK), seq(o.iss + 1), ack(o.peerSeq + 1));
  assert.is(h.connection(80)!.state, 'LAST-ACK');
  await h.advance(1);
  h.none();
});

test('simultaneous close: FINs cross, CLOSING, then TIME-WAIT when ours is acknowledged', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, {}, { allowHalfOpen: true });
  const conn = h.connection(80)!;
  o.socket.end();
  await h.advance(0);
  expectSegment(h.one(), flags(FIN | ACK), seq(o.iss + 1));
  // The peer's FIN does not acknowledge ours.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: FIN | ACK });
  expectSegment(h.one(), flags(ACK), seq(o.iss + 2), ack(o.peerSeq + 1));
  assert.is(conn.state, 'CLOSING');
  h.inject({ dstPort: 80, seq: o.peerSeq + 1, ack: o.iss + 2, flags: ACK });
  assert.is(h.stateOf(80), 'TIME-WAIT');
});

test('a lost FIN is retransmitted by the retransmission timer', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  o.socket.end();
  await h.advance(0);
  const fin = expectSegment(h.one(), flags(FIN | ACK));
  // The handshake measured an RTT of 0 in virtual time: RTO is SRTT (a microsecond) plus the
  // 200 ms minimum (Linux tcp_set_rto), then doubles.
  await h.advance(200);
  h.none();
  await h.advance(1);
  expectSegment(h.one(), flags(FIN | ACK), seq(fin.seq));
  await h.advance(399);
  h.none();
  await h.advance(1);
  expectSegment(h.one(), flags(FIN | ACK), seq(fin.seq));
});

test('TIME-WAIT: a new SYN with a higher sequence number opens a new connection (RFC 6191)', async () => {
  const h = await TcpHarness.create({ tcp: { timeWaitMs: 60_000 } });
  const o = await acceptOne(h);
  o.socket.end();
  await h.advance(0);
  h.sent();
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 2, flags: FIN | ACK });
  h.sent();
  assert.is(h.stateOf(80), 'TIME-WAIT');
  let accepted = 0;
  o.server.on('connection', () => accepted++);
  h.inject({ dstPort: 80, seq: o.peerSeq + 100_000, flags: SYN });
  expectSegment(h.one(), flags(SYN | ACK), ack(o.peerSeq + 100_001));
  assert.is(h.connection(80)!.state, 'SYN-RECEIVED');
  // An old SYN (lower sequence number) would only get a challenge-style ACK in TIME-WAIT.
  void accepted;
});

test('destroy() with more unread data than the stream buffers sends RST; with less, or none, a graceful FIN', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  o.socket.pause();
  // Past the readable highWaterMark (16 KiB): what Node would have left in the kernel's queue.
  const chunk = Buffer.alloc(1400, 7);
  for (let i = 0; i < 13; i++) h.inject({ dstPort: 80, seq: o.peerSeq + i * chunk.length, ack: o.iss + 1, flags: ACK, payload: chunk });
  assert.ok(o.socket.readableLength > o.socket.readableHighWaterMark);
  o.socket.destroy();
  await h.advance(0);
  const segs = h.sent().filter((s) => s.flags & RST);
  expectSegment(segs[0], flags(RST | ACK), seq(o.iss + 1));
  assert.is(h.connection(80), undefined);

  const h2 = await TcpHarness.create();
  const o2 = await acceptOne(h2);
  o2.socket.destroy();
  await h2.advance(0);
  expectSegment(h2.one(), flags(FIN | ACK), seq(o2.iss + 1));
  assert.is(h2.connection(80)!.state, 'FIN-WAIT-1');

  // A few bytes in the stream's buffer count as read (Node took them out of the kernel): FIN.
  const h3 = await TcpHarness.create();
  const o3 = await acceptOne(h3);
  o3.socket.pause();
  h3.inject({ dstPort: 80, seq: o3.peerSeq, ack: o3.iss + 1, flags: ACK, payload: 'unread' });
  h3.sent();
  o3.socket.destroy();
  await h3.advance(0);
  const fin = h3.sent().find((seg) => seg.flags & FIN);
  expectSegment(fin, flags(FIN | ACK), seq(o3.iss + 1));
});

test('an orphaned FIN-WAIT-2 connection is dropped after finWait2Ms', async () => {
  const h = await TcpHarness.create({ tcp: { finWait2Ms: 3000 } });
  const o = await acceptOne(h);
  o.socket.destroy();
  await h.advance(0);
  h.sent();
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 2, flags: ACK });
  assert.is(h.connection(80)!.state, 'FIN-WAIT-2');
  await h.advance(3000);
  assert.is(h.connection(80), undefined);
});

test('resetting the socket from its data handler, mid-segment, leaves the connection closed', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  let seen = '';
  o.socket.on('data', (d: Buffer) => {
    seen += d.toString();
    if (seen.length > 1) o.socket.resetAndDestroy();
  });
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, payload: 'x' });
  await h.advance(40);
  h.sent();
  // Now flowing, 'data' comes synchronously within the segment's processing; data and FIN
  // together: the FIN must not revive the connection after the reset.
  h.inject({ dstPort: 80, seq: o.peerSeq + 1, ack: o.iss + 1, flags: ACK | FIN, payload: 'y' });
  await h.advance(0);
  const segs = h.sent();
  assert.is(segs.length, 1, segs.map(describe).join(' '));
  expectSegment(segs[0], flags(RST | ACK));
  assert.is(h.connection(80), undefined);
});

/** Brings an accepted connection into `state` by the segments the RFC's diagrams show. */
async function inState(state: string): Promise<{ h: TcpHarness; o: Awaited<ReturnType<typeof acceptOne>>; rcvNxt: number; errors: string[] }> {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, {}, { allowHalfOpen: true });
  const errors: string[] = [];
  o.socket.on('error', (e: Error & { code?: string }) => errors.push(e.code ?? e.message));
  o.socket.resume();
  let rcvNxt = o.peerSeq;
  const peerFin = () => {
    h.inject({ dstPort: 80, seq: rcvNxt, ack: h.connection(80)!.snd.una, flags: FIN | ACK });
    rcvNxt++;
  };
  if (state === 'CLOSE-WAIT' || state === 'LAST-ACK') peerFin();
  if (state === 'FIN-WAIT-1' || state === 'FIN-WAIT-2' || state === 'CLOSING' || state === 'TIME-WAIT' || state === 'LAST-ACK') {
    o.socket.end();
    await h.advance(0);
  }
  if (state === 'FIN-WAIT-2' || state === 'TIME-WAIT') h.inject({ dstPort: 80, seq: rcvNxt, ack: o.iss + 2, flags: ACK });
  if (state === 'CLOSING' || state === 'TIME-WAIT') peerFin();
  h.sent();
  assert.is(h.stateOf(80), state);
  return { h, o, rcvNxt, errors };
}

test('an exact RST in each synchronized state: ECONNRESET while data may flow, quietly closed after (RFC 9293 3.10.7.4)', async () => {
  const expected: Record<string, string[]> = {
    ESTABLISHED: ['ECONNRESET'],
    'FIN-WAIT-1': ['ECONNRESET'],
    'FIN-WAIT-2': ['ECONNRESET'],
    'CLOSE-WAIT': ['ECONNRESET'],
    CLOSING: [],
    'LAST-ACK': [],
    'TIME-WAIT': [],
  };
  for (const [state, errs] of Object.entries(expected)) {
    const { h, rcvNxt, errors } = await inState(state);
    h.inject({ dstPort: 80, seq: rcvNxt, flags: RST });
    await h.advance(0);
    h.none();
    assert.is(h.stateOf(80), 'CLOSED', `${state}: closed`);
    assert.equal(errors, errs, state);
  }
});

test('an in-window but inexact RST gets a challenge ACK in every synchronized state (RFC 5961 3.2)', async () => {
  for (const state of ['ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK']) {
    const { h, rcvNxt } = await inState(state);
    h.inject({ dstPort: 80, seq: rcvNxt + 1, flags: RST });
    expectSegment(h.one(), flags(ACK), ack(rcvNxt));
    assert.is(h.connection(80)!.state, state);
  }
});

test('closing while connecting: SYN-SENT is deleted without a reset', async () => {
  const h = await TcpHarness.create();
  const socket = h.stack.connect(8080, '10.0.0.1');
  const syn = h.one();
  socket.destroy();
  await h.advance(0);
  h.none();
  assert.is(h.connection(syn.srcPort, 8080), undefined);
  // A late SYN-ACK finds no connection: reset as for a closed port.
  h.inject({ srcPort: 8080, dstPort: syn.srcPort, seq: 1, ack: syn.seq + 1, flags: SYN | ACK });
  expectSegment(h.one(), flags(RST), seq(syn.seq + 1));
});

test.run();
