// A netsim table in virtual time, after smoltcp's tests/netsim.rs: two tapstacks on an
// in-memory cable, each end shaping what it sends with a NetemLink (delay RTT/2, 100 Mbit/s,
// a queue of one BDP, random loss p on data and ACKs alike, never on ARP), one bulk transfer
// from A to B per cell, for loss {0, 0.1, 1, 3, 10}% x RTT {1, 10, 100} ms. Each cell prints
// its goodput beside the Mathis bound, MSS/RTT x 1.22/sqrt(p) (Mathis, Semke, Mahdavi and
// Ott 1997), with the MSS the connection actually used, the cell's RTT, and the link's
// payload capacity (100 Mbit/s less the frames' headers) as a cap. Everything runs in the
// VirtualClock's time, seeded: the same seed and settings give the same table on any
// machine, at any load.
//
//   npm run bench:netsim                         the table, CUBIC (TCP's default)
//   CONGESTION=newreno npm run bench:netsim      NewReno instead (CONGESTION=bbr: BBR)
//   SEED=7 BYTES=4194304 npm run bench:netsim    another seed; 4 MiB in every cell
//   npm run bench:netsim -- --write              also writes bench/results/netsim-<date>.md (netsim-bbr-<date>.md, ...)
//   LIMIT_S=600 MAX_EVENTS=20000000 BUFFER_BYTES=4194304   the bounds of a cell; TCP's buffers
//   CELLS=3:1,10:100 npm run bench:netsim        only these cells (loss %:RTT ms)
//   TRACE=DIR npm run bench:netsim               each cell's traces of A and B (JSON lines) in DIR
//
// Bytes per cell by loss row: 64 MiB at 0 and 0.1%, 32 at 1%, 16 at 3%, 8 at 10% (ROW_MIB).
// TCP runs with its defaults (CUBIC, SACK, timestamps, TLP) except for 4 MiB buffers.
//
// Time per cell: from the first data byte A sends (seen by a probe) to the moment B's
// application has the last byte, in virtual time. Between two timers the event loop runs
// (process.nextTick, the streams' callbacks) at the same virtual time, as between two timer
// callbacks in Node. A cell gives up after LIMIT_S seconds of virtual time (600) or
// MAX_EVENTS timers, and prints 'did not finish'.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLinkPair, createStack, NetemLink, type NetemShape, type Stack, VirtualClock, type Clock, type Timer } from '../src/index.ts';
import { positiveInt } from './targets.ts';
import type { CongestionName } from '../src/tcp/congestion/congestion.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const LOSSES = [0, 0.001, 0.01, 0.03, 0.1];
const RTTS_MS = [1, 10, 100];
const RATE_BPS = 100e6;
/** A full-sized frame: Ethernet 14 + IPv4 20 + TCP 20 + timestamps 12 + 1448 bytes of data. */
const FRAME_BYTES = 1514;


const SEED = positiveInt('SEED', 1);
/**
 * Bytes per cell, by loss row: enough for steady state (about 50 to 1,000 losses of data
 * frames in each cell with loss) and for the slowest cell to end well inside LIMIT_S.
 * BYTES=N moves N in every cell instead.
 */
const ROW_MIB = [64, 64, 32, 16, 8];
const BYTES = process.env.BYTES ? positiveInt('BYTES', 0) : null;
const LIMIT_S = positiveInt('LIMIT_S', 600);
const MAX_EVENTS = positiveInt('MAX_EVENTS', 20_000_000);
/** Send and receive buffers: 1 MiB (the default) would cap 100 ms at 84 Mbit/s by window alone. */
const BUFFER_BYTES = positiveInt('BUFFER_BYTES', 4 * 1024 * 1024);
const CONGESTION = (process.env.CONGESTION ?? 'cubic') as CongestionName;
if (CONGESTION !== 'cubic' && CONGESTION !== 'newreno' && CONGESTION !== 'bbr') {
  process.stderr.write(`netsim: CONGESTION must be cubic, newreno or bbr, not '${CONGESTION}'\n`);
  process.exit(2);
}
const args = process.argv.slice(2);
for (const a of args)
  if (a !== '--write') {
    process.stderr.write(`netsim: unknown argument '${a}' (use --write)\n`);
    process.exit(2);
  }
const WRITE = args.includes('--write');
/** CELLS=loss%:rttMs,...: run only those cells (the table shows the others as '-'). */
const CELLS = process.env.CELLS ? new Set(process.env.CELLS.split(',').map((c) => c.trim())) : null;
const TRACE_DIR = process.env.TRACE ?? null;
const cellKey = (loss: number, rttMs: number): string => `${+(loss * 100).toFixed(1)}:${rttMs}`;

/**
 * netem's limit counts every frame it holds, those on the delay line too (at the full rate,
 * rate x one-way delay of them): the limit is that pipe plus one BDP (rate x RTT) of queue,
 * in full-sized frames, the queue at least 4.
 */
function queueLimit(rttMs: number): { limit: number; bdp: number } {
  const perMs = RATE_BPS / 8 / 1000 / FRAME_BYTES;
  const bdp = Math.max(4, Math.ceil(perMs * rttMs));
  return { limit: Math.ceil((perMs * rttMs) / 2) + bdp, bdp };
}

/** ARP passes netem by (as a tc filter on IP only): no loss, no delay, no queue. */
const notArp = (buf: Buffer, off: number, len: number): boolean => len < 14 || buf.readUInt16BE(off + 12) !== 0x0806;

/** The VirtualClock seen through a count of the timers that have fired: one step is one timer. */
class CountingClock implements Clock {
  fired = 0;
  constructor(readonly inner: VirtualClock) {}
  now(): number {
    return this.inner.now();
  }
  setTimer(ms: number, fn: () => void): Timer {
    return this.inner.setTimer(ms, () => {
      this.fired++;
      fn();
    });
  }
}

interface Cell {
  loss: number;
  rttMs: number;
  limit: number;
  /** Bytes moved from A to B. */
  bytes: number;
  finished: boolean;
  /** Bytes B's application had when the cell ended. */
  received: number;
  ms: number;
  mss: number;
  goodputMbps: number;
  mathisMbps: number;
  stats: Record<string, number>;
  dataLost: number;
  acksLost: number;
  queueDrops: number;
  events: number;
  why: string;
}

const immediate = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * The payload the link can carry, in Mbit/s: each segment of `mss` bytes goes in a frame of
 * FRAME_BYTES - 1448 more (Ethernet, IPv4, TCP and its timestamps: 66 bytes), and netem's
 * rate counts whole frames. 95.6 Mbit/s at MSS 1448, what the 0% row reaches.
 */
function payloadCapacity(mss: number): number {
  return (RATE_BPS / 1e6) * (mss / (mss + FRAME_BYTES - 1448));
}

/**
 * The Mathis bound in Mbit/s for loss p > 0, NaN for p = 0. Capped at the link's payload
 * capacity, not its 100 Mbit/s: no TCP can deliver more payload than the frames carry, so a
 * cell with the link full is at the bound.
 */
function mathis(mss: number, rttMs: number, loss: number): number {
  return loss > 0 ? Math.min(payloadCapacity(mss), ((mss * 8) / (rttMs / 1000)) * (1.22 / Math.sqrt(loss)) / 1e6) : NaN;
}

async function runCell(loss: number, rttMs: number, bytes: number, seed: number): Promise<Cell> {
  const virtual = new VirtualClock();
  const clock = new CountingClock(virtual);
  const [la, lb] = createLinkPair(clock, { latencyMs: 0 });
  const { limit } = queueLimit(rttMs);
  const shape: NetemShape = { delayMs: rttMs / 2, rateBps: RATE_BPS, limit, loss };
  // Each end shapes what it sends: every frame meets netem once, data on A's side, ACKs on B's.
  const na = new NetemLink(la, clock, { seed: seed * 2, tx: shape, filter: notArp });
  const nb = new NetemLink(lb, clock, { seed: seed * 2 + 1, tx: shape, filter: notArp });
  const tcp = { congestion: CONGESTION, receiveBufferSize: BUFFER_BYTES, sendBufferSize: BUFFER_BYTES };
  const a: Stack = await createStack({ link: na, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1, tcp });
  const b: Stack = await createStack({ link: nb, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2, tcp });

  const traceOuts: fs.WriteStream[] = [];
  if (TRACE_DIR) {
    fs.mkdirSync(TRACE_DIR, { recursive: true });
    for (const [end, stack] of [['a', a], ['b', b]] as const) {
      const out = fs.createWriteStream(path.join(TRACE_DIR, `netsim-${cellKey(loss, rttMs).replace(':', '-')}ms-${end}.jsonl`));
      stack.trace({ filter: 'tcp', format: 'json', output: out });
      traceOuts.push(out);
    }
  }
  let firstSentAt = -1;
  let mss = 0;
  a.setProbe({
    tcpSegment(direction, conn, seg) {
      if (firstSentAt < 0 && direction === 'out' && conn !== null && seg.length > seg.headerLength) {
        firstSentAt = clock.now();
        mss = conn.snd.mss;
      }
    },
  });
  let received = 0;
  let lastAt = -1;
  const errors: string[] = [];
  b.createServer((s) => {
    s.on('data', (d: Buffer) => {
      received += d.length;
      if (received >= bytes && lastAt < 0) lastAt = clock.now();
    });
    s.on('end', () => s.end());
    s.on('error', (e: Error) => errors.push(`server: ${e.message}`));
  }).listen(9000);
  const client = a.connect({ host: '10.0.0.2', port: 9000 });
  client.on('error', (e: Error) => errors.push(`client: ${e.message}`));
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let written = 0;
  const pump = (): void => {
    while (written < bytes) {
      const n = Math.min(chunk.length, bytes - written);
      written += n;
      const more = client.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      if (written >= bytes) client.end();
      if (!more) return;
    }
  };
  client.on('drain', pump);
  pump();

  const start = virtual.now();
  const deadline = start + LIMIT_S * 1000;
  let why = '';
  let idle = 0;
  while (lastAt < 0) {
    if (errors.length > 0) {
      why = errors.join('; ');
      break;
    }
    if (clock.fired >= MAX_EVENTS) {
      why = `${MAX_EVENTS} timers`;
      break;
    }
    if (firstSentAt >= 0) a.setProbe(null);
    // One timer (cancelled ones skipped), then the event loop's ticks at the same virtual time.
    const before = clock.fired;
    const ran = virtual.runUntilTrue(() => clock.fired > before, Math.max(0, deadline - virtual.now()));
    await immediate();
    if (!ran) {
      // Nothing due before the deadline: the ticks may have set a timer; twice idle is the end.
      if (++idle >= 2) {
        why = virtual.now() >= deadline || virtual.pending > 0 ? `${LIMIT_S} s of virtual time` : 'no timer left';
        break;
      }
    } else idle = 0;
  }
  const finished = lastAt >= 0;
  const ms = (finished ? lastAt : virtual.now()) - firstSentAt;
  const goodputMbps = finished ? (bytes * 8) / (ms / 1000) / 1e6 : NaN;
  const mathisMbps = mathis(mss, rttMs, loss);
  const stats = a.counters().tcp?.stats ?? {};
  const cell: Cell = {
    loss,
    rttMs,
    limit,
    bytes,
    finished,
    received,
    ms,
    mss,
    goodputMbps,
    mathisMbps,
    stats,
    dataLost: na.counters.tx.lost,
    acksLost: nb.counters.tx.lost,
    queueDrops: na.counters.tx.queueDrops + nb.counters.tx.queueDrops,
    events: clock.fired,
    why,
  };
  client.destroy();
  await a.close();
  await b.close();
  for (const out of traceOuts) await new Promise<void>((r) => out.end(r));
  return cell;
}

/** Three significant digits, without exponent notation. */
function sig3(x: number): string {
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  if (x >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

const pct = (p: number): string => `${+(p * 100).toFixed(1)}%`;

function mainTable(cells: (Cell | null)[][]): string {
  const head = `| loss \\ RTT | ${RTTS_MS.map((r) => `${r} ms`).join(' | ')} | MiB per cell |`;
  const sep = `|---|${RTTS_MS.map(() => '---').join('|')}|---|`;
  const rows = cells.map((row, i) => {
    const text = row.map((c) => {
      if (c === null) return '-';
      if (!c.finished) return `did not finish (${sig3((c.received * 8) / (c.ms / 1000) / 1e6)} so far)`;
      return c.loss > 0 ? `${sig3(c.goodputMbps)} (${(c.goodputMbps / c.mathisMbps).toFixed(2)})` : sig3(c.goodputMbps);
    });
    const bytes = BYTES ?? ROW_MIB[i]! * 1024 * 1024;
    return `| ${pct(LOSSES[i]!)} | ${text.join(' | ')} | ${+(bytes / 1024 / 1024).toFixed(3)} |`;
  });
  return [head, sep, ...rows].join('\n');
}

function detailTable(cells: (Cell | null)[][]): string {
  const head =
    '| loss | RTT | netem limit | bytes | goodput Mbit/s | Mathis Mbit/s | ratio | virtual s | retransmits | timeouts | fast retransmits | TLPs | data frames lost | ACKs lost | queue drops |';
  const sep = `|${'---|'.repeat(15)}`;
  const rows: string[] = [];
  for (const row of cells)
    for (const c of row) {
      if (c === null) continue;
      const s = c.stats;
      rows.push(
        `| ${pct(c.loss)} | ${c.rttMs} ms | ${c.limit} | ${c.bytes} | ${c.finished ? sig3(c.goodputMbps) : 'did not finish'} | ${c.loss > 0 ? sig3(c.mathisMbps) : '-'} | ${
          c.finished && c.loss > 0 ? (c.goodputMbps / c.mathisMbps).toFixed(2) : '-'
        } | ${(c.ms / 1000).toFixed(3)} | ${s.retransmits ?? 0} | ${s.timeouts ?? 0} | ${s.fastRetransmits ?? 0} | ${s.tailLossProbes ?? 0} | ${c.dataLost} | ${c.acksLost} | ${c.queueDrops} |`,
      );
    }
  return [head, sep, ...rows].join('\n');
}

const envShown = [`SEED=${SEED}`, `CONGESTION=${CONGESTION}`, ...(BYTES !== null ? [`BYTES=${BYTES}`] : [])].join(' ');
const command = `${envShown} npm run bench:netsim`;
const wallStart = performance.now();
const cells: (Cell | null)[][] = [];
for (let li = 0; li < LOSSES.length; li++) {
  const row: (Cell | null)[] = [];
  for (let ri = 0; ri < RTTS_MS.length; ri++) {
    const t0 = performance.now();
    if (CELLS && !CELLS.has(cellKey(LOSSES[li]!, RTTS_MS[ri]!))) {
      row.push(null);
      continue;
    }
    const c = await runCell(LOSSES[li]!, RTTS_MS[ri]!, BYTES ?? ROW_MIB[li]! * 1024 * 1024, SEED * 100 + li * 10 + ri);
    row.push(c);
    process.stderr.write(
      `[netsim] loss ${pct(c.loss)} RTT ${c.rttMs} ms: ${c.finished ? `${sig3(c.goodputMbps)} Mbit/s` : `did not finish: ${c.why}`} in ${(c.ms / 1000).toFixed(3)} virtual s, ${c.events} timers, ${((performance.now() - t0) / 1000).toFixed(1)} s wall\n`,
    );
  }
  cells.push(row);
}
const wallS = (performance.now() - wallStart) / 1000;

const mss = cells.flat().find((c) => c !== null)?.mss ?? 1448;
const header = [
  `Goodput in Mbit/s (10^6 bit/s) of one bulk transfer from A to B per cell (its size in the last column), in virtual time from the`,
  `first data byte sent to the last byte received; in brackets the ratio to the Mathis bound`,
  `MSS/RTT x 1.22/sqrt(p) (MSS ${mss}, the connection's; capped at the link's payload capacity, ${sig3(payloadCapacity(mss))} Mbit/s of 100 Mbit/s`,
  `in ${mss + FRAME_BYTES - 1448}-byte frames). Both directions: netem delay RTT/2,`,
  `rate 100 Mbit/s, limit = the one-way pipe + 1 BDP in ${FRAME_BYTES}-byte frames (${RTTS_MS.map((r) => `${queueLimit(r).limit} at ${r} ms`).join(', ')}),`,
  `random loss p on every frame but ARP. TCP ${CONGESTION}, SACK, timestamps, TLP; buffers ${BUFFER_BYTES} bytes.`,
].join('\n');
const out = `${header}\n\n${mainTable(cells)}\n\nPer cell (counters of the sender, A; frames dropped by netem in each direction):\n\n${detailTable(cells)}\n\nCommand: \`${command}\` (seed ${SEED})\n`;
process.stdout.write(out);
process.stderr.write(`[netsim] wall time ${wallS.toFixed(1)} s\n`);

/** The commit measured, and whether src/ differs from it. */
function revision(): string {
  const git = (...a: string[]): string => spawnSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const commit = git('rev-parse', '--short', 'HEAD');
  if (!commit) return 'outside git';
  return git('status', '--porcelain', '--', 'src') ? `${commit} with uncommitted changes in src/` : commit;
}

if (WRITE) {
  const now = new Date();
  const file = path.join(ROOT, 'bench/results', `netsim-${CONGESTION === 'cubic' ? '' : `${CONGESTION}-`}${now.toISOString().slice(0, 10)}.md`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    `# tapstack netsim (bench/netsim.ts)\n\nMeasured ${now.toISOString().slice(0, 16).replace('T', ' ')} UTC at commit ${revision()}, Node ${process.version}, wall time ${wallS.toFixed(1)} s (the table does not depend on the machine).\n\n${out}`,
  );
  process.stderr.write(`[netsim] wrote ${path.relative(ROOT, file)}\n`);
}
