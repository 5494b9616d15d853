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
//   TARGETS=tapstack,lwip-tuned,lwip-deb,kernel   which columns to measure
//   TAPSTACK_ARGS="..."  extra arguments for ./bin/tapstack (e.g. "--offload off")
//   TAPSTACK_BASE=DIR    another checkout of tapstack (e.g. a `git worktree` of an older
//                        commit, with its node_modules): target `tapstack-base` runs its
//                        bin/tapstack beside this one, for before/after figures in one run
//   BENCH_OUT=FILE       also write the results as markdown (or: --out FILE; --write for
//                        bench/results/<date>.md)
//   CONNS=10000          simultaneous connections for the concurrency figures
//   PEERS_DIR=DIR        the C peers (default ../shared/peers); PEERS_BIN=DIR where they are built

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PEERS_SRC = process.env.PEERS_DIR ?? path.resolve(ROOT, '../shared/peers');
const PEERS_BIN = process.env.PEERS_BIN ?? '/tmp/tapstack-peers';
const TAPSTACK = path.join(ROOT, 'bin/tapstack');
const TAPSTACK_BASE = process.env.TAPSTACK_BASE ? path.join(path.resolve(process.env.TAPSTACK_BASE), 'bin/tapstack') : null;

const RUNS = positiveInt('RUNS', 3);
const BULK = positiveInt('BULK', 256 * 1024 * 1024);
const CONNS = positiveInt('CONNS', 10_000);
const PING_COUNT = positiveInt('PING_COUNT', 20_000);
const RR_COUNT = 10_000;
const CR_COUNT = 2_000;
const CLIENT_TIMEOUT_S = 120;
const TARGETS = (process.env.TARGETS ?? 'tapstack,lwip-tuned,lwip-deb,kernel').split(',').map((s) => s.trim()).filter(Boolean);
const TAPSTACK_ARGS = (process.env.TAPSTACK_ARGS ?? '').split(/\s+/).filter(Boolean);
const CLK_TCK = 100; // Linux USER_HZ for /proc/PID/stat
const GIB = 1024 ** 3;

function positiveInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`bench: ${name} must be a positive integer, not '${v}'\n`);
    process.exit(2);
  }
  return n;
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------
// processes and namespaces (all tracked, all cleaned up)

const namespaces = new Set<string>();
const children = new Set<ChildProcess>();
let nsCounter = 0;

interface Result {
  code: number | null;
  out: string;
}

/** Runs a command to completion with a hard timeout; never rejects. */
function run(cmd: string, args: string[], timeoutMs = 30_000, env?: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
    children.add(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, out });
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code: null, out: String(err) });
    });
  });
}

function runSync(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr?.toString().trim() ?? r.error}`);
}

function makeNamespace(): string {
  const name = `bench-${process.pid}-${nsCounter++}`;
  runSync('ip', ['netns', 'add', name]);
  namespaces.add(name);
  runSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  // Thousands of sequential connections from one client: reuse TIME_WAIT ports as Linux may.
  runSync('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
  // Room for 10,000 simultaneous connections beside the TIME-WAITs of earlier figures.
  runSync('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=10000 65000']);
  return name;
}

function deleteNamespace(name: string): void {
  spawnSync('ip', ['netns', 'del', name], { timeout: 30_000 });
  namespaces.delete(name);
}

/** A long-running process in a namespace (ip netns exec execs it: the PID is its own). */
class Server {
  out = '';
  readonly child: ChildProcess;
  constructor(ns: string, cmd: string, args: string[]) {
    this.child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.child);
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.on('close', () => children.delete(this.child));
  }
  get pid(): number {
    return this.child.pid!;
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<boolean> {
    const start = Date.now();
    while (Date.now() - start < timeoutMs) {
      if (pattern.test(this.out)) return true;
      if (!this.alive) return false;
      await sleep(50);
    }
    return false;
  }
  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise<void>((r) => this.child.once('close', () => r()));
    process.kill(this.pid, 'SIGTERM');
    const timer = setTimeout(() => this.alive && process.kill(this.pid, 'SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

function cleanup(): void {
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  for (const ns of [...namespaces]) deleteNamespace(ns);
}

process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
process.on('SIGTERM', () => {
  cleanup();
  process.exit(143);
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------
// /proc readings

function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

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

function kv(out: string, key: string): number {
  const m = new RegExp(`\\b${key}=([^\\s]+)`).exec(out);
  return m ? Number(m[1]) : NaN;
}

function tcpcli(ns: string, args: string[], timeoutS = CLIENT_TIMEOUT_S): Promise<Result> {
  return run('ip', ['netns', 'exec', ns, path.join(PEERS_BIN, 'tcpcli'), ...args], (timeoutS + 10) * 1000, {
    TCPCLI_TIMEOUT: String(timeoutS),
  });
}

const tail = (out: string): string => out.trim().split('\n').pop() ?? '';

/** A target up and idle in its namespace(s), measured one figure at a time. */
interface Target {
  result: TargetResult;
  /** Namespace the clients run in, and the address they talk to. */
  clientNs: string;
  host: string;
  /** The stack's process, for CPU time and resident memory. */
  pid: number;
  /** The source on port 19 stops after BULK bytes (else stack -> host bulk is n/a). */
  canPull: boolean;
  pullBroken: boolean;
  alive(): boolean;
  stop(): Promise<void>;
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

/** Does TCP answer on the echo port? Then warm up, the same for every target. */
async function probeAndWarmUp(t: Target): Promise<void> {
  const probe = await tcpcli(t.clientNs, ['rr', t.host, '7', '10', '64'], 5);
  if (!/RESULT mode=rr/.test(probe.out)) {
    t.result.tcpUnavailable = 'TCP not available';
    return;
  }
  // A JavaScript stack reaches full speed only once V8 has optimized its hot paths and the
  // heap has grown (the first 256 MiB push into a fresh tapstack runs at about half speed).
  await tcpcli(t.clientNs, ['rr', t.host, '7', '2000', '64']);
  await tcpcli(t.clientNs, ['push', t.host, '9', String(Math.max(BULK, 256 * 1024 * 1024))]);
  if (t.canPull) await tcpcli(t.clientNs, ['pull', t.host, '19'], 60);
}

// ---------------------------------------------------------------------------------------
// targets: each started in namespaces of its own; null and a reason when it cannot start

function tapNamespace(): string {
  const ns = makeNamespace();
  runSync('ip', ['-n', ns, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap']);
  runSync('ip', ['-n', ns, 'addr', 'add', '10.0.0.1/24', 'dev', 'tap0']);
  runSync('ip', ['-n', ns, 'link', 'set', 'tap0', 'up']);
  return ns;
}

function makeTarget(result: TargetResult, server: Server, clientNs: string, host: string, canPull: boolean, namespacesToDelete: string[]): Target {
  return {
    result,
    clientNs,
    host,
    pid: server.pid,
    canPull,
    pullBroken: false,
    alive: () => server.alive,
    stop: async () => {
      await server.stop();
      for (const ns of namespacesToDelete) deleteNamespace(ns);
    },
  };
}

async function startTapstack(r: TargetResult, bin = TAPSTACK): Promise<Target | null> {
  const help = spawnSync(bin, ['--help'], { timeout: 30_000 }).stdout?.toString() ?? '';
  const chargenBytes = help.includes('--chargen-bytes');
  if (!chargenBytes) note(r, 'pull', 'n/a: chargen does not stop after BULK bytes (no --chargen-bytes)');
  const ns = makeNamespace();
  const args = ['--tap', 'tap0', '--ip', '10.0.0.2/24', '--host-ip', '10.0.0.1/24', ...TAPSTACK_ARGS];
  if (chargenBytes) args.push('--chargen-bytes', String(BULK));
  const server = new Server(ns, bin, args);
  const t = makeTarget(r, server, ns, '10.0.0.2', chargenBytes, [ns]);
  if (!(await server.waitFor(/^tapstack up .*$/m, 30_000))) {
    r.unavailable = `did not start: ${tail(server.out)}`;
    await t.stop();
    return null;
  }
  log(/^tapstack up .*$/m.exec(server.out)![0]);
  return t;
}

async function startLwip(r: TargetResult, variant: 'tuned' | 'deb'): Promise<Target | null> {
  const bin = path.join(PEERS_BIN, `lwip_tap_${variant}`);
  if (!fs.existsSync(bin)) {
    r.unavailable = `${bin} not built`;
    return null;
  }
  const ns = tapNamespace();
  const server = new Server(ns, bin, ['tap0', '10.0.0.2', String(BULK)]);
  const t = makeTarget(r, server, ns, '10.0.0.2', true, [ns]);
  if (!(await server.waitFor(/ready/, 10_000))) {
    r.unavailable = `did not start: ${tail(server.out)}`;
    await t.stop();
    return null;
  }
  return t;
}

async function startKernel(r: TargetResult): Promise<Target | null> {
  const client = makeNamespace();
  const serverNs = makeNamespace();
  const a = `bva${process.pid % 100000}`;
  const b = `bvb${process.pid % 100000}`;
  runSync('ip', ['link', 'add', a, 'netns', client, 'type', 'veth', 'peer', 'name', b, 'netns', serverNs]);
  runSync('ip', ['-n', client, 'addr', 'add', '10.0.1.1/24', 'dev', a]);
  runSync('ip', ['-n', serverNs, 'addr', 'add', '10.0.1.2/24', 'dev', b]);
  runSync('ip', ['-n', client, 'link', 'set', a, 'up']);
  runSync('ip', ['-n', serverNs, 'link', 'set', b, 'up']);
  const server = new Server(serverNs, path.join(PEERS_BIN, 'ksrv'), ['10.0.1.2', String(BULK)]);
  const t = makeTarget(r, server, client, '10.0.1.2', true, [client, serverNs]);
  if (!(await server.waitFor(/ready/, 10_000))) {
    r.unavailable = `ksrv did not start: ${tail(server.out)}`;
    await t.stop();
    return null;
  }
  note(r, 'cpu', 'ksrv process only: the kernel charges most receive work to the sender');
  return t;
}

// ---------------------------------------------------------------------------------------
// peers

function buildPeers(): string | null {
  if (!fs.existsSync(path.join(PEERS_SRC, 'Makefile'))) {
    return `the peers are missing (${PEERS_SRC} not found): only tapstack is measured, without the C clients' TCP figures`;
  }
  log(`building the peers: make -C ${PEERS_SRC} B=${PEERS_BIN} all`);
  const r = spawnSync('make', ['-C', PEERS_SRC, `B=${PEERS_BIN}`, 'all'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  if (r.status !== 0) {
    const err = `${r.stdout?.toString() ?? ''}${r.stderr?.toString() ?? ''}`.trim().split('\n').slice(-5).join('\n');
    return `building the peers failed (needs liblwip-dev build-essential pkg-config and deb-src for lwIP: bash scripts/install-deps.sh):\n${err}`;
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// the table

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function fmt(v: number, decimals: number): string {
  return v.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

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

function machine(): string {
  const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  return `${os.cpus().length} CPUs (nproc ${spawnSync('nproc').stdout?.toString().trim()}), ${cpu}, Linux ${os.release()}, Node ${process.version}`;
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: run as root (it creates network namespaces and TAP devices)\n');
    return 2;
  }
  if (!fs.existsSync('/dev/net/tun')) {
    process.stderr.write('bench: /dev/net/tun is missing: no TUN/TAP support here\n');
    return 2;
  }
  const args = process.argv.slice(2);
  let outFile = process.env.BENCH_OUT;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') outFile = args[++i];
    else if (args[i] === '--write') outFile = path.join(ROOT, 'bench/results', `${new Date().toISOString().slice(0, 10)}.md`);
    else {
      process.stderr.write(`bench: unknown argument '${args[i]}' (use --out FILE or --write)\n`);
      return 2;
    }
  }
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
    if (name === 'tapstack') t = await startTapstack(r);
    else if (name === 'tapstack-base') {
      if (TAPSTACK_BASE === null) r.unavailable = 'TAPSTACK_BASE is not set';
      else t = await startTapstack(r, TAPSTACK_BASE);
    } else if (peersProblem) r.unavailable = 'peers not built';
    else if (name === 'lwip-tuned' || name === 'lwip-deb') t = await startLwip(r, name === 'lwip-tuned' ? 'tuned' : 'deb');
    else if (name === 'kernel') t = await startKernel(r);
    else {
      process.stderr.write(`bench: unknown target '${name}' (tapstack, tapstack-base, lwip-tuned, lwip-deb, kernel)\n`);
      for (const started of targets) await started.stop();
      return 2;
    }
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
        await probeAndWarmUp(t);
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
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    const env = ['RUNS', 'BULK', 'CONNS', 'PING_COUNT', 'TARGETS', 'TAPSTACK_ARGS', 'TAPSTACK_BASE'].filter((k) => process.env[k]).map((k) => `${k}=${JSON.stringify(process.env[k])}`);
    const command = [...env, 'npm run bench', ...(args.length ? ['--', ...args] : [])].join(' ');
    fs.writeFileSync(outFile, `# tapstack benchmark\n\nCommand (as root): \`${command}\`\n\n${body}\nEvery run:\n\n${rawValues(results)}\n`);
    log(`written to ${outFile}`);
  }
  return 0;
}

main().then(
  (code) => {
    cleanup();
    process.exit(code);
  },
  (err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    cleanup();
    process.exit(1);
  },
);
