// The TCP layer's parts on their own: ISN generation (RFC 6528), the RTO estimator (RFC 6298),
// NewReno (RFC 5681) and CUBIC (RFC 9438) window arithmetic, and the send buffer ring.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { Cubic } from '../../src/tcp/congestion/cubic.ts';
import { NewReno } from '../../src/tcp/congestion/newreno.ts';
import { IsnGenerator } from '../../src/tcp/isn.ts';
import { RttEstimator } from '../../src/tcp/timers/rtt.ts';
import { SendBuffer } from '../../src/tcp/send-buffer.ts';
import type { Connection } from '../../src/tcp/connection.ts';
import { stackPair } from '../helpers/tcp-pair.ts';

test('ISN: M ticks every 4 us, F depends on the 4-tuple and the secret, a seed reproduces it', () => {
  const clock = new VirtualClock(0);
  const isn = new IsnGenerator(clock, 42);
  const a0 = isn.next(1, 80, 2, 40000);
  clock.advance(1);
  const a1 = isn.next(1, 80, 2, 40000);
  assert.is((a1 - a0) >>> 0, 250, '1 ms is 250 ticks of 4 us');
  assert.is.not(isn.next(1, 80, 2, 40001), (a1 + 0) >>> 0);
  assert.is(new IsnGenerator(new VirtualClock(1), 42).next(1, 80, 2, 40000), a1);
  assert.is.not(new IsnGenerator(new VirtualClock(1), 43).next(1, 80, 2, 40000), a1);
  assert.is.not(new IsnGenerator(new VirtualClock(1)).next(1, 80, 2, 40000), new IsnGenerator(new VirtualClock(1)).next(1, 80, 2, 40000));
});

test("RTO as Linux's tcp_rtt_estimator and tcp_set_rto: SRTT + a variance term of at least 200 ms, doubled per backoff", () => {
  const r = new RttEstimator();
  assert.is(r.rto, 1000);
  // First sample: SRTT = R, mean deviation R / 2, RTO = SRTT + max(4 x deviation, 200).
  r.sample(100, 0, 1000);
  assert.is(r.srtt, 100);
  assert.is(r.rttvar, 50);
  assert.is(r.rto, 300);
  // A longer RTT within the round: gains 1/8 and 1/4; the variance term rises at once.
  r.sample(200, 500, 2000);
  assert.is(r.srtt, 0.875 * 100 + 0.125 * 200);
  assert.is(r.rttvar, 0.75 * 50 + 0.25 * 100);
  assert.is(r.rto, 112.5 + 250);
  // A shorter one: the part of the fall beyond the deviation counts 1/8 (Linux's Eifel-like
  // rule), so a falling RTT does not raise the deviation as RFC 6298 would.
  r.sample(12.5, 600, 2000);
  assert.is(r.srtt, 112.5 - 100 / 8);
  assert.is(r.rttvar, (250 + (100 - 62.5) / 8) / 4);
  // Round after round of a steady 100 ms the term decays to the 200 ms floor: RTO -> RTT + 200.
  let seq = 3000;
  for (let i = 0; i < 60; i++, seq += 1000) r.sample(100, seq, seq + 1000);
  assert.ok(Math.abs(r.srtt - 100) < 0.01, `srtt ${r.srtt}`);
  assert.ok(r.rto >= r.srtt + 200 && r.rto < r.srtt + 200.5, `rto ${r.rto}`);
  const small = new RttEstimator();
  small.sample(1);
  assert.is(small.rto, 201);
  small.backoff();
  assert.is(small.rto, 402);
  for (let i = 0; i < 20; i++) small.backoff();
  assert.is(small.rto, 120_000);
  small.sample(1);
  assert.is(small.rto, 201);
});

test('NewReno: slow start adds at most SMSS per ACK, congestion avoidance about SMSS per window', () => {
  const mss = 1000;
  const cc = new NewReno(mss);
  assert.is(cc.cwnd, 10 * mss);
  cc.onAck(500);
  assert.is(cc.cwnd, 10 * mss + 500);
  cc.onAck(3000);
  assert.is(cc.cwnd, 11 * mss + 500);
  cc.onTimeout(20 * mss);
  assert.is(cc.ssthresh, 10 * mss);
  assert.is(cc.cwnd, mss);
  cc.cwnd = 10 * mss;
  for (let i = 0; i < 10; i++) cc.onAck(mss);
  assert.is(cc.cwnd, 11 * mss, 'one SMSS after a whole window was acknowledged');
  cc.onCongestionEvent(8 * mss);
  assert.is(cc.ssthresh, 4 * mss);
  assert.is(cc.cwndAfterRecovery(2 * mss), 3 * mss, 'RFC 6582 3.2 step 6: min(ssthresh, FlightSize + SMSS)');
  assert.is(cc.cwndAfterRecovery(8 * mss), 4 * mss);
});

test('CUBIC: beta 0.7 reduction, K from RFC 9438 eq. 2, growth along W_cubic(t)', () => {
  const mss = 1000;
  const cc = new Cubic(mss);
  cc.cwnd = 100 * mss;
  cc.ssthresh = 1; // congestion avoidance
  cc.onCongestionEvent();
  assert.is(cc.ssthresh, 70 * mss);
  cc.cwnd = cc.cwndAfterRecovery();
  assert.is(cc.cwnd, 70 * mss);
  assert.is(cc.wMax, 100);
  // First ACK of the epoch: K = cbrt(W_max (1 - beta) / C) = cbrt(100 * 0.3 / 0.4).
  cc.onAck(mss, 0, 100);
  assert.ok(Math.abs(cc.k - Math.cbrt((100 * 0.3) / 0.4)) < 1e-9);
  assert.ok(Math.abs(cc.windowAt(cc.k) - 100) < 1e-9, 'W_cubic(K) = W_max');
  // ACK a window's worth every 100 ms for K seconds: cwnd approaches W_max from below.
  let now = 0;
  while (now < cc.k * 1000) {
    now += 100;
    const segments = Math.floor(cc.cwnd / mss);
    for (let i = 0; i < segments; i++) cc.onAck(mss, now, 100);
  }
  const atK = cc.cwnd / mss;
  assert.ok(atK > 95 && atK <= 101, `cwnd at K is ${atK} segments, W_max is 100`);
  // Past K the window grows beyond W_max (convex region), but never by more than 1.5x per RTT.
  for (let r = 0; r < 20; r++) {
    now += 100;
    const before = cc.cwnd;
    const segments = Math.floor(cc.cwnd / mss);
    for (let i = 0; i < segments; i++) cc.onAck(mss, now, 100);
    assert.ok(cc.cwnd <= before * 1.5 + mss);
  }
  assert.ok(cc.cwnd / mss > 100);
  // A loss below the previous W_max: fast convergence remembers W_max (1 + beta) / 2.
  const w = cc.cwnd / mss;
  cc.wMax = w + 50;
  cc.onTimeout();
  assert.ok(Math.abs(cc.wMax - (w * 1.7) / 2) < 1e-9);
  assert.is(cc.cwnd, mss);
});

test('send buffer: appends up to its size, wraps, grows, copies out from any offset', () => {
  const b = new SendBuffer(10_000, 16);
  const data = Buffer.from(Array.from({ length: 12_000 }, (_, i) => i & 255));
  assert.is(b.append(data, 0, 12_000), 10_000);
  assert.is(b.free, 0);
  b.consume(9_990);
  assert.is(b.append(data, 10_000, 2_000), 2_000);
  const out = Buffer.alloc(2_010);
  b.copyOut(0, out, 0, 2_010);
  assert.ok(out.equals(data.subarray(9_990, 12_000)));
  const mid = Buffer.alloc(5);
  b.copyOut(8, mid, 0, 5);
  assert.ok(mid.equals(data.subarray(9_998, 10_003)));
});

test('connection table: one port pair shared by several remote addresses', async () => {
  const { a } = await stackPair();
  const tcp = a.tcp;
  const first = tcp.connect(0x0a000063, 7, 40000);
  const second = tcp.connect(0x0a000064, 7, 40000);
  const third = tcp.connect(0x0b000063, 7, 40000);
  assert.ok(typeof first !== 'string' && typeof second !== 'string' && typeof third !== 'string');
  assert.is(tcp.connect(0x0a000064, 7, 40000), 'EADDRINUSE');
  assert.is(tcp.size, 3);
  assert.is(tcp.find(40000, 0x0a000063, 7), first);
  assert.is(tcp.find(40000, 0x0a000064, 7), second);
  assert.is(tcp.find(40000, 0x0b000063, 7), third);
  assert.is(tcp.find(40000, 0x0a000065, 7), undefined);
  assert.is([...tcp.all()].length, 3);
  tcp.remove(second as Connection); // never opened: taken out of the table directly
  assert.is(tcp.find(40000, 0x0a000064, 7), undefined);
  assert.is(tcp.find(40000, 0x0b000063, 7), third);
  tcp.remove(first as Connection);
  tcp.remove(third as Connection);
  assert.is(tcp.size, 0);
  assert.is([...tcp.all()].length, 0);
  // Back to a single connection on the pair, then none.
  const again = tcp.connect(0x0a000063, 7, 40000) as Connection;
  assert.is(tcp.find(40000, 0x0a000063, 7), again);
  tcp.remove(again);
  assert.is(tcp.find(40000, 0x0a000063, 7), undefined);
});

test.run();
