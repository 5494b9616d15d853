// RFC 5961: blind reset and SYN attacks answered with challenge ACKs, the ACK acceptability
// check, and the challenge ACK rate limit; and PAWS (RFC 7323 5).

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, ack, expectSegment, flags, RST, SYN, seq, TcpHarness } from '../helpers/tcp-harness.ts';

test('an RST exactly at RCV.NXT resets the connection with ECONNRESET', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  let error: (Error & { code?: string }) | null = null;
  o.socket.on('error', (e) => (error = e));
  h.inject({ dstPort: 80, seq: o.peerSeq, flags: RST });
  h.none();
  await h.advance(0);
  assert.is(error!.code, 'ECONNRESET');
  assert.is(h.connection(80), undefined);
});

test('an RST inside the window but not exact gets a challenge ACK and changes nothing (RFC 5961 3.2)', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  h.inject({ dstPort: 80, seq: o.peerSeq + 100, flags: RST });
  expectSegment(h.one(), flags(ACK), seq(o.iss + 1), ack(o.peerSeq));
  assert.is(h.connection(80)!.state, 'ESTABLISHED');
  // Outside the window (1 MiB): silently dropped.
  h.inject({ dstPort: 80, seq: o.peerSeq + 5_000_000, flags: RST });
  h.inject({ dstPort: 80, seq: o.peerSeq - 1, flags: RST });
  h.none();
  assert.is(h.connection(80)!.state, 'ESTABLISHED');
});

test('a SYN on an established connection gets a challenge ACK, in or out of the window (RFC 5961 4.2)', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  h.inject({ dstPort: 80, seq: o.peerSeq + 10, flags: SYN });
  expectSegment(h.one(), flags(ACK), seq(o.iss + 1), ack(o.peerSeq));
  // One challenge per connection per tcp_invalid_ratelimit (500 ms).
  await h.advance(500);
  h.inject({ dstPort: 80, seq: o.peerSeq - 5000, flags: SYN });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq));
  assert.is(h.connection(80)!.state, 'ESTABLISHED');
});

test('ACK acceptability (RFC 5961 5.2): an ACK of unsent data is answered and dropped; a too old one is challenged', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  let got = '';
  o.socket.on('data', (d: Buffer) => (got += d.toString()));
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1000, flags: ACK, payload: 'bad ack' });
  expectSegment(h.one(), flags(ACK), seq(o.iss + 1), ack(o.peerSeq));
  // Older than SND.UNA - MAX.SND.WND (the peer's window was 65535).
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1 - 70_000, flags: ACK, payload: 'old ack' });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq));
  await h.advance(0);
  assert.is(got, '');
  // An old but acceptable ACK (a duplicate) lets the data in.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1 - 100, flags: ACK, payload: 'fine' });
  await h.advance(0);
  assert.is(got, 'fine');
});

test('challenge ACKs are limited to about 1000 per second across the stack (RFC 5961 7), the budget drawn at random each second', async () => {
  // Without the per-connection limit, to see the layer's budget alone.
  const h = await TcpHarness.create({ tcp: { invalidRateLimitMs: 0 } });
  const o = await acceptOne(h);
  for (let i = 0; i < 2000; i++) h.inject({ dstPort: 80, seq: o.peerSeq + 1 + i, flags: RST });
  const first = h.sent().length;
  assert.ok(first >= 500 && first < 1500, `${first} in [500, 1500)`);
  assert.is(h.stack.tcp.counters.drops['tcp-challenge-ack-limited'], 2000 - first);
  await h.advance(500);
  for (let i = 0; i < 1000; i++) h.inject({ dstPort: 80, seq: o.peerSeq + 1 + i, flags: RST });
  assert.is(h.sent().length, 0, 'the same second: nothing left');
  await h.advance(500);
  for (let i = 0; i < 2000; i++) h.inject({ dstPort: 80, seq: o.peerSeq + 1 + i, flags: RST });
  const second = h.sent().length;
  assert.ok(second >= 500 && second < 1500);
  assert.is.not(second, first, 'a new budget each second');
  assert.is(h.connection(80)!.state, 'ESTABLISHED');
});

test('PAWS (RFC 7323 5): a segment with an old timestamp is acknowledged and dropped', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { ts: [5000, 0] });
  const conn = h.connection(80)!;
  assert.ok(conn.tsEnabled);
  let got = '';
  o.socket.on('data', (d: Buffer) => (got += d.toString()));
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, payload: 'new', ts: [5010, 0] });
  assert.is(conn.tsRecent, 5010);
  await h.advance(40);
  h.sent();
  h.inject({ dstPort: 80, seq: o.peerSeq + 3, ack: o.iss + 1, flags: ACK, payload: 'old', ts: [4000, 0] });
  const a = expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 3));
  assert.is(a.tsEcr, 5010);
  await h.advance(0);
  assert.is(got, 'new');
  assert.is(h.stack.tcp.counters.drops['tcp-paws'], 1);
});

test.run();
