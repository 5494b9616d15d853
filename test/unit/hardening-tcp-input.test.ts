// Hardening of TCP input (issue 10): SYN cookies, ACK storms, the SACK scoreboard, challenge
// ACK budgets, ephemeral ports, received chunks and the slab, and FIN ordering. Each test is
// named after the item of the attack review it guards against.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IsnGenerator } from '../../src/tcp/isn.ts';
import { DEFAULT_TCP_CONFIG } from '../../src/tcp/config.ts';
import { PayloadSlab, SLAB_MIN_PAYLOAD } from '../../src/tcp/payload-slab.ts';
import { EPHEMERAL_FIRST, EPHEMERAL_LAST, PortSelector } from '../../src/tcp/ports.ts';
import { ChallengeAckBudget } from '../../src/tcp/rate-limit.ts';
import { SynCookies } from '../../src/tcp/syn-cookies.ts';
import { seededRandom } from '../../src/util/random.ts';
import { VirtualClock } from '../../src/util/clock.ts';
import { startServices } from '../../src/services/index.ts';
import '../../src/services/all.ts';
import type { Socket } from '../../src/tcp/socket.ts';
import { ACK, ack, expectSegment, FIN, flags, PEER_IP, PSH, RST, SYN, seq, TcpHarness } from '../helpers/tcp-harness.ts';
import { acceptOne } from '../helpers/tcp-open.ts';
import { stackPair, type StackPair } from '../helpers/tcp-pair.ts';

/** A harness whose listener on 80 keeps one half-open connection: the next SYN overflows. */
async function fullListener(): Promise<TcpHarness> {
  const h = await TcpHarness.create({ tcp: { maxSynBacklog: 1 } });
  h.stack.createServer(() => {}).listen(80);
  await h.advance(0);
  h.inject({ srcPort: 20000, dstPort: 80, seq: 0, flags: SYN });
  h.one();
  return h;
}

test('item 11: a cookie whose MSS bits were flipped is refused', async () => {
  const h = await fullListener();
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5000, flags: SYN, mss: 536 });
  const cookie = expectSegment(h.one(), flags(SYN | ACK));
  // Bits 24-26 held the MSS index in the old layout; any flip in the top byte must fail.
  for (const flip of [1 << 24, 2 << 24, 3 << 24, 4 << 24]) {
    h.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: (cookie.seq ^ flip) + 1, flags: ACK });
    expectSegment(h.one(), flags(RST));
  }
  assert.is(h.stack.tcp.find(80, PEER_IP, 20001), undefined);
  assert.is(h.stack.tcp.counters.synCookiesFailed, 4);
  // The genuine cookie opens the connection with the MSS the SYN asked for.
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK });
  const conn = h.stack.tcp.find(80, PEER_IP, 20001)!;
  assert.is(conn.state, 'ESTABLISHED');
  assert.is(conn.snd.mss, 536);
  assert.is(h.stack.tcp.counters.synCookiesAccepted, 1);
});

test('item 11: the options a cookie carries in the timestamp are authenticated too', async () => {
  const h = await fullListener();
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5000, flags: SYN, mss: 1460, windowScale: 2, sackPermitted: true, ts: [777, 0] });
  const cookie = expectSegment(h.one(), flags(SYN | ACK));
  // The peer claims another window scale in the echoed TSval.
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK, ts: [778, cookie.tsVal ^ 0x7] });
  expectSegment(h.one(), flags(RST));
  assert.is(h.stack.tcp.find(80, PEER_IP, 20001), undefined);
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK, ts: [778, cookie.tsVal] });
  assert.is(h.stack.tcp.find(80, PEER_IP, 20001)!.snd.wscale, 2);
});

test('item 11: without a recent SYN-queue overflow an ACK to a listener is not checked as a cookie', async () => {
  // Two stacks with the same seed and clock make the same cookies: one overflows and sends
  // a cookie, the other has never overflowed and must answer the same ACK with a reset.
  const a = await fullListener();
  a.inject({ srcPort: 20001, dstPort: 80, seq: 5000, flags: SYN, mss: 1460 });
  const cookie = expectSegment(a.one(), flags(SYN | ACK));
  const b = await TcpHarness.create({ tcp: { maxSynBacklog: 1 } });
  b.stack.createServer(() => {}).listen(80);
  await b.advance(0);
  b.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK });
  expectSegment(b.one(), flags(RST), seq(cookie.seq + 1));
  assert.is(b.stack.tcp.find(80, PEER_IP, 20001), undefined);
  assert.is(b.stack.tcp.counters.synCookiesFailed, 0, 'not even checked');
  // The stack that overflowed accepts it (within TCP_SYNCOOKIE_VALID of the overflow) ...
  a.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK });
  assert.is(a.stack.tcp.find(80, PEER_IP, 20001)!.state, 'ESTABLISHED');
  // ... but no more once two minutes have passed without one.
  a.inject({ srcPort: 20002, dstPort: 80, seq: 6000, flags: SYN, mss: 1460 });
  const late = expectSegment(a.one(), flags(SYN | ACK));
  await a.advance(120_001, 10_000);
  a.sent();
  a.inject({ srcPort: 20002, dstPort: 80, seq: 6001, ack: late.seq + 1, flags: ACK });
  expectSegment(a.one(), flags(RST), ack(0));
  assert.is(a.stack.tcp.find(80, PEER_IP, 20002), undefined);
  assert.is(a.stack.tcp.counters.synCookiesFailed, 0, 'not checked after TCP_SYNCOOKIE_VALID');
});

test('item 11: ISNs and SYN cookies have separate secrets', () => {
  const clock = new VirtualClock(1);
  const isn = new IsnGenerator(clock, 7);
  const cookies = new SynCookies(7, clock, DEFAULT_TCP_CONFIG, 1, 1500);
  assert.not.equal(isn.secret, cookies.h0.secret);
  assert.not.equal(isn.secret, cookies.h1.secret);
  assert.not.equal(cookies.h0.secret, cookies.h1.secret);
  assert.is(new SynCookies(7, clock, DEFAULT_TCP_CONFIG, 1, 1500).h1.secret.toString('hex'), cookies.h1.secret.toString('hex'), 'reproducible per seed');
});


/** Lets the stream machinery's nextTicks and immediates run while virtual time moves. */
async function runFor(clock: { advance(ms: number): void }, ms: number, step = 1): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await new Promise((r) => setImmediate(r));
  }
}

/** Writes to s whenever it drains, and never reads. */
function writeForever(s: Socket): void {
  const block = Buffer.alloc(64 * 1024, 1);
  s.pause();
  const fill = (): void => {
    while (s.write(block));
  };
  s.on('drain', fill);
  fill();
}

/** Segments both stacks send in `ms` of virtual time after the first `settleMs`. */
async function segmentsWhileShut(p: StackPair, settleMs: number, ms: number): Promise<number> {
  await runFor(p.clock, settleMs, 5);
  const before = p.a.tcp.counters.tx + p.b.tcp.counters.tx;
  await runFor(p.clock, ms, 5);
  return p.a.tcp.counters.tx + p.b.tcp.counters.tx - before;
}

test('item 5: two stacks that both write and never read do not start an ACK storm', async () => {
  const p = await stackPair();
  p.b.createServer((s) => writeForever(s)).listen(80);
  await runFor(p.clock, 1);
  const c = p.a.connect({ port: 80, host: '10.0.0.2' }, () => writeForever(c));
  // Both windows are shut within the first second; then only zero-window probes and their
  // answers (and at most one ACK per tcp_invalid_ratelimit for anything out of window).
  const n = await segmentsWhileShut(p, 1000, 2000);
  assert.ok(n < 100, `${n} segments in 2 s with both windows shut`);
  assert.is(p.a.tcp.counters.drops['tcp-not-in-window'] ?? 0, 0, 'bare ACKs stay inside the shut window (tcp_acceptable_seq)');
  assert.is(p.b.tcp.counters.drops['tcp-not-in-window'] ?? 0, 0);
});

test('item 5: the echo service and a client that never reads do not start an ACK storm', async () => {
  const p = await stackPair();
  const stop = await startServices(p.b, ['echo']);
  await runFor(p.clock, 1);
  const c = p.a.connect({ port: 7, host: '10.0.0.2' }, () => writeForever(c));
  const n = await segmentsWhileShut(p, 1000, 2000);
  assert.ok(n < 100, `${n} segments in 2 s with both windows shut`);
  await stop();
});

test('item 5: out-of-window segments get one ACK per tcp_invalid_ratelimit (500 ms) per connection', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  // Bare ACKs far beyond the window, as a confused peer in a loop would send them.
  for (let i = 0; i < 50; i++) h.inject({ dstPort: 80, seq: o.peerSeq + 5_000_000, ack: o.iss + 1, flags: ACK });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq));
  const conn = h.connection(80)!;
  assert.is(conn.stats.invalidAcksSkipped, 49);
  await h.advance(499);
  h.inject({ dstPort: 80, seq: o.peerSeq + 5_000_000, ack: o.iss + 1, flags: ACK });
  h.none();
  await h.advance(1);
  h.inject({ dstPort: 80, seq: o.peerSeq + 5_000_000, ack: o.iss + 1, flags: ACK });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq));
  // Data out of the window is not part of a loop (tcp_oow_rate_limited): always answered.
  h.inject({ dstPort: 80, seq: o.peerSeq + 5_000_000, ack: o.iss + 1, flags: ACK, payload: 'x' });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq));
  // Challenge ACKs share the connection's limit (tcp_send_challenge_ack).
  h.inject({ dstPort: 80, seq: o.peerSeq + 10, flags: RST });
  h.none();
  assert.is(h.stack.tcp.counters.invalidAcksSkipped, 51);
  assert.is(conn.state, 'ESTABLISHED');
});

test('item 5: after a zero-window probe, bare ACKs carry a sequence number inside the peer window (tcp_acceptable_seq)', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  // The peer shuts its window; we have data: the persist timer probes with one byte.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, window: 0 });
  o.socket.write('data');
  await h.advance(0);
  h.none();
  await h.advance(2000);
  const probe = h.sent().find((s) => s.payload.length === 1)!;
  expectSegment(probe, seq(o.iss + 1));
  // Data from the peer: our ACK must not carry SND.MAX (past the shut window).
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK | PSH, window: 0, payload: 'hello' });
  await h.advance(0);
  const acks = h.sent().filter((s) => s.payload.length === 0);
  assert.ok(acks.length > 0);
  for (const a of acks) expectSegment(a, seq(o.iss + 1), ack(o.peerSeq + 5));
});


test('item 13: the challenge ACK budget is per connection, then for the layer with a random size each second', async () => {
  const budgets = (seed: number): number[] => {
    const clock = new VirtualClock(0);
    const b = new ChallengeAckBudget(clock, 1000, seededRandom(seed));
    const out: number[] = [];
    for (let s = 0; s < 5; s++) {
      let n = 0;
      while (b.allow()) n++;
      out.push(n);
      clock.advance(1000);
    }
    return out;
  };
  const a = budgets(1);
  for (const n of a) assert.ok(n >= 500 && n < 1500, `${n} in [500, 1500)`);
  assert.ok(new Set(a).size > 1, 'not the same every second');
  assert.equal(budgets(1), a, 'deterministic per seed');
  assert.not.equal(budgets(2), a);
  // One connection gets one challenge ACK per tcp_invalid_ratelimit, whatever the budget.
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  for (let i = 0; i < 100; i++) h.inject({ dstPort: 80, seq: o.peerSeq + 1 + i, flags: RST });
  assert.is(h.sent().length, 1);
  await h.advance(500);
  for (let i = 0; i < 100; i++) h.inject({ dstPort: 80, seq: o.peerSeq + 1 + i, flags: SYN });
  assert.is(h.sent().length, 1);
});


test('item 8: a peer SACKing every other byte of a large flight: the scoreboard holds nothing per block, and each ACK costs a few steps', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: 1460, sackPermitted: true, windowScale: 7 });
  const conn = h.connection(80)!;
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(400_000, 1));
  await h.advance(0);
  // Slow start: acknowledge every flight until 117 KB or more are in flight at once.
  const window = 65535;
  let flightSent = h.sent();
  for (let round = 0; round < 8 && seqDiff(conn.snd.max, conn.snd.una) < 117_000; round++) {
    const acks = flightSent.map((seg) => (seg.seq + seg.payload.length) >>> 0);
    for (const a of acks) h.inject({ dstPort: 80, seq: o.peerSeq, ack: a, flags: ACK, window });
    await h.advance(0);
    flightSent = h.sent();
  }
  const una = conn.snd.una;
  const flight = seqDiff(conn.snd.max, una);
  assert.ok(flight >= 117_000, `${flight} bytes in flight`);
  const records = conn.sent.count;
  // Four 1-byte blocks per ACK, every other byte of the flight: some 58,000 blocks.
  let maxSteps = 0;
  let blocksSent = 0;
  for (let off = 1; off + 8 < flight; off += 8) {
    const b = [0, 2, 4, 6].flatMap((k) => [(una + off + k) >>> 0, (una + off + k + 1) >>> 0]);
    const before = conn.scoreboard.steps;
    h.inject({ dstPort: 80, seq: o.peerSeq, ack: una, flags: ACK, window, sack: b });
    maxSteps = Math.max(maxSteps, conn.scoreboard.steps - before);
    blocksSent += 4;
    if ((off & 0x3ff) === 1) h.sent();
  }
  assert.ok(blocksSent > 58_000, `${blocksSent} blocks`);
  assert.ok(maxSteps <= 8, `at most 8 steps per ACK, was ${maxSteps}`);
  // Nothing is kept per block: no segment is wholly SACKed, the log has one record per segment.
  assert.is(conn.sent.sackedBytes, 0);
  assert.ok(conn.sent.count <= records, 'no more records than segments sent');
  // The usual ACKs, a block growing by a segment each time, cost a few steps each too.
  maxSteps = 0;
  for (let k = 2; k < records; k++) {
    const before = conn.scoreboard.steps;
    h.inject({ dstPort: 80, seq: o.peerSeq, ack: una, flags: ACK, window, sack: [(una + 1460) >>> 0, (una + 1460 * k) >>> 0] });
    maxSteps = Math.max(maxSteps, conn.scoreboard.steps - before);
  }
  h.sent();
  assert.ok(maxSteps <= 8, `growing block: at most 8 steps per ACK, was ${maxSteps}`);
  assert.is(conn.sent.sackedBytes, 1460 * (records - 2));
  // A hostile ACK whose blocks differ from the last ones walks at most the segments in flight.
  const before = conn.scoreboard.steps;
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: una, flags: ACK, window, sack: [(una + 1) >>> 0, conn.snd.max] });
  assert.ok(conn.scoreboard.steps - before <= conn.sent.count + 4);
});

function seqDiff(a: number, b: number): number {
  return (a - b) >>> 0;
}


test('item 13: ephemeral ports by RFC 6056 double-hash selection, seeded, without Math.random', () => {
  const random = Math.random;
  Math.random = () => {
    throw new Error('Math.random used');
  };
  try {
    const ports = (seed: number, dst: number, dport: number, n: number): number[] => {
      const s = new PortSelector(seed);
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push(s.select(1, dst, dport, () => true)!);
      return out;
    };
    const a = ports(1, 0x0a000002, 80, 20);
    for (const p of a) assert.ok(p >= EPHEMERAL_FIRST && p <= EPHEMERAL_LAST, String(p));
    // Toward one destination the ports follow each other (a step of 2 to 16, wrapping).
    for (let i = 1; i < a.length; i++) {
      const d = (a[i]! - a[i - 1]! + 28232) % 28232;
      assert.ok(d >= 2 && d <= 16, `step ${d}`);
    }
    assert.equal(ports(1, 0x0a000002, 80, 20), a, 'deterministic per seed');
    assert.not.equal(ports(2, 0x0a000002, 80, 20), a, 'another seed, other ports');
    // Other destinations start from offsets of their own.
    const starts = new Set([80, 443, 8080, 22].map((dport) => ports(1, 0x0a000002, dport, 1)[0]));
    assert.is(starts.size, 4);
    assert.is.not(ports(1, 0x0a000003, 80, 1)[0], a[0]);
    // A port in use is skipped; when all are taken there is none.
    const s = new PortSelector(1);
    const first = s.select(1, 0x0a000002, 80, () => true)!;
    const taken = new Set<number>();
    for (let p = EPHEMERAL_FIRST; p <= EPHEMERAL_LAST; p++) if (p !== first) taken.add(p);
    assert.is(s.select(1, 0x0a000002, 80, (p) => !taken.has(p)), first);
    assert.is(s.select(1, 0x0a000002, 80, () => false), null);
  } finally {
    Math.random = random;
  }
});


test('item 13: out-of-order data past a queued FIN is dropped and counted; a FIN elsewhere is inconsistent', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  let got = '';
  let ended = false;
  o.socket.on('data', (d: Buffer) => (got += d.toString()));
  o.socket.on('end', () => (ended = true));
  const s = o.peerSeq;
  const at = (n: number) => (s + n) >>> 0;
  // "world" and the FIN arrive before "hello ": the stream ends at 11.
  h.inject({ dstPort: 80, seq: at(6), ack: o.iss + 1, flags: ACK | FIN, payload: 'world' });
  // Later out-of-order data past the FIN, and a FIN at another place: dropped.
  h.inject({ dstPort: 80, seq: at(11), ack: o.iss + 1, flags: ACK, payload: 'EXTRA' });
  h.inject({ dstPort: 80, seq: at(9), ack: o.iss + 1, flags: ACK, payload: 'ldXY' });
  h.inject({ dstPort: 80, seq: at(20), ack: o.iss + 1, flags: ACK | FIN, payload: 'late' });
  const drops = h.stack.tcp.counters.drops;
  assert.is(drops['tcp-data-past-fin'], 2);
  assert.is(drops['tcp-fin-inconsistent'], 1);
  // The gap fills: exactly the stream up to the FIN, then end.
  h.inject({ dstPort: 80, seq: at(0), ack: o.iss + 1, flags: ACK, payload: 'hello ' });
  await h.advance(0);
  assert.is(got, 'hello world');
  assert.ok(ended);
  assert.ok(h.connection(80)!.finReceived);
  assert.is(h.connection(80)!.rcv.nxt, at(12));
});

test('item 13: an in-order FIN drops what is held beyond it (tcp_fin purges the out-of-order queue)', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  let got = '';
  o.socket.on('data', (d: Buffer) => (got += d.toString()));
  const s = o.peerSeq;
  h.inject({ dstPort: 80, seq: (s + 10) >>> 0, ack: o.iss + 1, flags: ACK, payload: 'beyond' });
  h.inject({ dstPort: 80, seq: s, ack: o.iss + 1, flags: ACK | FIN, payload: 'the end' });
  await h.advance(0);
  assert.is(got, 'the end');
  const conn = h.connection(80)!;
  assert.ok(conn.finReceived);
  assert.is(conn.rcv.nxt, (s + 8) >>> 0);
  assert.ok(conn.reassembly.isEmpty);
  assert.is(h.stack.tcp.counters.drops['tcp-data-past-fin'], 1);
});


test('item 13: a kept small received chunk does not pin a large slab; large chunks stay slab views', async () => {
  const slab = new PayloadSlab();
  const src = Buffer.alloc(70_000, 7);
  const small = slab.copy(src, 0, 4096);
  assert.ok(small.buffer.byteLength <= 8192, `a 4 KB chunk holds ${small.buffer.byteLength} bytes`);
  const mid = slab.copy(src, 0, SLAB_MIN_PAYLOAD - 1);
  assert.is(mid.buffer.byteLength, SLAB_MIN_PAYLOAD - 1, 'its own memory');
  const large = slab.copy(src, 0, 65_000);
  const large2 = slab.copy(src, 0, 65_000);
  assert.is(large.buffer, large2.buffer, 'super-frames share a slab (no allocation per segment)');
  assert.ok(large.buffer.byteLength <= 8 * 65_000, 'a kept large chunk pins at most 8 times its size');
  assert.ok(large.equals(src.subarray(0, 65_000)));
  // Through the stack: a 4 KB segment delivered to the application is a buffer of its own.
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  const chunks: Buffer[] = [];
  o.socket.on('data', (d: Buffer) => chunks.push(d));
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(4096, 1) });
  await h.advance(0);
  assert.is(chunks.length, 1);
  assert.ok(chunks[0]!.buffer.byteLength <= 8192);
});

test.run();
