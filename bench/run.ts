// npm run bench: tapstack against lwIP over the same TAP, side by side in one run, with the
// same C clients (../shared/peers: tcpcli, and ping -f), and the kernel over a veth pair as
// the physical limit. Prints one table with the ratios to tuned lwIP and the goals of
// issue 5, and writes it as markdown when asked.
//
// Run as root (namespaces and TAPs). Every target runs in namespaces made here (prefix
// bench-) and deleted afterwards; every client is bounded in count and time; only the
// processes started here are ended, by PID. All targets are up at once and take turns,
// figure by figure and run by run, so that other load on the machine falls on all alike.
//
// Environment:
//   RUNS=3               runs per figure (the table shows medians)
//   BULK=268435456       bytes per bulk transfer
//   TARGETS=tapstack,lwip-tuned,lwip-deb,kernel   which columns to measure; tapstack@MODE
//                        is tapstack with --tap-io MODE (e.g. tapstack@busy-poll)
//   TAPSTACK_ARGS="..."  extra arguments for ./bin/tapstack (e.g. "--offload off")
//   TAPSTACK_BASE=DIR    another checkout of tapstack (e.g. a `git worktree` of an older
//                        commit, with its node_modules): target `tapstack-base` runs its
//                        bin/tapstack beside this one, for before/after figures in one run
//   BENCH_OUT=FILE       also write the results as markdown (or: --out FILE; --write for
//                        bench/results/<date>.md)
//   CONNS=10000          simultaneous connections for the concurrency figures
//   PEERS_DIR=DIR        the C peers (default ../shared/peers); PEERS_BIN=DIR where they are built

import os from 'node:os';
import path from 'node:path';
import {
  buildPeers,
  cpuSeconds,
  fmt,
  kv,
  log,
  machine,
  median,
  outFileFromArgs,
  positiveInt,
  preflight,
  probeAndWarmUp,
  rssMiB,
  run,
  runMain,
  type Running,
  sleep,
  startKernel,
  startLwip,
  startTapstack,
  tail,
  tcpcli,
  writeReport,
} from './targets.ts';

const TAPSTACK_BASE = process.env.TAPSTACK_BASE ? path.join(path.resolve(process.env.TAPSTACK_BASE), 'bin/tapstack') : null;

const RUNS = positiveInt('RUNS', 3);
const BULK = positiveInt('BULK', 256 * 1024 * 1024);
const CONNS = positiveInt('CONNS', 10_000);
const PING_COUNT = positiveInt('PING_COUNT', 20_000);
const RR_COUNT = 10_000;
const CR_COUNT = 2_000;
const TARGETS = (process.env.TARGETS ?? 'tapstack,lwip-tuned,lwip-deb,kernel').split(',').map((s) => s.trim()).filter(Boolean);
const TAPSTACK_ARGS = (process.env.TAPSTACK_ARGS ?? '').split(/\s+/).filter(Boolean);
const GIB = 1024 ** 3;

// ---------------------------------------------------------------------------------------
// figures

type FigureKey = 'ping' | 'push' | 'pull' | 'rr' | 'cr' | 'conc' | 'cpu' | 'rssIdle' | 'rssConc';

interface FigureDef {
  key: FigureKey;
  label: string;
  unit: string;
  /** Goal as a ratio tapstack / tuned lwIP: at least (min) or at most (max). */
  goal?: { min?: number; max?: number; text: string };
  decimals: number;
  tcp: boolean;
}

const FIGURES: FigureDef[] = [
  { key: 'ping', label: `flood ping (ping -f -c ${PING_COUNT})`, unit: 'pkt/s', goal: { min: 1, text: '>= 1x' }, decimals: 0, tcp: false },
  { key: 'push', label: 'TCP bulk host -> stack (port 9)', unit: 'MB/s', goal: { min: 2, text: '>= 2x' }, decimals: 0, tcp: true },
  { key: 'pull', label: 'TCP bulk stack -> host (port 19)', unit: 'MB/s', goal: { min: 2, text: '>= 2x' }, decimals: 0, tcp: true },
  { key: 'rr', label: `64-byte echo round trips (${RR_COUNT} seq.)`, unit: 'RT/s', goal: { min: 1, text: '>= 1x' }, decimals: 0, tcp: true },
  { key: 'cr', label: `sequential connect+close (${CR_COUNT})`, unit: 'conn/s', goal: { min: 0.5, text: '>= 0.5x' }, decimals: 0, tcp: true },
  { key: 'conc', label: `${CONNS} simultaneous connections, echoed`, unit: 'conns', goal: { text: `all ${CONNS}` }, decimals: 0, tcp: true },
  { key: 'cpu', label: 'stack CPU per GiB received (host -> stack)', unit: 's/GiB', goal: { max: 1, text: '<= 1x' }, decimals: 2, tcp: true },
  { key: 'rssIdle', label: 'resident memory, idle', unit: 'MiB', decimals: 1, tcp: false },
  { key: 'rssConc', label: `resident memory, ${CONNS} connections`, unit: 'MiB', decimals: 1, tcp: true },
];

interface TargetResult {
  name: string;
  values: Partial<Record<FigureKey, number[]>>;
  notes: Partial<Record<FigureKey, string>>;
  /** Set when the target could not be measured at all, or its TCP rows are unavailable. */
  unavailable?: string;
  tcpUnavailable?: string;
}

function add(r: TargetResult, key: FigureKey, v: number): void {
  if (!Number.isFinite(v)) return;
  (r.values[key] ??= []).push(v);
}

function note(r: TargetResult, key: FigureKey, text: string): void {
  r.notes[key] = r.notes[key] ? `${r.notes[key]}; ${text}` : text;
}

/** A target up and idle in its namespace(s), measured one figure at a time. */
interface Target extends Running {
  result: TargetResult;
  pullBroken: boolean;
}

// One measurement each: every figure is taken RUNS times, targets taking turns, so that a
// busy moment of the machine falls on all of them alike.

async function measurePing(t: Target): Promise<void> {
  const r = t.result;
  const p = await run('ip', ['netns', 'exec', t.clientNs, 'ping', '-q', '-f', '-c', String(PING_COUNT), '-w', '60', t.host], 70_000);
  const m = /(\d+) packets transmitted, (\d+) received.*time (\d+)ms/.exec(p.out);
  if (!m) return note(r, 'ping', `ping failed: ${tail(p.out)}`);
  const received = Number(m[2]);
  if (received < Number(m[1])) note(r, 'ping', `lost ${Number(m[1]) - received}`);
  add(r, 'ping', received / (Number(m[3]) / 1000));
}

async function measurePush(t: Target): Promise<void> {
  const c0 = cpuSeconds(t.pid);
  const out = await tcpcli(t.clientNs, ['push', t.host, '9', String(BULK)]);
  const c1 = cpuSeconds(t.pid);
  const mbps = kv(out.out, 'MBps');
  if (!Number.isFinite(mbps)) return note(t.result, 'push', `push failed: ${tail(out.out)}`);
  add(t.result, 'push', mbps);
  add(t.result, 'cpu', (c1 - c0) / (BULK / GIB));
}

async function measurePull(t: Target): Promise<void> {
  if (!t.canPull || t.pullBroken) return;
  // A source that does not stop would hold the client until its timeout: one try then.
  const out = await tcpcli(t.clientNs, ['pull', t.host, '19'], 60);
  const bytes = kv(out.out, 'bytes');
  if (bytes !== BULK) {
    t.pullBroken = true;
    return note(t.result, 'pull', `pulled ${Number.isFinite(bytes) ? bytes : 'nothing'} of ${BULK} bytes: ${tail(out.out)}`);
  }
  add(t.result, 'pull', kv(out.out, 'MBps'));
}

async function measureRoundTrips(t: Target): Promise<void> {
  const out = await tcpcli(t.clientNs, ['rr', t.host, '7', String(RR_COUNT), '64']);
  add(t.result, 'rr', kv(out.out, 'rtps'));
}

async function measureConnects(t: Target): Promise<void> {
  const out = await tcpcli(t.clientNs, ['cr', t.host, '9', String(CR_COUNT)]);
  add(t.result, 'cr', kv(out.out, 'cps'));
  const fails = kv(out.out, 'fails');
  if (fails > 0) note(t.result, 'cr', `${fails} failed`);
}

/** CONNS connections held open at once, one echo each; resident memory sampled meanwhile. */
async function measureConcurrent(t: Target): Promise<void> {
  let peak = rssMiB(t.pid);
  const sampler = setInterval(() => {
    const v = rssMiB(t.pid);
    if (v > peak) peak = v;
  }, 100);
  const out = await tcpcli(t.clientNs, ['conc', t.host, '7', String(CONNS)]);
  clearInterval(sampler);
  add(t.result, 'conc', kv(out.out, 'echoed'));
  add(t.result, 'rssConc', peak);
  if (!/RESULT mode=conc/.test(out.out)) note(t.result, 'conc', `client: ${tail(out.out)}`);
  else note(t.result, 'conc', `opened ${kv(out.out, 'opened')}, connect failures ${kv(out.out, 'connect_fail')}, bad ${kv(out.out, 'bad')}`);
}

// ---------------------------------------------------------------------------------------
// targets: each started in namespaces of its own; null and a reason when it cannot start

/** Starts a target by name; null, with the reason in r, when it cannot. */
async function startTarget(name: string, r: TargetResult): Promise<Target | null> {
  let s: Running | string;
  if (name === 'tapstack') s = await startTapstack(BULK, TAPSTACK_ARGS);
  // tapstack@MODE: the same with --tap-io MODE (src/tap/tap.ts TapIo), beside the default.
  else if (name.startsWith('tapstack@')) s = await startTapstack(BULK, [...TAPSTACK_ARGS, '--tap-io', name.slice('tapstack@'.length)]);
  else if (name === 'tapstack-base') s = TAPSTACK_BASE === null ? 'TAPSTACK_BASE is not set' : await startTapstack(BULK, TAPSTACK_ARGS, TAPSTACK_BASE);
  else if (name === 'lwip-tuned' || name === 'lwip-deb') s = await startLwip(BULK, name === 'lwip-tuned' ? 'tuned' : 'deb');
  else s = await startKernel(BULK);
  if (typeof s === 'string') {
    r.unavailable = s;
    return null;
  }
  if (!s.canPull) note(r, 'pull', 'n/a: chargen does not stop after BULK bytes (no --chargen-bytes)');
  if (name === 'kernel') note(r, 'cpu', 'ksrv process only: the kernel charges most receive work to the sender');
  return { ...s, result: r, pullBroken: false };
}

// ---------------------------------------------------------------------------------------
// the table

function cell(r: TargetResult | undefined, f: FigureDef): string {
  if (!r) return 'not run';
  if (r.unavailable && !(r.values[f.key]?.length)) return 'n/a';
  if (f.tcp && r.tcpUnavailable) return `n/a: ${r.tcpUnavailable}`;
  const xs = r.values[f.key];
  if (!xs || xs.length === 0) return r.notes[f.key]?.startsWith('n/a') ? 'n/a' : 'failed';
  const m = fmt(median(xs), f.decimals);
  if (xs.length === 1) return m;
  return `${m} (${fmt(Math.min(...xs), f.decimals)}-${fmt(Math.max(...xs), f.decimals)})`;
}

interface GoalVerdict {
  ratio: string;
  met: string;
}

function verdict(f: FigureDef, ours: TargetResult | undefined, lwip: TargetResult | undefined): GoalVerdict {
  const mine = ours?.values[f.key];
  if (f.key === 'conc') {
    if (!ours || (f.tcp && ours.tcpUnavailable) || !mine?.length) return { ratio: '', met: 'not met (n/a)' };
    const theirs = lwip?.values.conc;
    return { ratio: theirs?.length ? fmt(median(mine) / Math.max(1, median(theirs)), 2) : '', met: median(mine) >= CONNS ? 'met' : 'not met' };
  }
  const theirs = lwip?.values[f.key];
  if (!mine?.length || !theirs?.length || (f.tcp && ours?.tcpUnavailable)) return { ratio: 'n/a', met: f.goal ? 'not met (n/a)' : '' };
  const ratio = median(mine) / median(theirs);
  if (!f.goal) return { ratio: fmt(ratio, 2), met: '' };
  const ok = (f.goal.min === undefined || ratio >= f.goal.min) && (f.goal.max === undefined || ratio <= f.goal.max);
  return { ratio: fmt(ratio, 2), met: ok ? 'met' : 'not met' };
}

const COLUMN_NAMES: Record<string, string> = {
  tapstack: 'tapstack',
  'tapstack-base': 'tapstack (base)',
  'lwip-tuned': 'lwIP tuned',
  'lwip-deb': 'lwIP Debian',
  kernel: 'kernel (veth)',
};

function table(results: Map<string, TargetResult>): string {
  const cols = TARGETS;
  const withBase = cols.includes('tapstack-base');
  const head = ['figure', 'unit', ...cols.map((c) => COLUMN_NAMES[c] ?? c), 'tapstack / lwIP tuned', ...(withBase ? ['base / lwIP tuned'] : []), 'goal', 'met?'];
  const rows: string[][] = [];
  for (const f of FIGURES) {
    const v = verdict(f, results.get('tapstack'), results.get('lwip-tuned'));
    const base = withBase ? [verdict(f, results.get('tapstack-base'), results.get('lwip-tuned')).ratio] : [];
    rows.push([f.label, f.unit, ...cols.map((c) => cell(results.get(c), f)), v.ratio, ...base, f.goal?.text ?? '', v.met]);
  }
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

function notes(results: Map<string, TargetResult>): string {
  const out: string[] = [];
  for (const [name, r] of results) {
    if (r.unavailable) out.push(`- ${name}: ${r.unavailable}`);
    if (r.tcpUnavailable) out.push(`- ${name}: TCP rows n/a: ${r.tcpUnavailable}`);
    for (const f of FIGURES) {
      const n = r.notes[f.key];
      if (n) out.push(`- ${name}, ${f.label}: ${n}`);
    }
  }
  return out.join('\n');
}

/** Every measured value, in run order, for the record. */
function rawValues(results: Map<string, TargetResult>): string {
  const lines: string[] = [];
  for (const f of FIGURES) {
    const parts: string[] = [];
    for (const [name, r] of results) {
      const xs = r.values[f.key];
      if (xs?.length) parts.push(`${COLUMN_NAMES[name] ?? name}: ${xs.map((x) => fmt(x, f.decimals)).join(', ')}`);
    }
    if (parts.length) lines.push(`- ${f.label} (${f.unit}): ${parts.join('; ')}`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const unfit = preflight();
  if (unfit) {
    process.stderr.write(`bench: ${unfit}\n`);
    return 2;
  }
  const args = process.argv.slice(2);
  const outFile = outFileFromArgs('bench', args, '');
  if (outFile === null) return 2;
  const started = new Date();
  const load0 = os.loadavg()[0]!;
  const peersProblem = buildPeers();
  if (peersProblem) log(peersProblem);
  const results = new Map<string, TargetResult>();
  const targets: Target[] = [];
  for (const name of TARGETS) {
    const r: TargetResult = { name, values: {}, notes: {} };
    results.set(name, r);
    let t: Target | null = null;
    if (!['tapstack', 'tapstack-base', 'lwip-tuned', 'lwip-deb', 'kernel'].includes(name) && !name.startsWith('tapstack@')) {
      process.stderr.write(`bench: unknown target '${name}' (tapstack, tapstack@IO-MODE, tapstack-base, lwip-tuned, lwip-deb, kernel)\n`);
      for (const started of targets) await started.stop();
      return 2;
    } else if (peersProblem && !name.startsWith('tapstack')) r.unavailable = 'peers not built';
    else t = await startTarget(name, r);
    if (t) targets.push(t);
  }
  try {
    await sleep(500);
    for (const t of targets) add(t.result, 'rssIdle', rssMiB(t.pid));
    const tcpTargets: Target[] = [];
    for (const t of targets) {
      if (peersProblem) t.result.tcpUnavailable = 'no tcpcli (peers not built)';
      else {
        log(`${t.result.name}: TCP probe and warm-up`);
        if (!(await probeAndWarmUp(t, Math.max(BULK, 256 * 1024 * 1024)))) t.result.tcpUnavailable = 'TCP not available';
      }
      if (!t.result.tcpUnavailable) tcpTargets.push(t);
    }
    // The simultaneous connections first, while the clients' port space is still clean.
    for (const t of tcpTargets) {
      log(`${t.result.name}: ${CONNS} simultaneous connections`);
      await measureConcurrent(t);
    }
    for (let i = 0; i < RUNS; i++) {
      log(`run ${i + 1} of ${RUNS}`);
      for (const t of targets) await measurePing(t);
      for (const t of tcpTargets) await measurePush(t);
      for (const t of tcpTargets) await measurePull(t);
      for (const t of tcpTargets) await measureRoundTrips(t);
      for (const t of tcpTargets) await measureConnects(t);
    }
    for (const t of targets) if (!t.alive()) t.result.unavailable = `${t.result.name} died during the run`;
  } finally {
    for (const t of targets) await t.stop();
  }
  const load1 = os.loadavg()[0]!;
  const header = [
    `Measured ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machine()}.`,
    `Medians of RUNS=${RUNS} (min-max in brackets), the targets taking turns figure by figure, all up at once in namespaces of their own; bulk transfers of ${BULK} bytes (MB = 10^6 bytes); the same clients for all (tcpcli from ../shared/peers, ping -f).`,
    `Load average (1 min) ${load0.toFixed(2)} at the start, ${load1.toFixed(2)} at the end: other work on the machine shows as spread between runs.`,
    TAPSTACK_ARGS.length ? `tapstack arguments: ${TAPSTACK_ARGS.join(' ')}` : '',
  ]
    .filter(Boolean)
    .join('\n');
  const body = `${header}\n\n${table(results)}\n\nNotes:\n${notes(results) || '- none'}\n`;
  process.stdout.write(`\n${body}`);
  if (outFile) {
    writeReport(outFile, 'tapstack benchmark', 'bench', ['RUNS', 'BULK', 'CONNS', 'PING_COUNT', 'TARGETS', 'TAPSTACK_ARGS', 'TAPSTACK_BASE'], args, `${body}\nEvery run:\n\n${rawValues(results)}\n`);
  }
  return 0;
}

runMain('bench', main);
