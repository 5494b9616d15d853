// The targets of the side-by-side benchmarks (bench/run.ts, bench/loss.ts), each started in
// network namespaces of its own: tapstack and lwIP on a TAP, the kernel over a veth pair; the
// C peers of ../shared/peers built and driven (tcpcli). Every namespace is made here (prefix
// bench-) and deleted afterwards; every process started here is tracked and ended by PID;
// every command is bounded in time.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const PEERS_SRC = process.env.PEERS_DIR ?? path.resolve(ROOT, '../shared/peers');
export const PEERS_BIN = process.env.PEERS_BIN ?? '/tmp/tapstack-peers';
export const TAPSTACK = path.join(ROOT, 'bin/tapstack');
const CLK_TCK = 100; // Linux USER_HZ for /proc/PID/stat

export function positiveInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    process.stderr.write(`bench: ${name} must be a positive integer, not '${v}'\n`);
    process.exit(2);
  }
  return n;
}

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------
// processes and namespaces (all tracked, all cleaned up)

const namespaces = new Set<string>();
const children = new Set<ChildProcess>();
let nsCounter = 0;

export interface Result {
  code: number | null;
  out: string;
}

/** Runs a command to completion with a hard timeout (input, if given, on its stdin); never rejects. */
export function run(cmd: string, args: string[], timeoutMs = 30_000, env?: NodeJS.ProcessEnv, input?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
    children.add(child);
    child.stdin?.on('error', () => {}); // a command that exits before reading: EPIPE
    child.stdin?.end(input);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
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

export function runSync(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr?.toString().trim() ?? r.error}`);
  return r.stdout?.toString() ?? '';
}

export function makeNamespace(): string {
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

export function deleteNamespace(name: string): void {
  spawnSync('ip', ['netns', 'del', name], { timeout: 30_000 });
  namespaces.delete(name);
}

/** A long-running process in a namespace (ip netns exec execs it: the PID is its own). */
export class Server {
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

/** Ends every process started here (by PID) and deletes every namespace made here. */
export function cleanup(): void {
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

// ---------------------------------------------------------------------------------------
// /proc readings

export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------------------------------
// the client

export function kv(out: string, key: string): number {
  const m = new RegExp(`\\b${key}=([^\\s]+)`).exec(out);
  return m ? Number(m[1]) : NaN;
}

/** tcpcli in a namespace; it gives up after timeoutS (printing RESULT error=timeout). */
export function tcpcli(ns: string, args: string[], timeoutS = 120): Promise<Result> {
  return run('ip', ['netns', 'exec', ns, path.join(PEERS_BIN, 'tcpcli'), ...args], (timeoutS + 10) * 1000, {
    TCPCLI_TIMEOUT: String(timeoutS),
  });
}

export const tail = (out: string): string => out.trim().split('\n').pop() ?? '';

// ---------------------------------------------------------------------------------------
// targets: each started in namespaces of its own; a reason instead when it cannot start

/** A target up and idle in its namespace(s). */
export interface Running {
  /** Namespace the clients run in, and the address they talk to. */
  clientNs: string;
  host: string;
  /** The stack's process, for CPU time and resident memory. */
  pid: number;
  /** The source on port 19 stops after its bytes (else stack -> host bulk is n/a). */
  canPull: boolean;
  /** The network devices the target's frames cross (the TAP, or both veth ends). */
  devices: { ns: string; dev: string }[];
  alive(): boolean;
  stop(): Promise<void>;
}

function tapNamespace(): string {
  const ns = makeNamespace();
  runSync('ip', ['-n', ns, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap']);
  runSync('ip', ['-n', ns, 'addr', 'add', '10.0.0.1/24', 'dev', 'tap0']);
  runSync('ip', ['-n', ns, 'link', 'set', 'tap0', 'up']);
  return ns;
}

function running(server: Server, clientNs: string, host: string, canPull: boolean, devices: Running['devices'], namespacesToDelete: string[]): Running {
  return {
    clientNs,
    host,
    pid: server.pid,
    canPull,
    devices,
    alive: () => server.alive,
    stop: async () => {
      await server.stop();
      for (const ns of namespacesToDelete) deleteNamespace(ns);
    },
  };
}

/** ./bin/tapstack (or bin) on a TAP; chargen (port 19) stops after sourceBytes. */
export async function startTapstack(sourceBytes: number, extraArgs: string[], bin = TAPSTACK): Promise<Running | string> {
  const help = spawnSync(bin, ['--help'], { timeout: 30_000 }).stdout?.toString() ?? '';
  const chargenBytes = help.includes('--chargen-bytes');
  const ns = makeNamespace();
  const args = ['--tap', 'tap0', '--ip', '10.0.0.2/24', '--host-ip', '10.0.0.1/24', ...extraArgs];
  if (chargenBytes) args.push('--chargen-bytes', String(sourceBytes));
  const server = new Server(ns, bin, args);
  const t = running(server, ns, '10.0.0.2', chargenBytes, [{ ns, dev: 'tap0' }], [ns]);
  if (!(await server.waitFor(/^tapstack up .*$/m, 30_000))) {
    const why = `did not start: ${tail(server.out)}`;
    await t.stop();
    return why;
  }
  log(/^tapstack up .*$/m.exec(server.out)![0]);
  return t;
}

/** lwIP 2.1.3 on a TAP (../shared/peers), tuned or Debian's build. */
export async function startLwip(sourceBytes: number, variant: 'tuned' | 'deb'): Promise<Running | string> {
  const bin = path.join(PEERS_BIN, `lwip_tap_${variant}`);
  if (!fs.existsSync(bin)) return `${bin} not built`;
  const ns = tapNamespace();
  const server = new Server(ns, bin, ['tap0', '10.0.0.2', String(sourceBytes)]);
  const t = running(server, ns, '10.0.0.2', true, [{ ns, dev: 'tap0' }], [ns]);
  if (!(await server.waitFor(/ready/, 10_000))) {
    const why = `did not start: ${tail(server.out)}`;
    await t.stop();
    return why;
  }
  return t;
}

/** The kernel's own TCP (ksrv) over a veth pair between two namespaces. */
export async function startKernel(sourceBytes: number): Promise<Running | string> {
  const client = makeNamespace();
  const serverNs = makeNamespace();
  const a = `bva${process.pid % 100000}`;
  const b = `bvb${process.pid % 100000}`;
  runSync('ip', ['link', 'add', a, 'netns', client, 'type', 'veth', 'peer', 'name', b, 'netns', serverNs]);
  runSync('ip', ['-n', client, 'addr', 'add', '10.0.1.1/24', 'dev', a]);
  runSync('ip', ['-n', serverNs, 'addr', 'add', '10.0.1.2/24', 'dev', b]);
  runSync('ip', ['-n', client, 'link', 'set', a, 'up']);
  runSync('ip', ['-n', serverNs, 'link', 'set', b, 'up']);
  const server = new Server(serverNs, path.join(PEERS_BIN, 'ksrv'), ['10.0.1.2', String(sourceBytes)]);
  const t = running(server, client, '10.0.1.2', true, [{ ns: client, dev: a }, { ns: serverNs, dev: b }], [client, serverNs]);
  if (!(await server.waitFor(/ready/, 10_000))) {
    const why = `ksrv did not start: ${tail(server.out)}`;
    await t.stop();
    return why;
  }
  return t;
}

/**
 * Does TCP answer on the echo port? Then warm up, the same for every target. A JavaScript
 * stack reaches full speed only once V8 has optimized its hot paths and the heap has grown
 * (the first 256 MiB push into a fresh tapstack runs at about half speed).
 */
export async function probeAndWarmUp(t: Running, pushBytes: number): Promise<boolean> {
  const probe = await tcpcli(t.clientNs, ['rr', t.host, '7', '10', '64'], 5);
  if (!/RESULT mode=rr/.test(probe.out)) return false;
  await tcpcli(t.clientNs, ['rr', t.host, '7', '2000', '64']);
  await tcpcli(t.clientNs, ['push', t.host, '9', String(pushBytes)]);
  if (t.canPull) await tcpcli(t.clientNs, ['pull', t.host, '19'], 60);
  return true;
}

// ---------------------------------------------------------------------------------------
// peers

/** Builds ../shared/peers into PEERS_BIN; null, or why it could not. */
export function buildPeers(): string | null {
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
// reporting

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export function fmt(v: number, decimals: number): string {
  return v.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

export function machine(): string {
  const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  return `${os.cpus().length} CPUs (nproc ${spawnSync('nproc').stdout?.toString().trim()}), ${cpu}, Linux ${os.release()}, Node ${process.version}`;
}

/** Root and /dev/net/tun, or why not. */
export function preflight(): string | null {
  if (process.getuid?.() !== 0) return 'run as root (it creates network namespaces and TAP devices)';
  if (!fs.existsSync('/dev/net/tun')) return '/dev/net/tun is missing: no TUN/TAP support here';
  return null;
}

/** --out FILE, or --write for bench/results/<prefix><date>.md; null (after a message) on a bad argument. */
export function outFileFromArgs(prog: string, args: string[], prefix: string): string | undefined | null {
  let outFile = process.env.BENCH_OUT;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') outFile = args[++i];
    else if (args[i] === '--write') outFile = path.join(ROOT, 'bench/results', `${prefix}${new Date().toISOString().slice(0, 10)}.md`);
    else {
      process.stderr.write(`${prog}: unknown argument '${args[i]}' (use --out FILE or --write)\n`);
      return null;
    }
  }
  return outFile;
}

/** Writes a report as markdown: a title, the command that made it (with the environment it read), the body. */
export function writeReport(outFile: string, title: string, script: string, envKeys: string[], args: string[], body: string): void {
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const env = envKeys.filter((k) => process.env[k]).map((k) => `${k}=${JSON.stringify(process.env[k])}`);
  const command = [...env, `npm run ${script}`, ...(args.length ? ['--', ...args] : [])].join(' ');
  fs.writeFileSync(outFile, `# ${title}\n\nCommand (as root): \`${command}\`\n\n${body}`);
  log(`written to ${outFile}`);
}

/** Runs a bench's main, cleans up whatever happens, and exits with its code. */
export function runMain(prog: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      cleanup();
      process.exit(code);
    },
    (err) => {
      process.stderr.write(`${prog}: ${(err as Error).stack ?? String(err)}\n`);
      cleanup();
      process.exit(1);
    },
  );
}
