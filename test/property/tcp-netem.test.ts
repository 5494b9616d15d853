// Two stacks through random netem shapes (src/link/netem.ts), one per direction, in virtual
// time: delay with jitter, an optional rate with a tail-dropping queue, random or
// Gilbert-Elliott burst loss, duplication, reordering and corruption. For a random transfer
// in one or both directions, NewReno or CUBIC, SACK on or off: every byte arrives exactly
// once and in order, both connections close cleanly, and each sender retransmits no more
// segments than it lost on the way (its data segments that netem dropped or damaged while the
// peer still needed them, counted exactly from both ends' frames) plus an allowance for
// probes and for spurious retransmissions that the network's behaviour explains
// (retransmitAllowance). A failure prints fast-check's seed and the case.
//
//   TCP_NETEM_RUNS=N              runs (default 25)
//   TCP_NETEM_SEED=N or random    fast-check's seed (default FC_SEED's, else 20261126)
//   TCP_NETEM_CASE='{"seed":...}' one case on its own (a failure prints it)
//   TCP_NETEM_VERBOSE=1           each sender's retransmissions and allowance
//   TCP_NETEM_KNOWN=1             also the known failures (knownFailures, below)

import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { NetemCounters, NetemLink, NetemShape } from '../../src/link/netem.ts';
import type { Stack, TcpSocket } from '../../src/index.ts';
import type { Probe } from '../../src/probe.ts';
import type { ConnectionStats } from '../../src/tcp/counters.ts';
import type { Tcb } from '../../src/tcp/tcb.ts';
import { internetChecksum, pseudoHeaderSum } from '../../src/util/checksum.ts';
import { stackPair } from '../helpers/tcp-pair.ts';
import { CountingClock } from '../helpers/counting-clock.ts';

interface Case {
  seed: number;
  /** What a (the client) sends through, and what b (the server) sends through. */
  shapeA: NetemShape;
  shapeB: NetemShape;
  /** Bytes the client sends, and the server; either may be 0. */
  clientBytes: number;
  serverBytes: number;
  congestion: 'newreno' | 'cubic' | 'bbr';
  sack: boolean;
}

/** Byte i of a direction's stream: recognisable and position-dependent. */
function pattern(direction: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (i * 31 + direction * 7 + (i >> 8) + (i >> 16) * 3) & 255;
  return b;
}

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/**
 * The data segments that reach a stack intact (the checksums drop a damaged frame; a copy
 * netem duplicated counts once), and of those the ones that arrived after a segment of other
 * data that their sender sent later: the only segments a sender may take for lost when they
 * were not (RACK and DupThresh alike need later data delivered first). The sender's IPv4
 * identification grows with each packet, so it gives the send order; it jumps ahead after an
 * idle time (Linux's ip_idents_reserve), so the sender's Watch unwraps it as it sends and
 * `unwrap` looks the arrived one up there. A segment overtaken only by its own
 * retransmission does not count: that retransmission needs a reason of its own.
 */
class Arrivals {
  intact = 0;
  overtaken = 0;
  /** Identifications (unwrapped) and sequence numbers of the segments arrived. */
  private readonly seen = new Set<number>();
  private readonly seqs = new Set<number>();
  /** The highest identification arrived (unwrapped) and its sequence number; the highest with another. */
  private top = -1;
  private topSeq = 0;
  private second = -1;

  constructor(private readonly unwrap: (id: number) => number | undefined) {}

  frame(buf: Buffer, off: number, len: number): void {
    if (len < 14 + 20 + 20 || buf.readUInt16BE(off + 12) !== 0x0800) return;
    const ip = off + 14;
    const ihl = (buf[ip]! & 15) * 4;
    const total = buf.readUInt16BE(ip + 2);
    if (buf[ip + 9] !== 6 || total > len - 14 || internetChecksum(buf, ip, ihl) !== 0) return;
    const tcp = ip + ihl;
    const tcpLen = total - ihl;
    if (internetChecksum(buf, tcp, tcpLen, pseudoHeaderSum(buf.readUInt32BE(ip + 12), buf.readUInt32BE(ip + 16), 6, tcpLen)) !== 0) return;
    if (tcpLen <= (buf[tcp + 12]! >> 4) * 4) return; // no data
    const id = buf.readUInt16BE(ip + 4);
    const n = this.unwrap(id);
    if (n === undefined || this.seen.has(n)) return;
    this.seen.add(n);
    this.intact++;
    const seq = buf.readUInt32BE(tcp + 4);
    this.seqs.add(seq);
    if ((seq === this.topSeq ? this.second : this.top) > n) this.overtaken++;
    if (seq === this.topSeq) this.top = Math.max(this.top, n);
    else if (n > this.top) {
      this.second = this.top;
      this.top = n;
      this.topSeq = seq;
    } else if (n > this.second) this.second = n;
  }

  arrived(id: number): boolean {
    return this.seen.has(id);
  }

  holds(seq: number): boolean {
    return this.seqs.has(seq);
  }
}

/** Spurious retransmissions allowed in any connection, whatever happened. */
const CONSTANT = 8;

/**
 * How many retransmissions a sender may make honestly, beyond the frames lost in its
 * direction (each of which costs one):
 * - one per segment that arrived after later data (Arrivals.overtaken): reordering and
 *   jitter make RACK and DupThresh take such a segment for lost before it arrives;
 * - a tail loss probe resends one segment that may well have arrived (RFC 8985 7.3);
 * - a timeout lets the sender resend all it had outstanding and not SACKed (RFC 5681 3.1,
 *   RFC 6675 5.1; without SACK, go-back-N): some of it may have arrived, or be on its way;
 * - a constant, and a tenth of the frames lost either way: a lost ACK may have been the only
 *   report of a segment once later ACKs carry newer SACK blocks (three at most, RFC 2018 4),
 *   and so may an ACK that jitter delivered after a later one, which PAWS then discards as an
 *   old duplicate (RFC 7323 5.3, as Linux for an ACK below SND.UNA); duplicated ACKs read as
 *   duplicate ACKs without SACK.
 */
function retransmitAllowance(s: ConnectionStats, lostEitherWay: number, overtaken: number, afterTimeouts: number): number {
  return overtaken + s.tailLossProbes + afterTimeouts + CONSTANT + Math.ceil(0.1 * lostEitherWay);
}

/**
 * What one stack sees of its connection: what arrives of its peer's data, the data segments
 * it sends (by IPv4 identification, unwrapped in the order sent), and the segments it had
 * outstanding and not SACKed at each retransmission timeout.
 */
class Watch {
  /** The other end's arrivals unwrap identifications with the ones this end sent. */
  readonly arrivals = new Arrivals((id) => this.peer!.sentIds.get(id));
  /** Each 16-bit identification of a data segment sent, unwrapped: the latest with it. */
  readonly sentIds = new Map<number, number>();
  /** The other end's Watch, whose arrivals are this end's deliveries. */
  peer: Watch | null = null;
  /** Data segments sent while the peer did not yet hold them: a loss of one of these costs a retransmission. */
  private readonly needed: number[] = [];
  private lastId = -1;
  afterTimeouts = 0;
  readonly probe: Probe = {
    frame: (direction, f) => {
      if (direction === 'in') return this.arrivals.frame(f.buf, f.off, f.len);
      if (f.tcp === null || f.tcp.payloadLength === 0) return;
      const id = f.buf.readUInt16BE(f.off + 14 + 4);
      this.lastId = this.lastId < 0 ? id : this.lastId + ((id - this.lastId) & 0xffff);
      this.sentIds.set(id, this.lastId);
      if (!this.peer!.arrivals.holds(f.tcp.seq)) this.needed.push(this.lastId);
    },
    tcpRtt: (conn: Tcb, cause) => {
      if (cause !== 'backoff') return;
      const outstanding = ((conn.snd.max - conn.snd.una) >>> 0) - conn.sent.sackedBytes;
      this.afterTimeouts += Math.ceil(Math.max(1, outstanding) / Math.max(1, conn.snd.mss));
    },
  };

  /** Data segments the peer needed that never reached it intact (lost, tail-dropped or damaged). */
  get lost(): number {
    return this.needed.filter((id) => !this.peer!.arrivals.arrived(id)).length;
  }
}

/** Frames of one direction that netem dropped (loss, a full queue) or damaged. */
function framesLost(c: NetemCounters): number {
  return c.lost + c.queueDrops + c.corrupted;
}

const immediate = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The give-up points of one case: virtual time (30 RTOs backed off to 120 s fit), and timers run. */
const LIMIT_MS = 3_600_000;
const MAX_TIMERS = 2_000_000;

const stats = { runs: 0, bytes: 0, dataLost: 0, lost: 0, queueDrops: 0, corrupted: 0, duplicated: 0, reordered: 0, overtaken: 0, retransmits: 0, timeouts: 0, tailLossProbes: 0 };

async function runCase(c: Case): Promise<void> {
  const clock = new CountingClock();
  const pair = await stackPair({
    clock,
    netem: { seed: c.seed, a: c.shapeA, b: c.shapeB },
    // Twice Linux's 15 retries: a burst of a dozen losses that meets a sender already backing
    // off (one frame an RTO) is netem's doing, and must not end the connection. The same for
    // the client, an orphan once its writes are buffered (Linux tcp_orphan_retries: 8).
    tcp: { timeWaitMs: 2000, congestion: c.congestion, sack: c.sack, maxRetries: 30, orphanRetries: 30 },
  });
  const { a, b } = pair;
  const netemA = pair.netemA!;
  const netemB = pair.netemB!;
  const watchA = new Watch();
  const watchB = new Watch();
  watchA.peer = watchB;
  watchB.peer = watchA;
  a.setProbe(watchA.probe);
  b.setProbe(watchB.probe);
  const atServer: Buffer[] = [];
  const atClient: Buffer[] = [];
  const closed: string[] = [];
  const errors: string[] = [];
  let server: TcpSocket | null = null;

  b.createServer((s) => {
    server = s;
    s.on('data', (d: Buffer) => atServer.push(d));
    s.on('error', (e: Error) => errors.push(`server: ${e.message}`));
    s.on('close', (hadError: boolean) => closed.push(hadError ? 'server with an error' : 'server'));
    if (c.serverBytes > 0) s.write(pattern(1, c.serverBytes));
    s.end();
  }).listen(7);
  const client = a.connect({ port: 7, host: '10.0.0.2' });
  client.on('data', (d: Buffer) => atClient.push(d));
  client.on('error', (e: Error) => errors.push(`client: ${e.message}`));
  client.on('close', (hadError: boolean) => closed.push(hadError ? 'client with an error' : 'client'));
  if (c.clientBytes > 0) client.write(pattern(0, c.clientBytes));
  client.end();

  // One timer at a time, then the event loop's ticks at the same virtual time (the streams'
  // callbacks), as between two timer callbacks in Node.
  const done = () => closed.length === 2 || errors.length > 0;
  const deadline = clock.now() + LIMIT_MS;
  let idle = 0;
  while (!done() && clock.fired < MAX_TIMERS && idle < 2) {
    const before = clock.fired;
    const ran = clock.runUntilTrue(() => clock.fired > before, Math.max(0, deadline - clock.now()));
    await immediate();
    idle = ran ? 0 : idle + 1;
  }

  const serverSocket = server as TcpSocket | null;
  const where = () =>
    `case ${JSON.stringify(c)}\n  netem a ${JSON.stringify(netemA.counters.tx)}\n  netem b ${JSON.stringify(netemB.counters.tx)}\n  client ${JSON.stringify(client.tcpStats())}\n  server ${JSON.stringify(serverSocket?.tcpStats() ?? null)}\n  at ${clock.now().toFixed(1)} ms, ${clock.fired} timers`;
  assert.equal(errors, [], where());
  const why = clock.fired >= MAX_TIMERS ? `${MAX_TIMERS} timers` : clock.pending === 0 ? 'no timer left' : `${LIMIT_MS} ms of virtual time`;
  assert.ok(done(), `not closed (${closed.join(', ') || 'neither'} closed) after ${why}: ${where()}`);
  assert.equal(closed.sort(), ['client', 'server'], `closed cleanly: ${where()}`);
  for (const [name, chunks, direction, size] of [
    ['client -> server', atServer, 0, c.clientBytes],
    ['server -> client', atClient, 1, c.serverBytes],
  ] as const) {
    const got = Buffer.concat(chunks);
    const want = pattern(direction, size);
    assert.ok(got.equals(want), `${name}: ${got.length} of ${size} bytes, first difference at ${firstDifference(got, want)}: ${where()}`);
  }

  // Eventually nothing is left: TIME-WAIT expires (netem off, so that it is not prolonged).
  netemA.enabled = false;
  netemB.enabled = false;
  for (let i = 0; i < 200 && a.tcp.size + b.tcp.size > 0; i++) {
    clock.advance(1000);
    await immediate();
  }
  assert.is(a.tcp.size + b.tcp.size, 0, `connections left behind: ${where()}`);

  // Each sender's retransmissions: the data segments lost on their way while the peer needed them, plus the allowance.
  const senders: [string, ConnectionStats, Watch, Watch, NetemLink, NetemLink, Stack][] = [
    ['client', client.tcpStats()!, watchA, watchB, netemA, netemB, a],
    ['server', serverSocket!.tcpStats()!, watchB, watchA, netemB, netemA, b],
  ];
  for (const [name, s, own, peer, netem, back, stack] of senders) {
    const lost = own.lost;
    // Each of them met a drop or a damage in netem (which counts ACKs and SYNs too).
    assert.ok(lost >= 0 && lost <= framesLost(netem.counters.tx), `${name}: ${lost} data segments lost, netem ${JSON.stringify(netem.counters.tx)}`);
    const lostBack = framesLost(back.counters.tx) + (stack.tcp.counters.drops['tcp-paws'] ?? 0);
    const overtaken = peer.arrivals.overtaken;
    const allowed = lost + retransmitAllowance(s, lost + lostBack, overtaken, own.afterTimeouts);
    const account = `${lost} data segments lost (and ${lostBack} frames the other way, netem's or too old for PAWS), ${overtaken} overtaken, ${s.tailLossProbes} tail loss probes, ${own.afterTimeouts} outstanding at ${s.timeouts} timeouts`;
    if (process.env.TCP_NETEM_VERBOSE) console.log(`  ${name}: ${s.retransmits} retransmissions, ${allowed} allowed (${account}; ${s.fastRetransmits} recoveries, ${s.recoveryUndos + s.dsackUndos + s.lossUndos} undone)`);
    assert.ok(s.retransmits <= allowed, `${name} retransmitted ${s.retransmits} segments, more than the ${allowed} allowed (${account}): ${where()}`);
    stats.retransmits += s.retransmits;
    stats.timeouts += s.timeouts;
    stats.tailLossProbes += s.tailLossProbes;
    stats.dataLost += lost;
    stats.overtaken += overtaken;
  }
  await a.close();
  await b.close();
  stats.runs++;
  stats.bytes += c.clientBytes + c.serverBytes;
  for (const n of [netemA, netemB]) {
    const t = n.counters.tx;
    stats.lost += t.lost;
    stats.queueDrops += t.queueDrops;
    stats.corrupted += t.corrupted;
    stats.duplicated += t.duplicated;
    stats.reordered += t.reordered;
  }
}

/** A probability in steps of 0.1%, at most max (fc.double would mostly pick vanishing ones). */
function perMille(max: number): fc.Arbitrary<number> {
  return fc.integer({ min: 0, max }).map((n) => n / 1000);
}

/**
 * Random loss 0..10%, or Gilbert-Elliott bursts losing at most 10% in the long run. Bursts
 * last 1/r frames on average, at most 2.5: in a longer one a sender already backing off (one
 * frame an RTO, up to 120 s) sends a frame every two minutes into the burst.
 */
const lossArbitrary: fc.Arbitrary<NetemShape['loss']> = fc.oneof(
  perMille(100),
  fc.integer({ min: 400, max: 900 }).chain((r1000) =>
    fc
      .record({
        model: fc.constant('gemodel' as const),
        // The long-run loss is p / (p + r) x (1 - h): p up to r / 9 keeps it at 10% or below.
        p: fc.integer({ min: 1, max: Math.floor(r1000 / 9) }).map((n) => n / 1000),
        r: fc.constant(r1000 / 1000),
        oneMinusH: fc.integer({ min: 500, max: 1000 }).map((n) => n / 1000),
      })
      .map((loss) => ({ ...loss })),
  ),
);

const shapeArbitrary: fc.Arbitrary<NetemShape> = fc
  .record({
    delayMs: fc.integer({ min: 0, max: 50 }),
    jitterFraction: fc.integer({ min: 0, max: 100 }),
    loss: lossArbitrary,
    rateMbps: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
    limit: fc.integer({ min: 20, max: 1000 }),
    duplicate: perMille(50),
    reorder: perMille(100),
    gap: fc.integer({ min: 1, max: 5 }),
    corrupt: perMille(20),
  })
  .map(({ delayMs, jitterFraction, rateMbps, limit, ...rest }) => ({
    ...rest,
    delayMs,
    // Jitter up to the delay itself: beyond it the clipped draws (no delay) bunch at zero.
    jitterMs: Math.round((delayMs * jitterFraction) / 100),
    ...(rateMbps === undefined ? {} : { rateBps: rateMbps * 1_000_000, limit }),
  }));

/** 1 KB to 2 MB, spread evenly over the orders of magnitude. */
const sizeArbitrary = fc.integer({ min: 10_000, max: 21_000 }).map((e) => Math.round(2 ** (e / 1000)));

const caseArbitrary: fc.Arbitrary<Case> = fc
  .record({
    seed: fc.integer({ min: 1, max: 0x7ffffff0 }),
    shapeA: shapeArbitrary,
    shapeB: shapeArbitrary,
    // Who sends: the client, the server, or both at once.
    senders: fc.constantFrom('client' as const, 'server' as const, 'both' as const),
    clientBytes: sizeArbitrary,
    serverBytes: sizeArbitrary,
    congestion: fc.constantFrom('newreno' as const, 'cubic' as const, 'bbr' as const),
    sack: fc.boolean(),
  })
  .map(({ senders, clientBytes, serverBytes, ...rest }) => ({
    ...rest,
    clientBytes: senders === 'server' ? 0 : clientBytes,
    serverBytes: senders === 'client' ? 0 : serverBytes,
  }));

/**
 * fast-check's seed: TCP_NETEM_SEED, else FC_SEED (test/helpers/fc-setup.ts), else a fixed one,
 * so that a run is the same run wherever it starts; "random" (either) explores new cases.
 */
function seedFromEnv(): number {
  const setting = process.env.TCP_NETEM_SEED ?? process.env.FC_SEED ?? '20261126';
  if (setting === 'random') return (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  const seed = Number(setting);
  if (!Number.isInteger(seed)) throw new Error(`TCP_NETEM_SEED or FC_SEED must be an integer or "random", not ${setting}`);
  return seed;
}

const single = process.env.TCP_NETEM_CASE;
if (single) test('the case from TCP_NETEM_CASE', async () => runCase(JSON.parse(single) as Case));

(single ? test.skip : test)('two stacks through random netem shapes: every byte once, in order; retransmissions bounded by losses', async () => {
  const seed = seedFromEnv();
  const numRuns = Number(process.env.TCP_NETEM_RUNS ?? 25);
  try {
    await fc.assert(fc.asyncProperty(caseArbitrary, runCase), { numRuns, seed, endOnFailure: true });
  } catch (e) {
    console.log(`tcp-netem: failed; replay with TCP_NETEM_SEED=${seed} TCP_NETEM_RUNS=${numRuns}, or the case alone with TCP_NETEM_CASE='<case>'`);
    throw e;
  }
  console.log(`tcp-netem: seed ${seed}, ${JSON.stringify(stats)}`);
  // The shapes really did their work and TCP repaired it (guards against a property that tests nothing).
  if (numRuns >= 20)
    assert.ok(stats.bytes > 1_000_000 && stats.dataLost > 100 && stats.corrupted > 10 && stats.duplicated > 10 && stats.overtaken > 10 && stats.retransmits > 100, JSON.stringify(stats));
});

/**
 * Cases that once failed this test for reasons of its own, kept so that its limits and its
 * allowance stay right. 1: a Gilbert-Elliott burst of a dozen lost ACKs met a sender already
 * backing off, and the transfer outlasted the 600 s the loop first gave it (bursts are
 * shorter now too). 2: without SACK a timeout resends everything from SND.UNA (go-back-N),
 * most of which had arrived: a fixed allowance per timeout was too small. 3: twelve
 * retransmissions in a row, one an RTO, met a burst; the client gave up in LAST-ACK after 15
 * retries (as Linux would) and the server waited for ever in FIN-WAIT-2. 4: the receiver's
 * SACK blocks after the first were the lowest held, not the most recently reported (RFC 2018
 * 4): an ACK that netem's reorder sent ahead of older ones left out the block they had
 * reported, they fell to PAWS, and the sender resent 69 segments the receiver held (fixed in
 * reassembly.ts).
 */
const regressions: Case[] = [
  { seed: 2147483606, shapeA: { loss: { model: 'gemodel', p: 0.033, r: 0.379, oneMinusH: 0.795 }, duplicate: 0.003, reorder: 0.006, gap: 3, corrupt: 0.02, delayMs: 8, jitterMs: 8, rateBps: 1000000, limit: 792 }, shapeB: { loss: { model: 'gemodel', p: 0.023, r: 0.242, oneMinusH: 0.975 }, duplicate: 0.017, reorder: 0.005, gap: 3, corrupt: 0, delayMs: 29, jitterMs: 23, rateBps: 93000000, limit: 468 }, congestion: 'newreno', sack: false, clientBytes: 605598, serverBytes: 0 },
  { seed: 2147483619, shapeA: { loss: { model: 'gemodel', p: 0.021, r: 0.245, oneMinusH: 0.941 }, duplicate: 0.023, reorder: 0.003, gap: 2, corrupt: 0.006, delayMs: 47, jitterMs: 47, rateBps: 14000000, limit: 172 }, shapeB: { loss: { model: 'gemodel', p: 0.005, r: 0.448, oneMinusH: 0.782 }, duplicate: 0, reorder: 0.001, gap: 4, corrupt: 0.018, delayMs: 47, jitterMs: 43, rateBps: 73000000, limit: 355 }, congestion: 'cubic', sack: false, clientBytes: 337143, serverBytes: 119033 },
  { seed: 2147483631, shapeA: { loss: { model: 'gemodel', p: 0.033, r: 0.407, oneMinusH: 0.777 }, duplicate: 0.003, reorder: 0.094, gap: 1, corrupt: 0.001, delayMs: 0, jitterMs: 0, rateBps: 4000000, limit: 21 }, shapeB: { loss: { model: 'gemodel', p: 0.041, r: 0.439, oneMinusH: 0.502 }, duplicate: 0.028, reorder: 0.088, gap: 3, corrupt: 0.02, delayMs: 50, jitterMs: 26, rateBps: 96000000, limit: 669 }, congestion: 'cubic', sack: true, clientBytes: 2085555, serverBytes: 12060 },
  { seed: 309851542, shapeA: { loss: 0.003, duplicate: 0.017, reorder: 0, gap: 5, corrupt: 0.01, delayMs: 44, jitterMs: 0 }, shapeB: { loss: 0.004, duplicate: 0.022, reorder: 0.004, gap: 5, corrupt: 0.01, delayMs: 2, jitterMs: 0, rateBps: 1000000, limit: 991 }, congestion: 'cubic', sack: true, clientBytes: 2087001, serverBytes: 0 },
];

(single ? test.skip : test)('regression cases', async () => {
  for (const c of regressions) await runCase(c);
});

/**
 * Cases that fail, for what the stack does (at commit 3fb601d), not for the test: run only
 * with TCP_NETEM_KNOWN=1. Move one to the regressions once it passes.
 *
 * 1. RACK credits an ACK of an original to its retransmission. RFC 8985 6.2 step 2 ignores
 *    a retransmitted segment that an ACK reports when the ACK's TSecr is older than the
 *    retransmission; recovery/rack-state.ts, as Linux, ignores it for a SACK only when its
 *    RTT is below the minimum RTT. At 316.8 ms an ACK SACKing [56473,81089), TSecr 205, is
 *    taken to deliver a spurious retransmission sent at 279.1 (TSval 279, itself lost):
 *    RACK.xmit_ts jumps to 279.1, and the segments sent before it, on their way or arrived,
 *    are marked lost and sent again (13 of them needlessly): 19 retransmissions where 16 are
 *    allowed (3 lost, 3 overtaken). Reordering makes spurious retransmissions, and this
 *    multiplies them; it was behind all but one of the failures seen (about 0.2% of random
 *    cases).
 * 2, 3 (found 2026-12-03 with TCP_NETEM_SEED=5 and 6, TCP_NETEM_RUNS=40; the same figures at
 *    commit 35f5a61, before BBR): CUBIC with SACK behind 9.4% reordering with duplicates, and
 *    behind jitter with Gilbert-Elliott loss: 164 retransmissions where 84 are allowed (58
 *    recoveries, every one undone: spurious), and 282 where 261 are.
 * 4 (TCP_NETEM_SEED=2): BBR in STARTUP filling a 1,000-frame queue (150 ms at 79 Mbit/s)
 *    with 8% loss and 10% reordering on the ACK path: 321 retransmissions where 136 are
 *    allowed (96 data segments lost), most of them in one recovery during STARTUP; the
 *    bytes arrive intact. Traced: 108 of the resent segments had reached the receiver before
 *    they were resent (with many holes in a large window, its 3 SACK blocks per ACK and 8%
 *    ACK loss leave some never reported); the rest not fully explained.
 */
const knownFailures: Case[] = [
  { seed: 1999890410, shapeA: { loss: 0.066, duplicate: 0, reorder: 0.003, gap: 5, corrupt: 0.017, delayMs: 14, jitterMs: 2, rateBps: 4000000, limit: 22 }, shapeB: { loss: 0.002, duplicate: 0.045, reorder: 0.002, gap: 1, corrupt: 0.015, delayMs: 33, jitterMs: 10, rateBps: 38000000, limit: 906 }, congestion: 'cubic', sack: true, clientBytes: 2582, serverBytes: 100372 },
  { seed: 1003983455, shapeA: { loss: { model: 'gemodel', p: 0.014, r: 0.408, oneMinusH: 0.994 }, duplicate: 0.049, reorder: 0.094, gap: 3, corrupt: 0.012, delayMs: 0, jitterMs: 0, rateBps: 6000000, limit: 28 }, shapeB: { loss: { model: 'gemodel', p: 0.002, r: 0.887, oneMinusH: 0.993 }, duplicate: 0.05, reorder: 0.003, gap: 2, corrupt: 0, delayMs: 0, jitterMs: 0, rateBps: 22000000, limit: 524 }, congestion: 'cubic', sack: true, clientBytes: 0, serverBytes: 2084110 },
  { seed: 1203989389, shapeA: { loss: { model: 'gemodel', p: 0.043, r: 0.656, oneMinusH: 0.537 }, duplicate: 0.049, reorder: 0.004, gap: 5, corrupt: 0.016, delayMs: 18, jitterMs: 7, rateBps: 24000000, limit: 977 }, shapeB: { loss: 0.001, duplicate: 0.02, reorder: 0.005, gap: 5, corrupt: 0.02, delayMs: 2, jitterMs: 2, rateBps: 6000000, limit: 414 }, congestion: 'cubic', sack: true, clientBytes: 205105, serverBytes: 366639 },
  { seed: 1083154554, shapeA: { loss: 0.081, duplicate: 0.003, reorder: 0.099, gap: 1, corrupt: 0.004, delayMs: 31, jitterMs: 6, rateBps: 16000000, limit: 355 }, shapeB: { loss: { model: 'gemodel', p: 0.046, r: 0.467, oneMinusH: 0.604 }, duplicate: 0.046, reorder: 0, gap: 3, corrupt: 0.008, delayMs: 10, jitterMs: 0, rateBps: 79000000, limit: 1000 }, congestion: 'bbr', sack: true, clientBytes: 216950, serverBytes: 2091346 },
];

// Registered only when asked for, so that a default run (and CI) skips nothing.
if (process.env.TCP_NETEM_KNOWN && !single) test('known failures (TCP_NETEM_KNOWN=1)', async () => {
  const failing: string[] = [];
  for (const [i, c] of knownFailures.entries()) {
    try {
      await runCase(c);
    } catch (e) {
      failing.push(`${i + 1}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  assert.equal(failing, [], `still failing:\n${failing.join('\n')}`);
});

test.run();
