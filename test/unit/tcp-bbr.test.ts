// BBR (congestion/bbr.ts, as Linux's tcp_bbr.c) between two stacks through netem in virtual
// time: its modes in order (STARTUP, DRAIN, PROBE_BW, and PROBE_RTT after 10 s), a model of
// the path (bottleneck bandwidth, min_rtt) that matches the link, pacing at the modelled
// rate, and random loss that does not shrink its window: at 3% loss each way it keeps the
// link nearly full, where CUBIC's window is held near 1.22/sqrt(p) segments per round trip.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLinkPair } from '../../src/link/memory.ts';
import { NetemLink, type NetemShape } from '../../src/link/netem.ts';
import { createStack } from '../../src/stack.ts';
import { Bbr } from '../../src/tcp/congestion/bbr.ts';
import type { CongestionName } from '../../src/tcp/congestion/congestion.ts';
import type { Tcb } from '../../src/tcp/tcb.ts';
import { VirtualClock } from '../../src/util/clock.ts';

const FRAME_BYTES = 1514;

interface Transfer {
  finished: boolean;
  goodputMbps: number;
  /** A's connection, and what was seen of it on the way. */
  conn: Tcb;
  modes: string[];
  /** Send times (ms) of A's data segments, and their lengths. */
  sends: { at: number; len: number; mode: string; retransmit: boolean }[];
  minCwndInProbeRtt: number;
  retransmits: number;
}

/**
 * `bytes` from A to B over a link of `rateBps` with round trip `rttMs` (half each way), a
 * queue of one BDP behind the pipe (as bench/netsim.ts), random loss p each way.
 */
async function transfer(opts: { congestion: CongestionName; rateBps: number; rttMs: number; loss: number; bytes: number; seed?: number }): Promise<Transfer> {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock, { latencyMs: 0 });
  const perMs = opts.rateBps / 8 / 1000 / FRAME_BYTES;
  const bdp = Math.max(4, Math.ceil(perMs * opts.rttMs));
  const shape: NetemShape = { delayMs: opts.rttMs / 2, rateBps: opts.rateBps, limit: Math.ceil((perMs * opts.rttMs) / 2) + bdp, loss: opts.loss };
  const notArp = (buf: Buffer, off: number, len: number): boolean => len < 14 || buf.readUInt16BE(off + 12) !== 0x0806;
  const seed = opts.seed ?? 1;
  const na = new NetemLink(la, clock, { seed: seed * 2, tx: shape, filter: notArp });
  const nb = new NetemLink(lb, clock, { seed: seed * 2 + 1, tx: shape, filter: notArp });
  const tcp = { congestion: opts.congestion, receiveBufferSize: 4 << 20, sendBufferSize: 4 << 20 };
  const a = await createStack({ link: na, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1, tcp });
  const b = await createStack({ link: nb, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2, tcp });
  let conn: Tcb | null = null;
  const modes: string[] = [];
  const sends: Transfer['sends'] = [];
  let minCwndInProbeRtt = Infinity;
  let firstAt = -1;
  a.setProbe({
    tcpSegment(direction, c, seg, reason) {
      if (direction !== 'out' || c === null || seg.length <= seg.headerLength) return;
      conn = c;
      if (firstAt < 0) firstAt = clock.now();
      const mode = c.cc instanceof Bbr ? c.cc.mode : c.cc.name;
      if (modes.at(-1) !== mode) modes.push(mode);
      if (mode === 'probe-rtt') minCwndInProbeRtt = Math.min(minCwndInProbeRtt, c.cc.cwnd / c.snd.mss);
      sends.push({ at: clock.now(), len: seg.length - seg.headerLength, mode, retransmit: reason !== 'data' && reason !== 'fin' });
    },
  });
  let received = 0;
  let doneAt = -1;
  b.createServer((s) => {
    s.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= opts.bytes && doneAt < 0) doneAt = clock.now();
    });
    s.on('end', () => s.end());
  }).listen(9000);
  const client = a.connect({ host: '10.0.0.2', port: 9000 });
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let written = 0;
  const pump = (): void => {
    while (written < opts.bytes) {
      const n = Math.min(chunk.length, opts.bytes - written);
      written += n;
      const more = client.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (written >= opts.bytes) client.end();
      if (!more) return;
    }
  };
  client.on('drain', pump);
  pump();
  // Virtual time in steps, letting the streams' callbacks run between them.
  const limit = clock.now() + 120_000;
  while (doneAt < 0 && clock.now() < limit) {
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
  }
  const c = conn as Tcb | null;
  assert.ok(c !== null, 'A sent data');
  const result: Transfer = {
    finished: doneAt >= 0,
    goodputMbps: doneAt >= 0 ? (opts.bytes * 8) / (doneAt - firstAt) / 1000 : 0,
    conn: c,
    modes,
    sends,
    minCwndInProbeRtt,
    retransmits: c.stats.retransmits,
  };
  client.destroy();
  await a.close();
  await b.close();
  return result;
}

test('BBR is selectable by name, as Linux\'s tcp_congestion_control=bbr', async () => {
  const t = await transfer({ congestion: 'bbr', rateBps: 10e6, rttMs: 10, loss: 0, bytes: 64 * 1024 });
  assert.ok(t.finished);
  assert.ok(t.conn.cc instanceof Bbr);
  assert.is(t.conn.cc.name, 'bbr');
});

test('BBR goes STARTUP, DRAIN, PROBE_BW and models the path: bandwidth and min_rtt of the link', async () => {
  const rateBps = 100e6;
  const t = await transfer({ congestion: 'bbr', rateBps, rttMs: 10, loss: 0, bytes: 16 << 20 });
  assert.ok(t.finished);
  assert.equal(t.modes.slice(0, 3), ['startup', 'drain', 'probe-bw']);
  const bbr = t.conn.cc as Bbr;
  assert.ok(bbr.fullBandwidthReached);
  // The link carries 1448 payload bytes per 1514-byte frame.
  const payloadSegmentsPerMs = rateBps / 8 / 1000 / FRAME_BYTES;
  const bw = bbr.bandwidth;
  assert.ok(Math.abs(bw - payloadSegmentsPerMs) / payloadSegmentsPerMs < 0.1, `bandwidth ${bw.toFixed(2)} segments/ms, link ${payloadSegmentsPerMs.toFixed(2)}`);
  // min_rtt: the propagation delay plus one frame's and one ACK's serialization.
  assert.ok(bbr.minRtt >= 10 && bbr.minRtt < 10.5, `min_rtt ${bbr.minRtt} ms`);
  // Near the link's payload capacity (95.6 Mbit/s), STARTUP included.
  assert.ok(t.goodputMbps > 85, `goodput ${t.goodputMbps.toFixed(1)} Mbit/s`);
});

test('BBR paces: in PROBE_BW at gain 1 data leaves at the modelled rate, not in bursts', async () => {
  const t = await transfer({ congestion: 'bbr', rateBps: 100e6, rttMs: 10, loss: 0, bytes: 16 << 20 });
  const probe = t.sends.filter((s) => s.mode === 'probe-bw');
  assert.ok(probe.length > 1000, `${probe.length} segments in PROBE_BW`);
  // Gaps between successive data segments: with pacing none is a burst of back-to-back
  // segments at one instant beyond the first of an ACK's window opening.
  const gaps = probe.slice(1).map((s, i) => s.at - probe[i]!.at);
  const sameInstant = gaps.filter((g) => g === 0).length;
  assert.ok(sameInstant / gaps.length < 0.05, `${sameInstant} of ${gaps.length} segments left at the same instant as the one before`);
  // The median gap is one segment at about the bottleneck rate (pacing gain 1, 1% margin).
  const sorted = [...gaps].sort((x, y) => x - y);
  const median = sorted[sorted.length >> 1]!;
  const perSegmentMs = (1448 * 8) / 100e6 * 1000 * (FRAME_BYTES / 1448);
  assert.ok(median > perSegmentMs * 0.8 && median < perSegmentMs * 1.3, `median gap ${median.toFixed(4)} ms, a frame takes ${perSegmentMs.toFixed(4)} ms`);
});

test('random loss does not shrink BBR\'s window: at 3% each way it keeps the link nearly full, far above CUBIC and the Mathis bound', async () => {
  const bytes = 8 << 20;
  const bbr = await transfer({ congestion: 'bbr', rateBps: 100e6, rttMs: 10, loss: 0.03, bytes });
  const cubic = await transfer({ congestion: 'cubic', rateBps: 100e6, rttMs: 10, loss: 0.03, bytes });
  assert.ok(bbr.finished && cubic.finished);
  const mathis = ((1448 * 8) / 10 / 1000) * (1.22 / Math.sqrt(0.03)); // Mbit/s
  assert.ok(bbr.goodputMbps > 5 * mathis, `BBR ${bbr.goodputMbps.toFixed(1)} Mbit/s, Mathis ${mathis.toFixed(1)}`);
  assert.ok(bbr.goodputMbps > 4 * cubic.goodputMbps, `BBR ${bbr.goodputMbps.toFixed(1)}, CUBIC ${cubic.goodputMbps.toFixed(1)} Mbit/s`);
  // Once STARTUP is over (its 2.885 gain overfills a one-BDP queue, as Linux's BBR v1 does)
  // it resends about what the link loses (3%) and what probing at 1.25 overfills (~2%).
  const steady = bbr.sends.filter((s) => s.mode === 'probe-bw');
  const resent = steady.filter((s) => s.retransmit).length;
  assert.ok(resent / steady.length < 0.06, `${resent} of ${steady.length} segments in PROBE_BW were retransmissions`);
});

test('after 10 s without a lower RTT, BBR enters PROBE_RTT: 4 segments in flight, then back to PROBE_BW', async () => {
  // 10 Mbit/s for about 13 s.
  const t = await transfer({ congestion: 'bbr', rateBps: 10e6, rttMs: 20, loss: 0, bytes: 16 << 20 });
  assert.ok(t.finished);
  const i = t.modes.indexOf('probe-rtt');
  assert.ok(i > 0, `modes ${t.modes.join(', ')}`);
  assert.is(t.modes[i + 1], 'probe-bw');
  assert.is(t.minCwndInProbeRtt, 4);
  const first = t.sends.find((s) => s.mode === 'probe-rtt')!;
  const last = t.sends.filter((s) => s.mode === 'probe-rtt').at(-1)!;
  // At least 200 ms there (bbr_probe_rtt_mode_ms), and not much more than that and a round trip.
  assert.ok(last.at - first.at >= 150 && last.at - first.at < 400, `PROBE_RTT lasted ${(last.at - first.at).toFixed(1)} ms`);
  assert.ok(first.at > 10_000, `PROBE_RTT began at ${first.at.toFixed(0)} ms`);
});

test('the same seed gives the same BBR transfer, segment for segment', async () => {
  const one = await transfer({ congestion: 'bbr', rateBps: 100e6, rttMs: 10, loss: 0.01, bytes: 1 << 20, seed: 5 });
  const two = await transfer({ congestion: 'bbr', rateBps: 100e6, rttMs: 10, loss: 0.01, bytes: 1 << 20, seed: 5 });
  assert.equal(
    one.sends.map((s) => `${s.at}:${s.len}`),
    two.sends.map((s) => `${s.at}:${s.len}`),
  );
});

test.run();
