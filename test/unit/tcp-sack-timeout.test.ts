// SACK information across a retransmission timeout (RFC 6675 5.1, Linux's tcp_enter_loss):
// after a timeout only the holes go again, never what the peer SACKed; a receiver that
// reneges (its cumulative ACK stops at SACKed data, Linux's tcp_check_sack_reneging) loses
// that trust and everything from SND.UNA is resent.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, type Sent, TcpHarness } from '../helpers/tcp-harness.ts';

const MSS = 1000;

async function sixSegmentsInFlight(): Promise<{ h: TcpHarness; start: number; peerSeq: number }> {
  const h = await TcpHarness.create({ tcp: { congestion: 'newreno' } });
  const o = await acceptOne(h, 80, 1000, { mss: MSS, sackPermitted: true }, {}, 100);
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(6 * MSS, 1));
  assert.is(h.sent().length, 6);
  return { h, start: (o.iss + 1) >>> 0, peerSeq: o.peerSeq };
}

/** Segment numbers (0-based, by MSS) of the data segments sent. */
function segments(sent: Sent[], start: number): number[] {
  return sent.filter((s) => s.payload.length > 0).map((s) => ((s.seq - start) >>> 0) / MSS);
}

test("the issue's scenario: segments 1 and 3 lost, 2 and 4-5 SACKed: only the holes are resent, before and after a timeout", async () => {
  const { h, start, peerSeq } = await sixSegmentsInFlight();
  const at = (n: number) => (start + n * MSS) >>> 0;
  const resent: number[] = [];
  const ackWith = (ack: number, sack: number[]) => {
    h.inject({ dstPort: 80, seq: peerSeq, ack, flags: ACK, sack });
    resent.push(...segments(h.sent(), start));
  };
  ackWith(at(1), []);
  ackWith(at(1), [at(2), at(3)]);
  ackWith(at(1), [at(4), at(5), at(2), at(3)]);
  ackWith(at(1), [at(4), at(6), at(2), at(3)]);
  assert.ok(resent.includes(1), `the first hole is retransmitted: ${resent}`);
  // Nothing comes back: the retransmission timeout (300 ms after the measured 100 ms RTT).
  await h.advance(2000, 50);
  resent.push(...segments(h.sent(), start));
  const conn = h.connection(80)!;
  assert.ok(h.stack.tcp.counters.timeouts >= 1, 'a timeout happened');
  for (const n of resent) assert.ok(n === 1 || n === 3, `only holes are resent, not SACKed segment ${n}: ${resent}`);
  assert.ok(resent.filter((n) => n === 1).length >= 2, `the first hole went again after the timeout: ${resent}`);
  assert.is(conn.recoveryPhase, 'loss');
  // Segment 1 arrives: the ACK covers 2 too; the next hole, 3, goes (slow start from one segment).
  resent.length = 0;
  ackWith(at(3), [at(4), at(6)]);
  assert.equal(resent, [3]);
  ackWith(at(6), []);
  assert.is(conn.snd.una, at(6));
  assert.is(conn.recoveryPhase, 'open');
  assert.is(h.stack.tcp.counters.sackRenegings, 0);
});

test('a receiver that reneges (its cumulative ACK stops at SACKed data) is no longer trusted: all is resent from SND.UNA', async () => {
  const { h, start, peerSeq } = await sixSegmentsInFlight();
  const at = (n: number) => (start + n * MSS) >>> 0;
  h.inject({ dstPort: 80, seq: peerSeq, ack: at(1), flags: ACK, sack: [at(2), at(6)] });
  h.sent();
  // The cumulative ACK moves to 2, where SACKed data begins, and goes no further.
  h.inject({ dstPort: 80, seq: peerSeq, ack: at(2), flags: ACK });
  h.sent();
  assert.is(h.stack.tcp.counters.sackRenegings, 1);
  assert.is(h.connection(80)!.sent.sackedBytes, 0, 'the SACK information is forgotten');
  // The timer fires soon (SRTT / 2, not the RTO of 300 ms) and everything from SND.UNA goes
  // again, starting with segment 2, which the peer had SACKed.
  await h.advance(60, 10);
  assert.equal(segments(h.sent(), start), [2]);
  h.inject({ dstPort: 80, seq: peerSeq, ack: at(3), flags: ACK });
  const next = segments(h.sent(), start);
  assert.ok(next.includes(3), `segment 3, SACKed before the reneging, is resent: ${next}`);
});

test('without SACK a timeout still goes back to SND.UNA', async () => {
  const h = await TcpHarness.create({ tcp: { congestion: 'newreno', sack: false } });
  const o = await acceptOne(h, 80, 1000, { mss: MSS }, {}, 100);
  o.socket.write(Buffer.alloc(4 * MSS, 2));
  assert.is(h.sent().length, 4);
  await h.advance(300);
  const again = h.sent();
  assert.equal(segments(again, (o.iss + 1) >>> 0), [0]);
  assert.is(h.connection(80)!.recoveryPhase, 'open');
});

test.run();
