// RACK (RFC 8985) as the loss detection with SACK, segment by segment in virtual time: loss by
// send time (no reordering seen: a reordering window of 0 once DupThresh segments are SACKed),
// the reordering window and its timer once reordering has been seen, lost retransmissions
// found without a timeout, tail loss probes (RFC 8985 7) and the window reduction after a
// probe that repaired a loss, and what is (never) resent after SACKs, a timeout and a lost
// super-frame. The peer's ACKs are injected a few milliseconds apart, as a network would
// deliver them: RACK compares send times.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TcpConfig } from '../../src/tcp/config.ts';
import type { TcpEventName } from '../../src/tcp/counters.ts';
import type { Link, FrameReceiver } from '../../src/link/link.ts';
import { completePartialChecksum, emptyTxOffload } from '../../src/link/vnet.ts';
import { createStack } from '../../src/stack.ts';
import type { RecordingLink } from '../helpers/frames.ts';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, type Sent, TcpHarness } from '../helpers/tcp-harness.ts';

const MSS = 1000;

/** Segment numbers 0, 1, ... of the flight (by MSS from the first data byte). */
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * An established connection (MSS 1000, SACK, an RTT of 100 ms measured on the handshake:
 * SRTT 100, RTO 300) and the peer's moves, in segment numbers.
 */
async function open(tcp: Partial<TcpConfig> = {}, harness?: TcpHarness) {
  const h = harness ?? (await TcpHarness.create({ tcp: { congestion: 'newreno', ...tcp } }));
  const o = await acceptOne(h, 80, 1000, { mss: MSS, sackPermitted: true }, {}, 100);
  o.socket.setNoDelay(true);
  const start = (o.iss + 1) >>> 0;
  const at = (n: number) => (start + n * MSS) >>> 0;
  const number = (s: Sent) => ((s.seq - start) >>> 0) / MSS;
  return {
    h,
    conn: h.connection(80)!,
    counters: h.stack.tcp.counters,
    number,
    write: (segments: number) => o.socket.write(Buffer.alloc(segments * MSS, 1)),
    /** The peer's ACK of everything below segment n, with SACK blocks [from, to) of segments. */
    ack: (n: number, ...blocks: [number, number][]) =>
      h.inject({ dstPort: 80, seq: o.peerSeq, ack: at(n), flags: ACK, sack: blocks.flatMap(([a, b]) => [at(a), at(b)]) }),
    /** The data segments sent since the last look, by number; each is one MSS. */
    sent: (): number[] =>
      h
        .sent()
        .filter((s) => s.payload.length > 0)
        .map((s) => {
          assert.is(s.payload.length, MSS, `segment ${number(s)} carries one MSS`);
          return number(s);
        }),
    /** The deadlines set, relative to now (timers/deadlines.ts names them). */
    timers: () => h.connection(80)!.timers.describe(h.clock.now()),
    /** How long until deadline `name`, which must be set. */
    due: (name: 'rto' | 'tlp' | 'reorder'): number => {
      const t = h.connection(80)!.timers.describe(h.clock.now())[name];
      assert.ok(t !== undefined, `the ${name} deadline is set`);
      return t!;
    },
    /** The layer's counters named in `expected` have those values. */
    counts: (expected: Partial<Record<TcpEventName, number>>): void => {
      const c = h.stack.tcp.counters;
      const actual = Object.fromEntries(Object.keys(expected).map((k) => [k, c[k as TcpEventName]]));
      assert.equal(actual, expected);
    },
  };
}

/** `segments` written; the first window (ten at most) goes out; one RTT later the peer answers. */
async function flight(segments: number, tcp: Partial<TcpConfig> = {}) {
  const f = await open(tcp);
  f.write(segments);
  assert.equal(f.sent(), range(0, Math.min(segments, 10)));
  await f.h.advance(100);
  return f;
}

test('RACK without reordering seen: three SACKed segments above a hole mark it lost at once, and only it is resent', async () => {
  const f = await flight(10);
  f.ack(2);
  assert.equal(f.sent(), []);
  // One, then two segments SACKed above the hole: fewer than DupThresh, so RACK allows a
  // reordering window (min_RTT / 4) and waits on its timer.
  await f.h.advance(1);
  f.ack(2, [3, 4]);
  assert.equal(f.sent(), []);
  assert.ok(f.due('reorder') > 0, `the reordering timer waits: ${JSON.stringify(f.timers())}`);
  await f.h.advance(1);
  f.ack(2, [3, 5]);
  assert.equal(f.sent(), []);
  // The third: the window is 0 (RFC 8985 6.2 step 4) and segment 2, sent before the
  // delivered ones, is lost: fast retransmit of exactly that segment.
  await f.h.advance(1);
  f.ack(2, [3, 6]);
  assert.equal(f.sent(), [2]);
  assert.is(f.conn.recoveryPhase, 'sack-recovery');
  f.counts({ fastRetransmits: 1, retransmits: 1, reorderingSeen: 0 });
  assert.is(f.timers().reorder, undefined, 'no timer: nothing waits in the window');
  // Segments 6-9, sent with 2 but after the SACKed ones, are not lost: more SACKs resend nothing.
  await f.h.advance(1);
  f.ack(2, [3, 8]);
  assert.equal(f.sent(), []);
  await f.h.advance(100);
  f.ack(10);
  assert.equal(f.sent(), []);
  assert.is(f.conn.recoveryPhase, 'open');
  assert.is(f.counters.retransmits, 1);
});

/**
 * Reordering seen (RFC 8985 6.2 step 3): segment 0 arrives after segment 1 was SACKed, never
 * retransmitted. Then four segments go out (2-5) and, 100 ms later, 3-5 are SACKed.
 */
async function afterReordering() {
  const f = await flight(2);
  f.ack(0, [1, 2]);
  assert.equal(f.sent(), []);
  await f.h.advance(5);
  f.ack(2);
  assert.equal(f.sent(), []);
  f.counts({ reorderingSeen: 1, retransmits: 0 });
  f.write(4);
  assert.equal(f.sent(), [2, 3, 4, 5]);
  await f.h.advance(100);
  f.ack(2, [3, 6]);
  return f;
}

test('RACK after reordering: SACKs above a hole wait min_RTT / 4 on the reordering timer, then the hole is resent', async () => {
  const f = await afterReordering();
  // Three segments SACKed, which without reordering would be a loss at once: now the
  // reordering window holds, a quarter of the minimum RTT (100 ms).
  assert.equal(f.sent(), []);
  assert.is(f.conn.recoveryPhase, 'open');
  assert.is(f.due('reorder'), 25);
  await f.h.advance(24);
  assert.equal(f.sent(), []);
  assert.is(f.due('reorder'), 1);
  await f.h.advance(1);
  assert.equal(f.sent(), [2]);
  assert.is(f.conn.recoveryPhase, 'sack-recovery');
  f.counts({ fastRetransmits: 1, timeouts: 0 });
  assert.is(f.timers().reorder, undefined);
});

test('RACK after reordering: the hole acknowledged inside the window is never resent', async () => {
  const f = await afterReordering();
  assert.equal(f.sent(), []);
  await f.h.advance(20);
  f.ack(6);
  assert.equal(f.sent(), []);
  assert.is(f.timers().reorder, undefined, 'the reordering timer is cleared');
  await f.h.advance(1000);
  assert.equal(f.sent(), []);
  // Segment 2 arrived after 3-5: reordering, counted again.
  f.counts({ retransmits: 0, reorderingSeen: 2 });
  assert.is(f.conn.recoveryPhase, 'open');
});

test('RACK finds a lost retransmission when data sent after it is SACKed, without a timeout', async () => {
  const f = await flight(20);
  f.ack(0, [1, 4]);
  assert.equal(f.sent(), [0]);
  // The originals arrive; PRR lets new data out after the retransmission.
  await f.h.advance(5);
  f.ack(0, [1, 10]);
  const fresh = f.sent();
  assert.ok(fresh.length > 0 && fresh.every((n) => n >= 10), `only new data: ${fresh}`);
  // A duplicate ACK says nothing of the retransmission: nothing sent after it was delivered.
  await f.h.advance(5);
  f.ack(0, [1, 10]);
  assert.equal(f.sent(), []);
  assert.is(f.counters.lostRetransmissions, 0);
  // Segment 10, sent 5 ms after the retransmission, is SACKed with 0 still missing: the
  // retransmission was lost (RFC 8985 6.2 step 5) and goes again, first.
  await f.h.advance(95);
  f.ack(0, [1, 11]);
  const again = f.sent();
  assert.is(again[0], 0);
  assert.ok(again.slice(1).every((n) => n > 10), `besides 0 only new data: ${again}`);
  // Found by RACK in the same recovery, not by a timeout.
  f.counts({ lostRetransmissions: 1, timeouts: 0, fastRetransmits: 1 });
  assert.is(f.conn.recoveryPhase, 'sack-recovery');
});

test('tail loss probe: a lost tail is probed after 2 SRTT; its SACK marks the segments before it lost, resent without a timeout', async () => {
  const f = await flight(5);
  f.ack(2);
  assert.equal(f.sent(), []);
  // Segments 2-4 are lost. PTO = 2 * SRTT (RFC 8985 7.2) + 2 ms (Linux's TCP_TIMEOUT_MIN),
  // before the RTO.
  const pto = f.due('tlp');
  assert.is(pto, 2 * f.conn.rtt.srtt + 2);
  assert.ok(pto < f.due('rto'));
  await f.h.advance(pto - 1);
  assert.equal(f.sent(), []);
  await f.h.advance(1);
  assert.equal(f.sent(), [4], 'the probe: the last segment again (no new data)');
  assert.is(f.counters.tailLossProbes, 1);
  // The probe is SACKed: 2 and 3, sent long before it, are lost at once.
  await f.h.advance(100);
  f.ack(2, [4, 5]);
  assert.equal(f.sent(), [2, 3]);
  assert.is(f.conn.recoveryPhase, 'sack-recovery');
  f.counts({ fastRetransmits: 1, timeouts: 0 });
  await f.h.advance(100);
  f.ack(5);
  assert.equal(f.sent(), []);
  assert.is(f.conn.recoveryPhase, 'open');
  assert.is(f.counters.retransmits, 3);
});

test('tail loss probe: a PTO later than the RTO is clamped to it, and the probe goes in the RTO\'s place (RFC 8985 7.2, Linux)', async () => {
  const f = await open();
  f.write(1);
  assert.equal(f.sent(), [0]);
  // One segment out: PTO = 2 SRTT + 200 ms (the peer's delayed ACK) = 400 ms, past the RTO
  // (SRTT + 200 ms = 300 ms). Linux and RFC 8985 TLP_calc_PTO take the RTO's time instead of
  // skipping the probe.
  assert.is(f.due('rto'), 300);
  assert.is(f.due('tlp'), 300);
  await f.h.advance(299);
  assert.equal(f.sent(), []);
  await f.h.advance(1);
  assert.equal(f.sent(), [0], 'the probe: the last segment again');
  f.counts({ tailLossProbes: 1, timeouts: 0 });
  // The probe restarts the RTO (RFC 8985 7.3); only if it too goes unanswered does the RTO come.
  assert.is(f.due('rto'), 300);
  assert.is(f.timers().tlp, undefined);
  await f.h.advance(300);
  assert.equal(f.sent(), [0]);
  f.counts({ tailLossProbes: 1, timeouts: 1 });
});

/**
 * Segment 4 of five is lost, the tail loss probe resends it, then two new segments (5, 6)
 * go. The peer's ACK of 5 (what was sent when the probe went, tlpHigh) carries a D-SACK of
 * the probe or not; then the ACK of 7 goes beyond tlpHigh.
 */
async function probeRepairs(dsackOfProbe: boolean) {
  const f = await flight(5, { congestion: 'cubic' });
  f.ack(3);
  await f.h.advance(f.due('tlp'));
  assert.equal(f.sent(), [4]);
  f.write(2);
  assert.equal(f.sent(), [5, 6]);
  const before = { cwnd: f.conn.cc.cwnd, ssthresh: f.conn.cc.ssthresh };
  await f.h.advance(100);
  if (dsackOfProbe) f.ack(5, [4, 5]);
  else f.ack(5);
  // The ACK up to tlpHigh does not decide yet (RFC 8985 7.4.2, Linux tcp_process_tlp_ack).
  assert.is(f.counters.tailLossProbeRecoveries, 0);
  assert.ok(f.conn.cc.cwnd >= before.cwnd);
  await f.h.advance(1);
  f.ack(7);
  assert.equal(f.sent(), []);
  return { f, before };
}

test('tail loss probe: its ACK beyond tlpHigh without a D-SACK means it repaired a loss: cwnd comes down to ssthresh, once', async () => {
  const { f, before } = await probeRepairs(false);
  assert.is(f.counters.tailLossProbeRecoveries, 1);
  assert.ok(f.conn.cc.ssthresh < before.cwnd, `ssthresh ${f.conn.cc.ssthresh} below cwnd ${before.cwnd}`);
  assert.is(f.conn.cc.cwnd, f.conn.cc.ssthresh);
  assert.is(f.conn.recoveryPhase, 'open');
  assert.is(f.counters.fastRetransmits, 0);
  const reduced = f.conn.cc.ssthresh;
  // The next round trip: no second reduction.
  f.write(2);
  assert.equal(f.sent(), [7, 8]);
  await f.h.advance(100);
  f.ack(9);
  assert.is(f.counters.tailLossProbeRecoveries, 1);
  assert.is(f.conn.cc.ssthresh, reduced);
  assert.ok(f.conn.cc.cwnd >= reduced);
});

test('tail loss probe: a D-SACK of the probe says both copies arrived: no reduction', async () => {
  const { f, before } = await probeRepairs(true);
  f.counts({ dsacksReceived: 1, tailLossProbeRecoveries: 0 });
  assert.is(f.conn.cc.ssthresh, before.ssthresh);
  assert.ok(f.conn.cc.cwnd >= before.cwnd, `cwnd ${f.conn.cc.cwnd} kept (was ${before.cwnd})`);
  f.counts({ dsackUndos: 0, recoveryUndos: 0, lossUndos: 0 });
});

test("the issue's scenario: of six segments 2 and 4 are lost, 3 and 5-6 SACKed: only the holes are resent, before and after a timeout", async () => {
  // Numbered from 0 below: segments 1 and 3 lost, 2 and 4-5 SACKed.
  const f = await open();
  const resent: number[] = [];
  const look = () => {
    const s = f.sent();
    resent.push(...s);
    return s;
  };
  f.write(6);
  assert.equal(f.sent(), range(0, 6));
  await f.h.advance(100);
  f.ack(1);
  assert.equal(look(), []);
  // Three duplicate ACKs, each SACKing one more segment.
  await f.h.advance(1);
  f.ack(1, [2, 3]);
  assert.equal(look(), []);
  await f.h.advance(1);
  f.ack(1, [4, 5], [2, 3]);
  assert.equal(look(), []);
  await f.h.advance(1);
  f.ack(1, [4, 6], [2, 3]);
  assert.equal(look(), [1, 3], 'both holes, once each');
  assert.is(f.conn.recoveryPhase, 'sack-recovery');
  // The retransmissions are lost too and nothing comes back: the retransmission timeout.
  const rto = f.due('rto');
  await f.h.advance(rto - 1);
  assert.equal(look(), []);
  await f.h.advance(1);
  assert.equal(look(), [1], 'after the timeout, the first hole (cwnd is one segment)');
  assert.is(f.counters.timeouts, 1);
  assert.is(f.conn.recoveryPhase, 'loss');
  assert.is(f.conn.sent.sackedBytes, 3 * MSS, 'the SACK information outlives the timeout');
  // Segment 1 arrives: the ACK covers 2, SACKed; the other hole follows, not 4 or 5.
  await f.h.advance(100);
  f.ack(3, [4, 6]);
  assert.equal(look(), [3]);
  await f.h.advance(100);
  f.ack(6);
  assert.equal(look(), []);
  assert.is(f.conn.recoveryPhase, 'open');
  assert.equal(resent, [1, 3, 1, 3], 'no SACKed segment was ever resent');
  assert.is(f.counters.sackRenegings, 0);
});

/**
 * A RecordingLink behind a link with segmentation offload, as a TAP with IFF_VNET_HDR: the
 * stack builds super-frames up to 64 KB; this completes their partial checksum so that the
 * harness reads each as one segment.
 */
class OffloadLink implements Link {
  readonly gsoMaxSize = 65535;
  readonly txOffload = emptyTxOffload();
  constructor(private readonly inner: RecordingLink) {}
  get mtu(): number {
    return this.inner.mtu;
  }
  send(buf: Buffer, off: number, len: number): void {
    const frame = Buffer.from(buf.subarray(off, off + len));
    const t = this.txOffload;
    if (t.checksumStart !== 0) completePartialChecksum(frame, t.checksumStart, t.checksumStart + t.checksumOffset, len);
    this.inner.send(frame, 0, len);
  }
  setReceiver(r: FrameReceiver): void {
    this.inner.setReceiver(r);
  }
  setBatchEndHandler(handler: () => void): void {
    this.inner.setBatchEndHandler(handler);
  }
  close(): void {}
}

test('burst loss of a whole super-frame (TSO): the lost segments are resent once each, in super-frames as the window allows, and no SACKed one', async () => {
  const h = new TcpHarness();
  h.stack = await createStack({ link: new OffloadLink(h.link), clock: h.clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 7, tcp: { congestion: 'newreno' } });
  assert.is(h.stack.gsoMaxSize, 65535);
  const f = await open({}, h);
  const frames = () => h.sent().map((s) => [f.number(s), s.payload.length / MSS]);
  f.write(10);
  // A frame holds at most a third of the window (output.ts, sizeGoal): 3 segments of IW10;
  // the tenth waits for the size goal until the ACKs bring the flight below it.
  assert.equal(frames(), [
    [0, 3],
    [3, 3],
    [6, 3],
  ]);
  // Each segment acknowledged on its own: cwnd grows to 20 segments.
  await h.advance(100);
  for (let n = 1; n <= 10; n++) f.ack(n);
  assert.equal(frames(), [[9, 1]]);
  // Three writes of six segments: three super-frames, 10-15, 16-21 and 22-27.
  for (let k = 0; k < 3; k++) f.write(6);
  assert.equal(frames(), [
    [10, 6],
    [16, 6],
    [22, 6],
  ]);
  // The middle frame is lost whole: 10-15 are acknowledged, then 22-27 SACKed.
  await h.advance(100);
  f.ack(16);
  assert.equal(frames(), []);
  await h.advance(1);
  f.ack(16, [22, 28]);
  // NewReno's ssthresh is half the flight of 12: six segments, and the pipe holds none of
  // the lost ones: as Linux's tcp_retransmit_skb, the run goes as one frame.
  const resent: number[][] = [];
  let una = 16;
  for (let round = 0; round < 10 && una < 22; round++) {
    const s = frames();
    resent.push(...s);
    // Every retransmission arrives; the peer acknowledges up to the next segment missing.
    for (const [first, n] of s) if (first === una) una = first! + n!;
    await h.advance(10);
    if (una < 22) f.ack(una, [22, 28]);
    else f.ack(28);
  }
  resent.push(...frames());
  const segments = resent.flatMap(([first, n]) => range(first!, first! + n!));
  assert.equal(segments, range(16, 22), `the six lost segments, each once: ${JSON.stringify(resent)}`);
  assert.ok(resent.length < 6, `in fewer frames than segments: ${JSON.stringify(resent)}`);
  assert.is(f.conn.snd.una, (f.conn.snd.iss + 1 + 28 * MSS) >>> 0);
  assert.is(f.conn.recoveryPhase, 'open');
  f.counts({ timeouts: 0, fastRetransmits: 1, retransmits: 6 });
});

test('regression: an ACK that both advances and SACKs above is not reordering (the fack before the ACK counts)', async () => {
  const f = await flight(10, { congestion: 'cubic' });
  // Segments 0-1 arrive, 2 is lost, 3-5 arrive: one ACK says both.
  f.ack(2, [3, 6]);
  f.counts({ reorderingSeen: 0 });
  assert.equal(f.sent(), [2]);
  assert.is(f.conn.recoveryPhase, 'sack-recovery');
});

test.run();
