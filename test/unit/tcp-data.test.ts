// Data transfer segment by segment: delayed ACK (RFC 1122 4.2.3.2, RFC 5681 4.2), out-of-order
// reassembly, flow control and receiver SWS avoidance (RFC 9293 3.8.6.2.2), Nagle (RFC 1122
// 4.2.3.4), sender SWS avoidance and the persist timer (RFC 9293 3.8.6.1, 3.8.6.2.1).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acceptOne, connectOne } from '../helpers/tcp-open.ts';
import { ACK, ack, expectSegment, flags, payload, payloadLength, PSH, seq, TcpHarness, window } from '../helpers/tcp-harness.ts';

test('one small segment is acknowledged after the 40 ms delayed-ACK timer, not at once', async () => {
  // Quick-ACK mode (below) off: the delayed ACK itself.
  const h = await TcpHarness.create({ tcp: { maxQuickAcks: 0 } });
  const o = await acceptOne(h);
  let got = '';
  o.socket.on('data', (d: Buffer) => (got += d.toString()));
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK | PSH, payload: 'hello' });
  await h.advance(0);
  assert.is(got, 'hello');
  h.none();
  await h.advance(39);
  h.none();
  await h.advance(1);
  expectSegment(h.one(), flags(ACK), seq(o.iss + 1), ack(o.peerSeq + 5));
});

test("quick-ACK mode (Linux): the first data segments are acknowledged at once, then the delayed ACK returns; a hole starts it again", async () => {
  const h = await TcpHarness.create({ tcp: { receiveBufferSize: 65535 } });
  const o = await acceptOne(h);
  o.socket.resume();
  const full = Buffer.alloc(1460, 1);
  // 65535 / (2 * 1460) = 22, capped at TCP_MAX_QUICKACKS = 16: sixteen ACKs without delay.
  let seq = o.peerSeq;
  for (let i = 0; i < 16; i++) {
    h.inject({ dstPort: 80, seq, ack: o.iss + 1, flags: ACK, payload: full });
    seq += 1460;
    expectSegment(h.one(), flags(ACK), ack(seq));
  }
  // The seventeenth waits for a second segment (RFC 5681 4.2) or the delayed-ACK timer.
  h.inject({ dstPort: 80, seq, ack: o.iss + 1, flags: ACK, payload: full });
  seq += 1460;
  h.none();
  await h.advance(40);
  expectSegment(h.one(), flags(ACK), ack(seq));
  // A segment after a hole: acknowledged at once (a duplicate ACK), and so are the next ones.
  h.inject({ dstPort: 80, seq: seq + 1460, ack: o.iss + 1, flags: ACK, payload: full });
  expectSegment(h.one(), flags(ACK), ack(seq));
  h.inject({ dstPort: 80, seq, ack: o.iss + 1, flags: ACK, payload: full });
  expectSegment(h.one(), flags(ACK), ack(seq + 2 * 1460));
  h.inject({ dstPort: 80, seq: seq + 2 * 1460, ack: o.iss + 1, flags: ACK, payload: full });
  expectSegment(h.one(), flags(ACK), ack(seq + 3 * 1460));
});

test("a window's worth of out-of-order segments is kept (the bound follows the receive buffer), and one retransmission fills the hole", async () => {
  const h = await TcpHarness.create();
  // With window scaling: unscaled, the window (and what is accepted) is 65535 (RFC 7323 2.2).
  const o = await acceptOne(h, 80, 1000, { mss: 1460, windowScale: 7 });
  o.socket.resume();
  const seg = Buffer.alloc(1000, 2);
  // 700 segments after a hole of one: 700 KB, inside the 1 MiB window, more than 256 pieces.
  for (let i = 1; i <= 700; i++) h.inject({ dstPort: 80, seq: o.peerSeq + i * 1000, ack: o.iss + 1, flags: ACK, payload: seg });
  h.sent();
  assert.is(h.stack.tcp.counters.drops['tcp-ooo-queue-full'], undefined);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, payload: seg });
  expectSegment(h.sent().at(-1), flags(ACK), ack(o.peerSeq + 701 * 1000));
  assert.is(o.socket.bytesRead, 701 * 1000);
});

test('every second full-sized segment is acknowledged at once', async () => {
  const h = await TcpHarness.create({ tcp: { maxQuickAcks: 0 } });
  const o = await acceptOne(h);
  o.socket.resume();
  const full = Buffer.alloc(1460, 1);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, payload: full });
  h.none();
  h.inject({ dstPort: 80, seq: o.peerSeq + 1460, ack: o.iss + 1, flags: ACK, payload: full });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 2920));
  h.inject({ dstPort: 80, seq: o.peerSeq + 2920, ack: o.iss + 1, flags: ACK, payload: full });
  h.none();
  await h.advance(40);
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 4380));
});

test('out-of-order data gets an immediate duplicate ACK, is kept, and is delivered when the gap fills', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  let got = '';
  o.socket.on('data', (d: Buffer) => (got += d.toString()));
  const s = o.peerSeq;
  h.inject({ dstPort: 80, seq: s + 5, ack: o.iss + 1, flags: ACK, payload: 'WORLD' });
  expectSegment(h.one(), flags(ACK), ack(s));
  h.inject({ dstPort: 80, seq: s + 12, ack: o.iss + 1, flags: ACK, payload: '!!' });
  expectSegment(h.one(), flags(ACK), ack(s));
  // Overlapping the held piece, and repeating part of it.
  h.inject({ dstPort: 80, seq: s + 8, ack: o.iss + 1, flags: ACK, payload: 'LD, ' });
  expectSegment(h.one(), flags(ACK), ack(s));
  await h.advance(0);
  assert.is(got, '');
  h.inject({ dstPort: 80, seq: s, ack: o.iss + 1, flags: ACK, payload: 'HELLO' });
  // Filling the gap is acknowledged at once, up to everything held.
  expectSegment(h.one(), flags(ACK), ack(s + 14));
  await h.advance(0);
  assert.is(got, 'HELLOWORLD, !!');
  assert.is(h.connection(80)!.reassembly.count, 0);
});

test('data beyond the window is trimmed, a segment entirely outside gets an ACK', async () => {
  const h = await TcpHarness.create({ tcp: { receiveBufferSize: 2000 } });
  const o = await acceptOne(h);
  const conn = h.connection(80)!;
  o.socket.pause();
  const edge = conn.rcv.adv;
  assert.is((edge - conn.rcv.nxt) >>> 0, 2000);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(2500, 7) });
  await h.advance(40);
  // Only the 2000 bytes of window were taken; the window is now closed.
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 2000), window(0));
  h.inject({ dstPort: 80, seq: o.peerSeq + 2000, ack: o.iss + 1, flags: ACK, payload: 'more' });
  // Zero window: the data is not acceptable, the ACK repeats the state.
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 2000), window(0));
  h.inject({ dstPort: 80, seq: o.peerSeq + 99999, ack: o.iss + 1, flags: ACK, payload: 'far' });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 2000));
});

test('receiver SWS avoidance: a closed window reopens only by a useful amount, then is announced', async () => {
  const h = await TcpHarness.create({ tcp: { receiveBufferSize: 4000 } });
  const o = await acceptOne(h);
  o.socket.pause();
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(4000, 1) });
  await h.advance(40);
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 4000), window(0));
  // Reading one byte frees one byte: not worth a window update (less than min(2000, MSS)).
  o.socket.read(1);
  await h.advance(0);
  h.none();
  // Reading the rest opens the full window: announced at once.
  o.socket.read();
  await h.advance(0);
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 4000), window(4000));
});

test('sending: segments of at most the peer MSS; PSH on the last; ACKs free the buffer', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: 1000 });
  o.socket.write(Buffer.alloc(2500, 9));
  const segs = h.sent();
  assert.is(segs.length, 2);
  expectSegment(segs[0], flags(ACK), seq(o.iss + 1), payloadLength(1000));
  expectSegment(segs[1], flags(ACK), seq(o.iss + 1001), payloadLength(1000));
  // Nagle holds the short tail while data is unacknowledged; the ACK releases it.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 2001, flags: ACK });
  expectSegment(h.one(), flags(ACK | PSH), seq(o.iss + 2001), payloadLength(500));
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 2501, flags: ACK });
  assert.is(h.connection(80)!.sendBuffer.length, 0);
  h.none();
});

test('without an MSS option the peer is sent segments of 536 bytes', async () => {
  const h = await TcpHarness.create();
  h.stack.createServer((s) => s.write(Buffer.alloc(600))).listen(80);
  await h.advance(0);
  h.inject({ dstPort: 80, seq: 1, flags: 0x02 });
  const synAck = h.one();
  h.inject({ dstPort: 80, seq: 2, ack: synAck.seq + 1, flags: ACK });
  await h.advance(0);
  expectSegment(h.one(), payloadLength(536), seq(synAck.seq + 1));
  h.inject({ dstPort: 80, seq: 2, ack: synAck.seq + 537, flags: ACK });
  expectSegment(h.one(), payloadLength(64), seq(synAck.seq + 537));
});

test('Nagle: a second small write waits for the ACK of the first; setNoDelay sends at once', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  o.socket.write('a');
  expectSegment(h.one(), seq(o.iss + 1), payload('a'));
  o.socket.write('b');
  o.socket.write('c');
  await h.advance(0);
  h.none();
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 2, flags: ACK });
  expectSegment(h.one(), seq(o.iss + 2), payload('bc'));
  o.socket.setNoDelay(true);
  o.socket.write('d');
  await h.advance(0);
  o.socket.write('e');
  await h.advance(0);
  const segs = h.sent();
  assert.equal(
    segs.map((s) => s.payload.toString()),
    ['d', 'e'],
  );
});

test('flow control: no more than the peer window is in flight; the rest goes as the window opens', async () => {
  const h = await TcpHarness.create();
  const o = await connectOne(h, 8080, 5000, { window: 3000 });
  o.socket.write(Buffer.alloc(10_000, 1));
  await h.advance(0);
  const first = h.sent();
  assert.equal(
    first.map((s) => s.payload.length),
    [1460, 1460],
  );
  // Sender SWS avoidance: the 80 bytes left in the window are not sent as a tiny segment.
  h.inject({ srcPort: 8080, dstPort: o.localPort, seq: o.peerSeq, ack: o.iss + 1 + 2920, flags: ACK, window: 3000 });
  const next = h.sent();
  assert.equal(
    next.map((s) => s.payload.length),
    [1460, 1460],
  );
});

test('persist: a zero window is probed with one byte, with backoff, until it opens', async () => {
  const h = await TcpHarness.create();
  const o = await connectOne(h, 8080, 5000);
  const conn = h.connection(o.localPort, 8080)!;
  // The peer closes its window while acknowledging what we had sent.
  o.socket.write('x'.repeat(100));
  expectSegment(h.one(), payloadLength(100));
  h.inject({ srcPort: 8080, dstPort: o.localPort, seq: o.peerSeq, ack: o.iss + 101, flags: ACK, window: 0 });
  o.socket.write('y'.repeat(50));
  await h.advance(0);
  h.none();
  const probeTimes: number[] = [];
  const start = h.clock.now();
  for (let i = 0; i < 3; i++) {
    let probe;
    for (let t = 0; t < 10_000 && !probe; t += 10) {
      await h.advance(10);
      probe = h.sent()[0];
    }
    expectSegment(probe, flags(ACK), seq(o.iss + 101), payload('y'));
    probeTimes.push(h.clock.now() - start);
    // The window stays closed: the probe byte is not acknowledged.
    h.inject({ srcPort: 8080, dstPort: o.localPort, seq: o.peerSeq, ack: o.iss + 101, flags: ACK, window: 0 });
  }
  const gaps = [probeTimes[0]!, probeTimes[1]! - probeTimes[0]!, probeTimes[2]! - probeTimes[1]!];
  assert.ok(gaps[1]! >= gaps[0]! * 1.9 && gaps[2]! >= gaps[1]! * 1.9, `backoff gaps ${gaps}`);
  assert.is(conn.state, 'ESTABLISHED');
  assert.ok(h.stack.tcp.counters.persistProbes >= 3);
  // The window opens: everything waiting is sent.
  h.inject({ srcPort: 8080, dstPort: o.localPort, seq: o.peerSeq, ack: o.iss + 101, flags: ACK, window: 1000 });
  const sent = h.sent();
  assert.is(Buffer.concat(sent.map((s) => s.payload)).toString(), 'y'.repeat(50));
});

test('a window update from the peer while data waits restarts transmission', async () => {
  const h = await TcpHarness.create();
  const o = await connectOne(h, 8080, 5000, { window: 0 });
  o.socket.write('z'.repeat(10));
  await h.advance(0);
  h.none();
  h.inject({ srcPort: 8080, dstPort: o.localPort, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, window: 500 });
  expectSegment(h.one(), seq(o.iss + 1), payload('z'.repeat(10)));
});

test('SWS override: a small window with nothing in flight is used when the override timer expires', async () => {
  const h = await TcpHarness.create();
  const o = await connectOne(h, 8080, 5000, { window: 3000 });
  o.socket.write(Buffer.alloc(5000, 1));
  await h.advance(0);
  assert.equal(
    h.sent().map((s) => s.payload.length),
    [1460, 1460],
  );
  // Everything acknowledged, but only 100 bytes of window: less than half the largest window.
  h.inject({ srcPort: 8080, dstPort: o.localPort, seq: o.peerSeq, ack: o.iss + 1 + 2920, flags: ACK, window: 100 });
  h.none();
  let small;
  for (let t = 0; t < 5000 && !small; t += 10) {
    await h.advance(10);
    small = h.sent()[0];
  }
  expectSegment(small, seq(o.iss + 1 + 2920), payloadLength(100));
});

test('window scaling (RFC 7323 2): the peer window is shifted, ours is announced shifted, beyond 64 KiB', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: 1460, windowScale: 7 });
  const conn = h.connection(80)!;
  assert.is(conn.snd.wscale, 7);
  assert.is(conn.rcv.wscale, 5);
  // The peer offers 1000 << 7 = 128000 bytes: more than 64 KiB may be in flight.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, window: 1000 });
  assert.is(conn.snd.wnd, 128_000);
  conn.cc.cwnd = 1 << 20;
  o.socket.write(Buffer.alloc(200_000, 5));
  await h.advance(0);
  const inFlight = h.sent().reduce((n, s) => n + s.payload.length, 0);
  assert.ok(inFlight > 65_535 && inFlight <= 128_000, `in flight ${inFlight}`);
  // Our window: 1 MiB free, announced as 1048576 >> 5.
  o.socket.pause();
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, window: 1000, payload: Buffer.alloc(1000) });
  await h.advance(40);
  const a = h.sent().pop()!;
  expectSegment(a, ack(o.peerSeq + 1000));
  // Rounded up, so that the right edge never moves left (RFC 7323 2.4, Linux tcp_select_window).
  assert.is(a.window, Math.ceil((1_048_576 - 1000) / 32));
});

test.run();
