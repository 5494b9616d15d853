// Proportional Rate Reduction (RFC 6937) in SACK recovery: new data leaves in proportion to
// what the ACKs deliver (ssthresh / RecoverFS), never in a burst, and once the pipe falls to
// ssthresh the slow start reduction bound takes over.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, TcpHarness } from '../helpers/tcp-harness.ts';

const MSS = 1000;

test('PRR: with ssthresh = FlightSize / 2, about one new segment per two ACKs, at most one per ACK', async () => {
  const h = await TcpHarness.create({ tcp: { congestion: 'newreno' } });
  const o = await acceptOne(h, 80, 1000, { mss: MSS, sackPermitted: true }, {}, 100);
  const conn = h.connection(80)!;
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(20 * MSS, 1));
  assert.is(h.sent().length, 10, 'the initial window');
  const start = (o.iss + 1) >>> 0;
  const at = (n: number) => (start + n * MSS) >>> 0;
  // Segment 0 is lost; segments 1-3 SACKed: loss (RFC 6675 IsLost), fast retransmit of 0.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [at(1), at(4)] });
  const first = h.sent();
  assert.equal(first.map((s) => (s.seq - start) / MSS), [0]);
  assert.is(conn.cc.ssthresh, 5 * MSS);
  // Each further ACK SACKs one more segment: PRR lets out new data at half that rate.
  const perAck: number[] = [];
  for (let n = 5; n <= 10; n++) {
    h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [at(1), at(n)] });
    perAck.push(h.sent().filter((s) => s.payload.length > 0).length);
  }
  assert.ok(perAck.every((k) => k <= 1), `never a burst: ${perAck}`);
  const sent = perAck.reduce((a, b) => a + b, 0);
  assert.ok(sent >= 2 && sent <= 4, `about half as many segments as ACKs: ${perAck}`);
  // The retransmission arrives: recovery ends with cwnd = ssthresh (RFC 6937, CUBIC/NewReno's choice).
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: at(10 + sent), flags: ACK });
  assert.is(conn.recoveryPhase, 'open');
  assert.ok(conn.cc.cwnd <= 5 * MSS + MSS, `cwnd ${conn.cc.cwnd}`);
});

test.run();
