// NetemLink: netem's shapes on an in-memory link pair in virtual time. Frames are numbered
// (a 32-bit sequence number after the Ethernet header), sent through one end's tx shape and
// recorded with their arrival time at the other end; then two stacks move TCP data through
// netem, for a fixed shape and for random ones (fast-check).
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type FrameReceiver, type Link, LINK_HEADROOM } from '../../src/link/link.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { NetemLink, type NetemShape } from '../../src/link/netem.ts';
import { emptyRxFrameInfo, emptyTxOffload, type RxFrameInfo, type TxOffload } from '../../src/link/vnet.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { VirtualClock } from '../../src/util/clock.ts';

interface Arrival {
  seq: number;
  sentAt: number;
  at: number;
  bytes: Buffer;
}

/** A numbered frame of `size` bytes (>= 22) at LINK_HEADROOM in its buffer; the rest is a pattern. */
function numbered(seq: number, size: number): Buffer {
  const buf = Buffer.alloc(LINK_HEADROOM + size);
  for (let i = 0; i < size; i++) buf[LINK_HEADROOM + i] = (i * 7 + 3) & 255;
  buf.writeUInt16BE(0x88b5, LINK_HEADROOM + 12); // local experimental EtherType
  buf.writeUInt32BE(seq, LINK_HEADROOM + 14);
  buf.writeUInt32BE(seq, LINK_HEADROOM + 18); // a second copy: tells a corrupted number apart
  return buf;
}

/**
 * Sends n numbered frames of `size` bytes through a tx-shaped NetemLink, `spacingMs` apart
 * (0: all in one turn), and runs the clock until everything has arrived.
 */
function run(shape: NetemShape, n: number, opts: { seed?: number; size?: number; spacingMs?: number } = {}) {
  const clock = new VirtualClock();
  const [near, far] = createLinkPair(clock);
  const netem = new NetemLink(near, clock, { seed: opts.seed ?? 1, tx: shape });
  const size = opts.size ?? 64;
  const sentAt: number[] = [];
  const arrivals: Arrival[] = [];
  far.setReceiver((buf, off, len) => {
    const seq = buf.readUInt32BE(off + 14);
    arrivals.push({ seq, sentAt: sentAt[seq] ?? NaN, at: clock.now(), bytes: Buffer.from(buf.subarray(off, off + len)) });
  });
  const originals: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const frame = numbered(i, size);
    originals.push(Buffer.from(frame));
    sentAt[i] = clock.now();
    netem.send(frame, LINK_HEADROOM, size);
    assert.ok(frame.equals(originals[i]!), 'the sender\'s buffer is never changed');
    if (opts.spacingMs) clock.advance(opts.spacingMs);
  }
  clock.runAll();
  assert.is(clock.pending, 0, 'no timer left');
  return { netem, arrivals, counters: netem.counters.tx, clock };
}

function meanAndSd(xs: number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
  return { mean, sd };
}

/** Pairs (i < j) delivered in the other order, counted between neighbours in arrival order. */
function inversions(arrivals: Arrival[]): number {
  let n = 0;
  for (let i = 1; i < arrivals.length; i++) if (arrivals[i]!.seq < arrivals[i - 1]!.seq) n++;
  return n;
}

function checkBalance(c: NetemLink['counters']['tx'], queued = 0): void {
  assert.is(c.offered + c.duplicated, c.sent + c.lost + c.queueDrops + queued, `balance ${JSON.stringify(c)}`);
}

test('delay with uniform jitter: delays in [delay - jitter, delay + jitter), mean and spread as drawn; jitter reorders', () => {
  const { arrivals, counters } = run({ delayMs: 50, jitterMs: 10 }, 4000, { spacingMs: 1 });
  assert.is(arrivals.length, 4000);
  const delays = arrivals.map((a) => a.at - a.sentAt);
  const { mean, sd } = meanAndSd(delays);
  assert.ok(Math.abs(mean - 50) < 0.5, `mean ${mean}`);
  assert.ok(Math.abs(sd - 10 / Math.sqrt(3)) < 0.3, `sd ${sd}`);
  assert.ok(Math.min(...delays) >= 40 && Math.max(...delays) < 60);
  assert.ok(inversions(arrivals) > 100, 'frames 1 ms apart with 10 ms of jitter overtake each other (netem tfifo)');
  assert.is(counters.delayed, 4000);
  checkBalance(counters);
});

test('delay with normal jitter: mean and standard deviation, clipped at 4 sigma', () => {
  const { arrivals } = run({ delayMs: 100, jitterMs: 10, distribution: 'normal' }, 4000, { spacingMs: 1 });
  const delays = arrivals.map((a) => a.at - a.sentAt);
  const { mean, sd } = meanAndSd(delays);
  assert.ok(Math.abs(mean - 100) < 0.6, `mean ${mean}`);
  assert.ok(Math.abs(sd - 10) < 0.5, `sd ${sd}`);
  assert.ok(Math.min(...delays) >= 60 && Math.max(...delays) <= 140);
});

test('delay correlation keeps the distribution and makes successive delays alike', () => {
  const plain = run({ delayMs: 50, jitterMs: 10 }, 3000, { spacingMs: 1 }).arrivals;
  const corr = run({ delayMs: 50, jitterMs: 10, delayCorrelation: 0.75 }, 3000, { spacingMs: 1 }).arrivals;
  const bySeq = (as: Arrival[]) => as.slice().sort((x, y) => x.seq - y.seq).map((a) => a.at - a.sentAt);
  const meanStep = (ds: number[]) => ds.slice(1).reduce((s, d, i) => s + Math.abs(d - ds[i]!), 0) / (ds.length - 1);
  const c = bySeq(corr);
  assert.ok(Math.abs(meanAndSd(c).mean - 50) < 1.5, `mean ${meanAndSd(c).mean}`);
  assert.ok(meanStep(c) < meanStep(bySeq(plain)) / 2, `steps ${meanStep(c)} vs ${meanStep(bySeq(plain))}`);
});

test('rate: N frames of S bytes at R bit/s take N*S*8/R, in order even with jitter; overhead counts', () => {
  const n = 200;
  const size = 1000;
  const rate = 1_000_000;
  const { arrivals, counters } = run({ rateBps: rate }, n, { size });
  assert.is(arrivals.length, n);
  const frameMs = (size * 8 * 1000) / rate; // 8 ms
  assert.ok(Math.abs(arrivals[n - 1]!.at - n * frameMs) <= frameMs, `last at ${arrivals[n - 1]!.at}`);
  arrivals.forEach((a, i) => assert.ok(Math.abs(a.at - (i + 1) * frameMs) < 1e-6, `frame ${i} at ${a.at}`));
  assert.is(inversions(arrivals), 0);
  checkBalance(counters);

  const withOverhead = run({ rateBps: rate, overheadBytes: 24 }, 10, { size }).arrivals;
  assert.ok(Math.abs(withOverhead[9]!.at - 10 * 8.192) < 1e-6, `${withOverhead[9]!.at}`);
  const cells = run({ rateBps: rate, cellSize: 48, cellOverhead: 5 }, 1, { size }).arrivals;
  assert.ok(Math.abs(cells[0]!.at - (21 * 53 * 8) / 1000) < 1e-6, 'ATM: 21 cells of 53 bytes');

  // With a rate, delay and jitter stay in order: each frame waits for the one before.
  const jittered = run({ rateBps: 10_000_000, delayMs: 20, jitterMs: 15 }, 500, { size, spacingMs: 0.5 });
  assert.is(inversions(jittered.arrivals), 0, 'a rate keeps order (netem: time to send after the last queued frame)');
  assert.ok(jittered.arrivals.every((a) => a.at - a.sentAt >= 0.8 - 1e-9));
});

test('queue limit: a burst beyond `limit` frames is tail-dropped, exactly the excess', () => {
  const { arrivals, counters, netem } = run({ rateBps: 1_000_000, limit: 10 }, 25, { size: 1000 });
  assert.is(counters.queueDrops, 15);
  assert.equal(
    arrivals.map((a) => a.seq),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.is(netem.queued.tx, 0);
  checkBalance(counters);
  // Default limit 1000, paced sending: once the queue drains, frames are taken again.
  const paced = run({ rateBps: 1_000_000, limit: 10 }, 40, { size: 1000, spacingMs: 4 });
  assert.is(paced.counters.queueDrops + paced.arrivals.length, 40);
  assert.ok(paced.counters.queueDrops > 0 && paced.counters.queueDrops < 30);
  assert.is(run({ delayMs: 5 }, 1500).counters.queueDrops, 500, 'netem default limit: 1000 frames');
});

test('random loss within statistical tolerance; correlated loss keeps its rate and comes in runs', () => {
  const n = 20000;
  const p = 0.1;
  const tol = 4 * Math.sqrt((p * (1 - p)) / n);
  const plain = run({ loss: p }, n);
  const rate = plain.counters.lost / n;
  assert.ok(Math.abs(rate - p) < tol, `loss rate ${rate}`);
  assert.is(plain.arrivals.length, n - plain.counters.lost);
  checkBalance(plain.counters);

  const corr = run({ loss: { model: 'random', probability: p, correlation: 0.5 } }, n);
  const lostSeqs = lostSet(corr.arrivals, n);
  assert.ok(Math.abs(lostSeqs.size / n - p) < 2 * tol, `correlated loss rate ${lostSeqs.size / n}`);
  let afterLoss = 0;
  let both = 0;
  for (let i = 1; i < n; i++)
    if (lostSeqs.has(i - 1)) {
      afterLoss++;
      if (lostSeqs.has(i)) both++;
    }
  // P(lost | previous lost) = rho + (1 - rho) p = 0.55
  assert.ok(Math.abs(both / afterLoss - 0.55) < 0.06, `P(loss | loss) ${both / afterLoss}`);
});

function lostSet(arrivals: Arrival[], n: number): Set<number> {
  const got = new Set(arrivals.map((a) => a.seq));
  const lost = new Set<number>();
  for (let i = 0; i < n; i++) if (!got.has(i)) lost.add(i);
  return lost;
}

function bursts(lost: Set<number>, n: number): number[] {
  const out: number[] = [];
  let run = 0;
  for (let i = 0; i <= n; i++) {
    if (i < n && lost.has(i)) run++;
    else if (run > 0) {
      out.push(run);
      run = 0;
    }
  }
  return out;
}

test('Gilbert-Elliott: bursts of mean length 1/r, loss rate p/(p+r)', () => {
  const n = 60000;
  const { arrivals, counters } = run({ loss: { model: 'gemodel', p: 0.01, r: 0.25 } }, n);
  const b = bursts(lostSet(arrivals, n), n);
  const mean = b.reduce((a, x) => a + x, 0) / b.length;
  assert.ok(Math.abs(mean - 4) < 0.5, `mean burst ${mean} over ${b.length} bursts`);
  assert.ok(Math.abs(counters.lost / n - 0.01 / 0.26) < 0.008, `loss rate ${counters.lost / n}`);
  // 1-h below 1: some frames of the bad state get through; 1-k: losses in the good state.
  const soft = run({ loss: { model: 'gemodel', p: 0.05, r: 0.2, oneMinusH: 0.5, oneMinusK: 0.01 } }, n).counters;
  const expected = (0.2 / 0.25) * 0.01 + (0.05 / 0.25) * 0.5;
  assert.ok(Math.abs(soft.lost / n - expected) < 0.01, `soft loss ${soft.lost / n} vs ${expected}`);
});

test('4-state model: isolated losses alone, and bursts of mean 1/(p31+p32)', () => {
  const n = 40000;
  const isolated = run({ loss: { model: 'state', p13: 0, p14: 0.05 } }, n);
  const bi = bursts(lostSet(isolated.arrivals, n), n);
  assert.ok(bi.length > 1000 && bi.every((x) => x === 1), 'state 4 lasts one frame');
  assert.ok(Math.abs(isolated.counters.lost / n - 0.05 / 1.05) < 0.006);
  const bursty = run({ loss: { model: 'state', p13: 0.02, p31: 0.3, p32: 0.2, p23: 0.4 } }, n);
  const lost = lostSet(bursty.arrivals, n);
  // Runs of state 3 (lost) last 1/(p31+p32) = 2 frames; state 2 breaks them with single deliveries.
  const b = bursts(lost, n);
  const mean = b.reduce((a, x) => a + x, 0) / b.length;
  assert.ok(Math.abs(mean - 2) < 0.25, `mean burst ${mean}`);
});

test('duplication and corruption: counts, a duplicate is the same bytes, a corruption one bit after the Ethernet header', () => {
  const n = 10000;
  const dup = run({ duplicate: 0.1 }, n);
  assert.ok(Math.abs(dup.counters.duplicated - 1000) < 120, `${dup.counters.duplicated}`);
  assert.is(dup.arrivals.length, n + dup.counters.duplicated);
  checkBalance(dup.counters);
  const seen = new Map<number, number>();
  for (const a of dup.arrivals) seen.set(a.seq, (seen.get(a.seq) ?? 0) + 1);
  assert.is([...seen.values()].filter((c) => c === 2).length, dup.counters.duplicated);

  const cor = run({ corrupt: 0.05 }, n, { size: 100 });
  assert.ok(Math.abs(cor.counters.corrupted - 500) < 90, `${cor.counters.corrupted}`);
  // Bits that differ from frame `seq`, and the first byte that does.
  const diff = (bytes: Buffer, seq: number) => {
    const original = numbered(seq, 100).subarray(LINK_HEADROOM);
    let bits = 0;
    let first = -1;
    for (let i = 0; i < 100; i++) {
      const x = bytes[i]! ^ original[i]!;
      if (x !== 0 && first < 0) first = i;
      for (let v = x; v; v &= v - 1) bits++;
    }
    return { bits, first };
  };
  let damaged = 0;
  for (const a of cor.arrivals) {
    // The number is written twice: a flip in one copy leaves the other.
    const d1 = diff(a.bytes, a.bytes.readUInt32BE(14));
    const d2 = diff(a.bytes, a.bytes.readUInt32BE(18));
    const d = d1.bits <= d2.bits ? d1 : d2;
    if (d.bits > 0) {
      damaged++;
      assert.is(d.bits, 1);
      assert.ok(d.first >= 14, 'the Ethernet header is spared');
    }
  }
  assert.is(damaged, cor.counters.corrupted);
});

test('reorder with a gap: gap - 1 frames delayed, then one sent at once, as netem `reorder 100% gap 5`', () => {
  const { arrivals, counters } = run({ delayMs: 10, reorder: 1, gap: 5 }, 20);
  assert.equal(
    arrivals.map((a) => a.seq),
    [4, 9, 14, 19, 0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18],
  );
  assert.equal(arrivals.slice(0, 4).map((a) => a.at), [0, 0, 0, 0]);
  assert.ok(arrivals.slice(4).every((a) => a.at === 10));
  assert.is(counters.reordered, 4);
  assert.is(counters.delayed, 16);
  // With a probability: at least gap - 1 delayed frames between two reordered ones.
  const p = run({ delayMs: 10, reorder: 0.5, gap: 3 }, 4000, { spacingMs: 1 });
  const early = p.arrivals.filter((a) => a.at === a.sentAt).map((a) => a.seq);
  assert.is(early.length, p.counters.reordered);
  for (let i = 1; i < early.length; i++) assert.ok(early[i]! - early[i - 1]! >= 3, `${early[i - 1]} then ${early[i]}`);
  // Each frame after the gap goes first with probability 1/2: 1 in (2 + 2) frames on average.
  assert.ok(Math.abs(early.length / 4000 - 0.25) < 0.03, `${early.length}`);
  // `reorder P` alone: gap 1, each frame with probability P.
  const alone = run({ delayMs: 10, reorder: 0.25 }, 4000, { spacingMs: 1 });
  assert.ok(Math.abs(alone.counters.reordered / 4000 - 0.25) < 0.03);
});

test('determinism: the same seed gives the same frames at the same times; another seed does not', () => {
  const shape: NetemShape = { delayMs: 20, jitterMs: 8, loss: { model: 'gemodel', p: 0.05, r: 0.3 }, duplicate: 0.05, corrupt: 0.05, reorder: 0.1, gap: 2, rateBps: 50_000_000 };
  const trace = (seed: number) => run(shape, 2000, { seed, size: 200, spacingMs: 0.1 }).arrivals.map((a) => `${a.at}:${a.bytes.toString('hex')}`);
  const one = trace(7);
  assert.equal(trace(7), one);
  assert.not.equal(trace(8), one);
});

/** A link with offloads and batched receive, like a TAP with IFF_VNET_HDR. */
class OffloadLink implements Link {
  readonly mtu = 1500;
  readonly gsoMaxSize = 65535;
  readonly txOffload: TxOffload = emptyTxOffload();
  batchEnds = 0;
  private batchEnd: () => void = () => {};
  receiver: FrameReceiver = () => {};
  send(): void {}
  setReceiver(r: FrameReceiver): void {
    this.receiver = r;
  }
  setBatchEndHandler(handler: () => void): void {
    this.batchEnd = () => {
      this.batchEnds++;
      handler();
    };
  }
  inject(frames: Buffer[], info: RxFrameInfo): void {
    for (const f of frames) this.receiver(f, 0, f.length, info);
    this.batchEnd();
  }
  close(): void {}
}

test('rx: delayed frames arrive as batches of their own without offload facts; at once, they keep them; tx shaping hides offloads', () => {
  const clock = new VirtualClock();
  const inner = new OffloadLink();
  const netem = new NetemLink(inner, clock, { seed: 3, rx: { delayMs: 5, reorder: 1, gap: 2 } });
  assert.is(netem.gsoMaxSize, 65535, 'an rx shape leaves transmit offloads alone');
  assert.ok(netem.txOffload === inner.txOffload);
  const got: { seq: number; info: RxFrameInfo | null; at: number }[] = [];
  let ends = 0;
  netem.setReceiver((buf, off, _len, info) => got.push({ seq: buf.readUInt32BE(off + 14), info: info && { ...info }, at: clock.now() }));
  netem.setBatchEndHandler!(() => ends++);
  const info = { ...emptyRxFrameInfo(), checksumValid: true };
  inner.inject([0, 1, 2, 3].map((i) => numbered(i, 64).subarray(LINK_HEADROOM)), info);
  assert.equal(got.map((g) => g.seq), [1, 3], 'every second frame at once');
  assert.ok(got.every((g) => g.info?.checksumValid === true));
  assert.is(ends, 1, 'the inner batch ended once');
  clock.runAll();
  assert.equal(got.map((g) => g.seq), [1, 3, 0, 2]);
  assert.ok(got.slice(2).every((g) => g.info === null && g.at === 5));
  assert.is(ends, 3, 'each delayed frame is a batch of its own');

  const shaped = new NetemLink(new OffloadLink(), clock, { seed: 3, both: { delayMs: 1 } });
  assert.is(shaped.gsoMaxSize, undefined);
  assert.is(shaped.txOffload, undefined);
});

test('enabled = false and the filter pass frames untouched; close drops held frames and their timer', () => {
  const clock = new VirtualClock();
  const [near, far] = createLinkPair(clock);
  const netem = new NetemLink(near, clock, { seed: 1, tx: { delayMs: 100, loss: 0.5 } });
  let got = 0;
  far.setReceiver(() => got++);
  netem.enabled = false;
  for (let i = 0; i < 100; i++) netem.send(numbered(i, 64), LINK_HEADROOM, 64);
  clock.advance(1);
  assert.is(got, 100);
  assert.is(netem.counters.tx.offered, 0);
  netem.enabled = true;
  for (let i = 0; i < 100; i++) netem.send(numbered(i, 64), LINK_HEADROOM, 64);
  assert.ok(netem.queued.tx > 20 && clock.pending === 1, 'one timer for the whole queue');
  void netem.close();
  assert.is(netem.queued.tx, 0);
  assert.is(clock.pending, 0);
  const [near2, far2] = createLinkPair(clock);
  far2.setReceiver(() => got++);
  const filtered = new NetemLink(near2, clock, { seed: 1, tx: { loss: 1 }, filter: (buf, off) => buf.readUInt32BE(off + 14) % 2 === 0 });
  got = 0;
  for (let i = 0; i < 100; i++) filtered.send(numbered(i, 64), LINK_HEADROOM, 64);
  clock.advance(1);
  assert.is(got, 50, 'odd frames pass by, even ones are lost');
  assert.is(filtered.counters.tx.lost, 50);
  assert.throws(() => new NetemLink(near, clock, { seed: 1, tx: { loss: 1.5 } }), RangeError);
  assert.throws(() => new NetemLink(near, clock, { seed: 1, tx: { limit: 0 } }), RangeError);
});

// ---- TCP through netem ----

/** ARP passes netem by: it has no checksum, and a corrupted reply would poison a cache. */
const notArp = (buf: Buffer, off: number, len: number) => len < 14 || buf.readUInt16BE(off + 12) !== 0x0806;

async function netemPair(shape: NetemShape, seed: number) {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock);
  // Each end shapes what it sends: every frame meets netem once.
  const na = new NetemLink(la, clock, { seed, tx: shape, filter: notArp });
  const nb = new NetemLink(lb, clock, { seed: seed + 1, tx: shape, filter: notArp });
  const a = await createStack({ link: na, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const b = await createStack({ link: nb, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  clock.advance(10);
  return { clock, a, b, na, nb };
}

function pattern(offset: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = ((offset + i) * 31 + ((offset + i) >> 8)) & 255;
  return b;
}

/** Client a sends `size` bytes to server b and closes; returns what b received and the virtual time taken. */
async function transfer(p: { clock: VirtualClock; a: Stack; b: Stack }, size: number, limitMs: number) {
  const { clock, a, b } = p;
  const chunks: Buffer[] = [];
  let ended = false;
  const errors: string[] = [];
  b.createServer((s) => {
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => {
      ended = true;
      s.end();
    });
    s.on('error', (e: Error) => errors.push(`server: ${e.message}`));
  }).listen(9000);
  const client = a.connect({ port: 9000, host: '10.0.0.2' });
  client.on('error', (e: Error) => errors.push(`client: ${e.message}`));
  for (let off = 0; off < size; off += 16384) client.write(pattern(off, Math.min(16384, size - off)));
  client.end();
  const start = clock.now();
  while (!ended && errors.length === 0 && clock.now() - start < limitMs) {
    clock.advance(2);
    await new Promise((r) => setImmediate(r));
  }
  return { data: Buffer.concat(chunks), ended, errors, ms: clock.now() - start };
}

test('TCP through netem (1% loss, 10 ms delay, 10 Mbit/s): every byte, in order', async () => {
  const p = await netemPair({ loss: 0.01, delayMs: 10, rateBps: 10_000_000 }, 42);
  const size = 1_000_000;
  const r = await transfer(p, size, 120_000);
  assert.equal(r.errors, []);
  assert.ok(r.ended, `not done after ${r.ms} ms: ${r.data.length} bytes`);
  assert.is(r.data.length, size);
  assert.ok(r.data.equals(pattern(0, size)));
  assert.ok(p.na.counters.tx.lost > 0, 'some segments were lost');
  checkBalance(p.na.counters.tx, p.na.queued.tx);
  checkBalance(p.nb.counters.tx, p.nb.queued.tx);
  // 1 MB at 10 Mbit/s is 800 ms at least; recovery from 1% loss costs some more.
  assert.ok(r.ms >= 800 && r.ms < 20_000, `${r.ms} ms`);
  await p.a.close();
  await p.b.close();
});

const shapeArbitrary: fc.Arbitrary<NetemShape> = fc.record(
  {
    delayMs: fc.integer({ min: 0, max: 30 }),
    jitterMs: fc.integer({ min: 0, max: 10 }),
    delayCorrelation: fc.constantFrom(0, 0.25),
    distribution: fc.constantFrom('uniform' as const, 'normal' as const),
    loss: fc.oneof(
      fc.integer({ min: 0, max: 30 }).map((n) => n / 1000),
      fc.record({ model: fc.constant('gemodel' as const), p: fc.integer({ min: 1, max: 20 }).map((n) => n / 1000), r: fc.integer({ min: 300, max: 900 }).map((n) => n / 1000) }),
    ),
    duplicate: fc.integer({ min: 0, max: 30 }).map((n) => n / 1000),
    corrupt: fc.integer({ min: 0, max: 20 }).map((n) => n / 1000),
    reorder: fc.integer({ min: 0, max: 100 }).map((n) => n / 1000),
    gap: fc.integer({ min: 1, max: 5 }),
    rateBps: fc.constantFrom(1_000_000, 10_000_000, 100_000_000),
    limit: fc.integer({ min: 30, max: 1000 }),
  },
  { requiredKeys: ['delayMs', 'loss'] },
);

test('property: for random netem shapes, a TCP transfer of random size delivers every byte exactly once, in order', async () => {
  await fc.assert(
    fc.asyncProperty(shapeArbitrary, fc.integer({ min: 0, max: 300_000 }), fc.integer({ min: 1, max: 0x7fffffff }), async (shape, size, seed) => {
      const p = await netemPair(shape, seed);
      const r = await transfer(p, size, 300_000);
      const where = `${JSON.stringify(p.na.counters.tx)} ${JSON.stringify(p.nb.counters.tx)}`;
      assert.equal(r.errors, [], where);
      assert.ok(r.ended, `not done in 300 s of virtual time: ${r.data.length}/${size} ${where}`);
      assert.is(r.data.length, size);
      assert.ok(r.data.equals(pattern(0, size)));
      checkBalance(p.na.counters.tx, p.na.queued.tx);
      checkBalance(p.nb.counters.tx, p.nb.queued.tx);
      await p.a.close();
      await p.b.close();
    }),
    { numRuns: 40 },
  );
});

test.run();
