// CUBIC (RFC 9438) on a connection, in virtual time: the default congestion control, its
// reduction on a loss (beta_cubic = 0.7, W_max remembered) and, round trip by round trip,
// a congestion window that follows W_cubic(t) = C (t - K)^3 + W_max (RFC 9438 eq. 1, 2):
// concave growth up to W_max at t = K, convex beyond it.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cubic } from '../../src/tcp/congestion/cubic.ts';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, expectSegment, payloadLength, seq, type Sent, TcpHarness } from '../helpers/tcp-harness.ts';

const MSS = 1460;
const RTT_MS = 100;
/** RFC 9438 4.5 and 4.6. */
const C = 0.4;
const BETA = 0.7;

test('CUBIC is the default congestion control; NewReno is selectable', async () => {
  const cubic = await TcpHarness.create();
  await acceptOne(cubic);
  assert.is(cubic.connection(80)!.cc.name, 'cubic');
  const reno = await TcpHarness.create({ tcp: { congestion: 'newreno' } });
  await acceptOne(reno);
  assert.is(reno.connection(80)!.cc.name, 'newreno');
});

test('after a loss, cwnd follows W_cubic(t) round trip by round trip: concave to W_max at K, convex beyond', async () => {
  const h = await TcpHarness.create();
  // A scaled peer window (65535 << 7) so that only cwnd limits the sender.
  const o = await acceptOne(h, 80, 1000, { mss: MSS, windowScale: 7 }, {}, RTT_MS);
  const conn = h.connection(80)!;
  const wMax = 100;
  conn.cc.cwnd = wMax * MSS;
  conn.cc.ssthresh = wMax * MSS; // in congestion avoidance, no loss yet
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(16 << 20, 3));
  let flight: Sent[] = h.sent();
  assert.is(flight.length, wMax);
  const start = o.iss + 1;

  // The first segment is lost: three duplicate ACKs, fast retransmit, cwnd = 0.7 W_max.
  for (let i = 0; i < 3; i++) h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, window: 65535 });
  // (The first two also let one new segment out each: limited transmit, RFC 3042.)
  expectSegment(h.sent().at(-1), seq(start), payloadLength(MSS));
  assert.is(conn.cc.ssthresh, BETA * wMax * MSS);
  // One round trip later everything is acknowledged: recovery ends with cwnd = ssthresh.
  await h.advance(RTT_MS);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: conn.snd.max, flags: ACK, window: 65535 });
  assert.is(conn.recovery.inRecovery, false);
  assert.is(conn.cc.cwnd, BETA * wMax * MSS);
  flight = h.sent();

  // RFC 9438 eq. 2: K = cbrt(W_max (1 - beta) / C), the time to get back to W_max.
  const k = Math.cbrt((wMax * (1 - BETA)) / C);
  const wCubic = (t: number): number => C * (t - k) ** 3 + wMax;
  // The epoch starts with the first ACK in congestion avoidance, one round trip from now.
  const epochStart = h.clock.now() + RTT_MS;
  const windows: number[] = [];
  // Each round trip the peer acknowledges every segment of the previous flight, one by one.
  for (let round = 1; round <= 60; round++) {
    await h.advance(RTT_MS);
    for (const s of flight) h.inject({ dstPort: 80, seq: o.peerSeq, ack: s.seq + s.payload.length, flags: ACK, window: 65535 });
    flight = h.sent();
    const t = (h.clock.now() - epochStart) / 1000;
    const w = conn.cc.cwnd / MSS;
    windows.push(w);
    // ACKs at time t aim cwnd at W_cubic(t + RTT) (RFC 9438 4.2), reached within the round trip.
    const low = wCubic(t) - 1;
    const high = wCubic(t + RTT_MS / 1000) + 1;
    assert.ok(w >= low && w <= high, `round ${round}, t = ${t.toFixed(1)} s: cwnd ${w.toFixed(2)} segments, W_cubic in [${low.toFixed(2)}, ${high.toFixed(2)}]`);
    // The sender keeps cwnd full: the next flight is cwnd's worth (whole segments).
    assert.ok(Math.abs(flight.length - Math.floor(w)) <= 1, `round ${round}: ${flight.length} segments sent, cwnd ${w.toFixed(2)}`);
  }
  // Concave before K: growth per round trip shrinks; convex after: it grows again.
  const growth = windows.slice(1).map((w, i) => w - windows[i]!);
  const kRound = Math.round((k * 1000) / RTT_MS);
  assert.ok(growth[2]! > growth[kRound - 6]!, 'concave region: slower near W_max');
  assert.ok(growth[growth.length - 1]! > growth[kRound]!, 'convex region: faster away from W_max');
  const atK = windows[kRound - 1]!;
  assert.ok(Math.abs(atK - wMax) < 1.5, `cwnd at t = K is ${atK.toFixed(2)}, W_max is ${wMax}`);
  assert.ok(windows[windows.length - 1]! > wMax, 'beyond K the window exceeds W_max');
});

test('Reno-friendly region (RFC 9438 4.3): W_est grows by alpha_cubic (0.53) per round trip up to cwnd_prior, then by 1', () => {
  const mss = 1000;
  const cc = new Cubic(mss);
  cc.cwnd = 20 * mss;
  cc.ssthresh = 20 * mss;
  cc.onCongestionEvent();
  cc.cwnd = cc.cwndAfterRecovery();
  assert.is(cc.cwnd, 14 * mss);
  // Round trips of 10 ms, every segment acknowledged: W_cubic stays far below (K = 2.5 s).
  let now = 1000;
  const growth: number[] = [];
  for (let round = 0; round < 25; round++) {
    const before = cc.cwnd;
    const segments = Math.floor(cc.cwnd / mss);
    for (let i = 0; i < segments; i++) cc.onAck(mss, now, 10);
    now += 10;
    growth.push((cc.cwnd - before) / mss);
  }
  const alpha = (3 * (1 - BETA)) / (1 + BETA);
  // Below cwnd_prior (20 segments): alpha_cubic per round (the first round starts the epoch).
  for (const g of growth.slice(1, 10)) assert.ok(Math.abs(g - alpha) < 0.06, `growth ${g} per round, alpha ${alpha}: ${growth}`);
  // Past it: Reno's one segment per round.
  for (const g of growth.slice(14)) assert.ok(Math.abs(g - 1) < 0.06, `growth ${g} per round past cwnd_prior: ${growth}`);
  assert.ok(cc.wEst > 20);
});

test.run();
