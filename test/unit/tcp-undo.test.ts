// Undoing congestion responses that were not needed (recovery/undo.ts, recovery/frto.ts),
// segment by segment in virtual time: Eifel detection in fast recovery (RFC 3522: the ACK
// echoes a timestamp older than the first retransmission), D-SACK undo (RFC 3708: every
// retransmission reported back as a duplicate), and F-RTO after a timeout (RFC 5682 3: data
// never retransmitted is acknowledged). Each case has its control: the same episode with the
// sign missing keeps the reduction and goes on recovering.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TcpConfig } from '../../src/tcp/config.ts';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, type Sent, TcpHarness } from '../helpers/tcp-harness.ts';

const MSS = 1000;
/** The peer's TSval, the same on every segment (PAWS only rejects older ones). */
const PEER_TS = 500;
/** cwnd and ssthresh of a fresh connection: ten segments, and no threshold yet. */
const INITIAL = { cwnd: 10 * MSS, ssthresh: 2147483647 };

interface Options {
  tcp?: Partial<TcpConfig>;
  /** Negotiate timestamps (RFC 7323); the peer then echoes what each ACK is given. */
  timestamps?: boolean;
}

/**
 * An established connection (MSS 1000, SACK, CUBIC, an RTT of 100 ms measured on the
 * handshake: RTO 300 ms) with ten segments in flight, and the peer's moves in segment numbers.
 */
async function tenInFlight(options: Options = {}, segments = 10) {
  const h = await TcpHarness.create({ tcp: { congestion: 'cubic', ...options.tcp } });
  // With timestamps the option takes 12 bytes of the peer's MSS: the send MSS is still 1000.
  const syn = options.timestamps ? { mss: MSS + 12, ts: [PEER_TS, 0] as [number, number] } : { mss: MSS };
  const o = await acceptOne(h, 80, 1000, { sackPermitted: true, ...syn }, {}, 100);
  o.socket.setNoDelay(true);
  const conn = h.connection(80)!;
  assert.is(conn.snd.mss, MSS);
  const start = (o.iss + 1) >>> 0;
  const at = (n: number) => (start + n * MSS) >>> 0;
  let last: Sent[] = [];
  const f = {
    h,
    conn,
    counters: h.stack.tcp.counters,
    /** The data segments sent since the last look, by number (their TSvals are in `last`). */
    sent: (): number[] => {
      last = h.sent().filter((s) => s.payload.length > 0);
      return last.map((s) => ((s.seq - start) >>> 0) / MSS);
    },
    /** TSval of the i-th segment of the last look. */
    tsVal: (i = 0) => last[i]!.tsVal,
    /** The peer's ACK of everything below segment n, SACK blocks of segments, the TSecr it echoes. */
    ack: (n: number, blocks: [number, number][] = [], tsEcr?: number) =>
      h.inject({
        dstPort: 80,
        seq: o.peerSeq,
        ack: at(n),
        flags: ACK,
        sack: blocks.flatMap(([a, b]) => [at(a), at(b)]),
        ...(tsEcr === undefined ? {} : { ts: [PEER_TS, tsEcr] as [number, number] }),
      }),
    window: () => ({ cwnd: conn.cc.cwnd, ssthresh: conn.cc.ssthresh }),
    undos: () => {
      const c = h.stack.tcp.counters;
      return { recovery: c.recoveryUndos, dsack: c.dsackUndos, loss: c.lossUndos, spuriousRtos: c.spuriousRtos };
    },
  };
  assert.equal(f.window(), INITIAL);
  o.socket.write(Buffer.alloc(segments * MSS, 1));
  assert.equal(f.sent(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  return f;
}

type Flight = Awaited<ReturnType<typeof tenInFlight>>;

/** Restored: ssthresh as before the episode, cwnd at least as before (it may have grown since). */
function assertRestored(f: Flight): void {
  assert.is(f.conn.cc.ssthresh, INITIAL.ssthresh);
  assert.ok(f.conn.cc.cwnd >= INITIAL.cwnd, `cwnd ${f.conn.cc.cwnd} back to at least ${INITIAL.cwnd}`);
  assert.is(f.conn.recoveryPhase, 'open');
  assert.is(f.conn.sent.lostBytes, 0, 'no segment is deemed lost any more');
}

/** Still reduced: CUBIC's ssthresh (0.7 of the ten segments) and cwnd no more than that. */
function assertReduced(f: Flight): void {
  assert.is(f.conn.cc.ssthresh, 7 * MSS);
  assert.ok(f.conn.cc.cwnd <= 7 * MSS, `cwnd ${f.conn.cc.cwnd}`);
}

/**
 * Segment 0 is delayed, not lost: 1-3 are SACKed and it is fast-retransmitted, with a newer
 * TSval than the original's. Returns both TSvals.
 */
async function fastRecoveryWithTimestamps() {
  const f = await tenInFlight({ timestamps: true });
  const original = f.tsVal();
  await f.h.advance(100);
  f.ack(0, [[1, 4]], original);
  assert.equal(f.sent(), [0]);
  const retransmission = f.tsVal();
  assert.ok(retransmission > original, `TSvals ${original} then ${retransmission}`);
  assert.is(f.conn.recoveryPhase, 'sack-recovery');
  assertReduced(f);
  return { f, original, retransmission };
}

test('Eifel: the ACK that fills the hole echoes the original TSval: cwnd and ssthresh restored, recovery over', async () => {
  const { f, original } = await fastRecoveryWithTimestamps();
  await f.h.advance(5);
  f.ack(4, [], original);
  assertRestored(f);
  assert.equal(f.undos(), { recovery: 1, dsack: 0, loss: 0, spuriousRtos: 0 });
  assert.equal(f.sent(), []);
  // The rest of the flight: no further retransmission, no second undo.
  await f.h.advance(5);
  f.ack(10, [], original);
  assert.equal(f.sent(), []);
  assert.is(f.counters.retransmits, 1);
  assert.is(f.undos().recovery, 1);
});

test('Eifel control: the ACK echoes the retransmission TSval: no undo, the reduction stays', async () => {
  const { f, retransmission } = await fastRecoveryWithTimestamps();
  await f.h.advance(5);
  f.ack(4, [], retransmission);
  assert.is(f.conn.recoveryPhase, 'sack-recovery');
  assertReduced(f);
  await f.h.advance(5);
  f.ack(10, [], retransmission);
  assert.is(f.conn.recoveryPhase, 'open');
  assertReduced(f);
  assert.equal(f.undos(), { recovery: 0, dsack: 0, loss: 0, spuriousRtos: 0 });
});

/** Without timestamps (no Eifel): SACKs of [from, 5) make the segments below `from` lost. */
async function fastRecoveryOf(holes: number) {
  const f = await tenInFlight();
  await f.h.advance(100);
  f.ack(0, [[holes, 5]]);
  assert.equal(f.sent(), Array.from({ length: holes }, (_, i) => i));
  assertReduced(f);
  return f;
}

test('D-SACK undo: the only retransmission is reported a duplicate during recovery: cwnd and ssthresh restored', async () => {
  const f = await fastRecoveryOf(1);
  // The original of 0 arrives (still in recovery: 5-9 are not acknowledged), then its retransmission.
  await f.h.advance(5);
  f.ack(5);
  assert.is(f.conn.recoveryPhase, 'sack-recovery');
  assert.equal(f.undos(), { recovery: 0, dsack: 0, loss: 0, spuriousRtos: 0 }, 'no timestamps: nothing proves it yet');
  await f.h.advance(5);
  f.ack(5, [[0, 1]]);
  assert.is(f.counters.dsacksReceived, 1);
  assertRestored(f);
  assert.equal(f.undos(), { recovery: 0, dsack: 1, loss: 0, spuriousRtos: 0 });
  assert.equal(f.sent(), []);
});

test('D-SACK undo: also when the D-SACK comes after the recovery ended', async () => {
  const f = await fastRecoveryOf(1);
  await f.h.advance(5);
  f.ack(10);
  assert.is(f.conn.recoveryPhase, 'open');
  assertReduced(f);
  await f.h.advance(5);
  f.ack(10, [[0, 1]]);
  assertRestored(f);
  assert.equal(f.undos(), { recovery: 0, dsack: 1, loss: 0, spuriousRtos: 0 });
});

test('D-SACK undo control: of two retransmissions one D-SACKed is not enough; the second completes the proof', async () => {
  const f = await fastRecoveryOf(2);
  await f.h.advance(5);
  f.ack(10);
  await f.h.advance(5);
  f.ack(10, [[0, 1]]);
  assertReduced(f);
  assert.is(f.undos().dsack, 0);
  await f.h.advance(5);
  f.ack(10, [[1, 2]]);
  assertRestored(f);
  assert.is(f.undos().dsack, 1);
});

/**
 * Nothing comes back: the retransmission timeout (300 ms) resends segment 0 with cwnd one
 * segment. Tail loss probes are off, so that the timeout is the first thing to fire.
 */
async function afterTimeout(options: Options = {}, segments = 10) {
  const f = await tenInFlight({ ...options, tcp: { tailLossProbe: false, ...options.tcp } }, segments);
  const original = f.tsVal();
  await f.h.advance(299);
  assert.equal(f.sent(), []);
  await f.h.advance(1);
  assert.equal(f.sent(), [0]);
  const retransmission = f.tsVal();
  assert.is(f.counters.timeouts, 1);
  assert.is(f.conn.retries, 1);
  assert.is(f.conn.recoveryPhase, 'loss');
  assert.equal(f.window(), { cwnd: MSS, ssthresh: 7 * MSS });
  await f.h.advance(10);
  return { f, original, retransmission };
}

test('F-RTO: after a timeout the ACK covers segment 1, never retransmitted: spurious, undone', async () => {
  const { f } = await afterTimeout();
  f.ack(2);
  assert.equal(f.undos(), { recovery: 0, dsack: 0, loss: 1, spuriousRtos: 1 });
  assertRestored(f);
  assert.is(f.conn.retries, 0);
  // The loss marks are forgotten: 2-9 are not resent.
  assert.equal(f.sent(), []);
  await f.h.advance(10);
  f.ack(10);
  assert.equal(f.sent(), []);
  assert.is(f.counters.retransmits, 1);
});

test('F-RTO control: ACKs and SACKs of retransmitted data only: no undo, the holes go on being resent', async () => {
  const { f } = await afterTimeout();
  // The retransmission of 0 is acknowledged: nothing new to send instead (step 2b), so
  // conventional recovery goes on, by slow start from one segment.
  f.ack(1);
  assert.equal(f.sent(), [1, 2]);
  // A duplicate ACK SACKs the retransmission of 2: still nothing never resent.
  await f.h.advance(10);
  f.ack(1, [[2, 3]]);
  assert.equal(f.sent(), [3]);
  await f.h.advance(10);
  f.ack(3);
  assert.equal(f.sent(), [4, 5]);
  assert.equal(f.undos(), { recovery: 0, dsack: 0, loss: 0, spuriousRtos: 0 });
  assert.is(f.conn.recoveryPhase, 'loss');
  assert.is(f.conn.cc.ssthresh, 7 * MSS);
});

test('F-RTO step 2b: with more data waiting, the first ACK lets new data out instead of retransmissions; a duplicate then says the loss was real', async () => {
  const { f } = await afterTimeout({}, 20);
  f.ack(1);
  assert.equal(f.sent(), [10, 11], 'new data, not the holes');
  assert.is(f.conn.recoveryPhase, 'loss');
  // A duplicate ACK (step 3a): the timeout was genuine; the holes are resent as the window allows.
  await f.h.advance(10);
  f.ack(1);
  assert.equal(f.sent(), []);
  assert.is(f.conn.recovery.frto, false);
  // New segment 10 is SACKed: RACK marks what was sent before it lost, and 1 goes again.
  await f.h.advance(10);
  f.ack(1, [[10, 11]]);
  assert.equal(f.sent(), [1]);
  assert.equal(f.undos(), { recovery: 0, dsack: 0, loss: 0, spuriousRtos: 0 });
  assert.is(f.conn.recoveryPhase, 'loss');
});

test('frto: false: the same ACK of never-retransmitted data undoes nothing, recovery goes on (no timestamps: no Eifel)', async () => {
  const { f } = await afterTimeout({ tcp: { frto: false } });
  f.ack(2);
  assert.equal(f.sent(), [2, 3]);
  assert.equal(f.undos(), { recovery: 0, dsack: 0, loss: 0, spuriousRtos: 0 });
  assert.is(f.conn.recoveryPhase, 'loss');
  assert.equal(f.window(), { cwnd: 2 * MSS, ssthresh: 7 * MSS });
});

test('frto: false with timestamps: an echo of the original TSval still undoes the timeout (Eifel, not F-RTO); a newer echo does not', async () => {
  for (const echoOriginal of [true, false]) {
    const { f, original, retransmission } = await afterTimeout({ tcp: { frto: false }, timestamps: true });
    f.ack(2, [], echoOriginal ? original : retransmission);
    if (echoOriginal) {
      assertRestored(f);
      assert.equal(f.undos(), { recovery: 0, dsack: 0, loss: 1, spuriousRtos: 0 });
      assert.equal(f.sent(), []);
    } else {
      assert.equal(f.undos(), { recovery: 0, dsack: 0, loss: 0, spuriousRtos: 0 });
      assert.is(f.conn.recoveryPhase, 'loss');
      assert.equal(f.sent(), [2, 3]);
    }
  }
});

test('regression: F-RTO step 2b, the new data is SACKed over a hole: the loss was real, no undo', async () => {
  const { f } = await afterTimeout({}, 20);
  f.ack(1);
  assert.equal(f.sent(), [10, 11]);
  await f.h.advance(10);
  // Only data sent after the timeout arrives: it cannot say the timeout was spurious.
  f.ack(1, [[10, 11]]);
  assert.equal(f.undos(), { recovery: 0, dsack: 0, loss: 0, spuriousRtos: 0 });
  assert.is(f.conn.recoveryPhase, 'loss');
  assert.equal(f.sent(), [1]);
});

test.run();
