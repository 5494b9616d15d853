// PSH where Linux's sender sets it (src/tcp/push-marks.ts): the end of every application
// write, at least every half of the peer's largest window, and the segment that empties
// the send buffer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ACK, PSH, TcpHarness } from '../helpers/tcp-harness.ts';
import { acceptOne } from '../helpers/tcp-open.ts';
import { PushMarks } from '../../src/tcp/push-marks.ts';

const MSS = 1460;

test('each write ends in a segment with PSH; segments inside a write carry none', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  // Two writes in one turn: 2,000 bytes, then 4,000; the peer's window takes them all.
  o.socket.write(Buffer.alloc(2000, 1));
  o.socket.write(Buffer.alloc(4000, 2));
  await h.advance(0);
  const sent = h.sent();
  // The last 160 bytes wait for an ACK (Nagle, RFC 1122 4.2.3.4).
  h.inject({ dstPort: o.port, seq: o.peerSeq, ack: (o.iss + 1 + 4 * MSS) >>> 0, flags: ACK });
  await h.advance(0);
  sent.push(...h.sent());
  const segs = sent.map((s) => ({ start: (s.seq - o.iss - 1) >>> 0, len: s.payload.length, push: (s.flags & PSH) !== 0 }));
  const pushedEnds = segs.filter((s) => s.push).map((s) => s.start + s.len);
  // 0-1460 (no), 1460-2920 (holds byte 2000: PSH), 2920-4380 (no), 4380-5840 (no), 5840-6000 (the last: PSH).
  assert.equal(
    segs.map((s) => [s.start, s.len, s.push]),
    [
      [0, MSS, false],
      [MSS, MSS, true],
      [2 * MSS, MSS, false],
      [3 * MSS, MSS, false],
      [4 * MSS, 6000 - 4 * MSS, true],
    ],
  );
  assert.equal(pushedEnds, [2 * MSS, 6000]);
});

test('a tail loss probe of new data carries PSH, so that a Linux peer acknowledges it when read, not 40 ms later', async () => {
  const h = await TcpHarness.create();
  // SACK on (RFC 8985's probe needs it), a 10 ms RTT measured on the handshake, a window
  // of 65,535 bytes (the SYN's) so that the probe can be new data.
  const o = await acceptOne(h, 80, 1000, { mss: MSS, sackPermitted: true }, {}, 10);
  // One write of 20 segments: the initial window (10) goes; nothing comes back.
  o.socket.write(Buffer.alloc(20 * MSS, 3));
  await h.advance(0);
  const first = h.sent();
  assert.is(first.length, 10);
  assert.ok(first.every((s) => (s.flags & PSH) === 0), 'inside the write: no PSH');
  // The PTO (2 SRTT + 2 ms) passes: the probe is the next new segment, with PSH.
  await h.advance(50);
  const probe = h.sent();
  assert.is(probe.length, 1);
  assert.is((probe[0]!.seq - o.iss - 1) >>> 0, 10 * MSS);
  assert.ok((probe[0]!.flags & PSH) !== 0, 'the probe has PSH');
});

test('PushMarks: forced push every half window without write ends, and marks merge when many', () => {
  const marks = new PushMarks();
  // No write end in [0, 1000): no PSH; then past half of a 4,000-byte window: PSH.
  assert.is(marks.take(0, 1000, 4000), false);
  assert.is(marks.take(1000, 2000, 4000), false);
  assert.is(marks.take(2000, 3000, 4000), true, 'forced push: 3,000 bytes since the last PSH > 2,000');
  assert.is(marks.take(3000, 4000, 4000), false);
  // More writes than the ring holds: the newest mark moves on, none before it is lost.
  for (let i = 1; i <= 20; i++) marks.add(4000 + i * 10);
  assert.is(marks.take(4000, 4005, 1 << 30), false);
  assert.is(marks.take(4005, 4015, 1 << 30), true, 'the first write end, 4,010');
  let pushes = 0;
  for (let at = 4015; at < 4300; at += 10) if (marks.take(at, at + 10, 1 << 30)) pushes++;
  // Marks 4,020 to 4,150 each alone (14), the merged newest at 4,200 (1).
  assert.is(pushes, 15);
});

test.run();
