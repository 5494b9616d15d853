// Connection benchmark (npm run bench:conn; needs root): in a namespace of its own, brings
// ./bin/tapstack up on a TAP and measures from the kernel's side, with the C tcpcli of
// ../shared/peers:
//   - sequential connections per second (tcpcli cr: connect, half-close, wait for the
//     stack's FIN, close), BENCH_CONN_COUNT per run, BENCH_CONN_RUNS runs, on port 7
//     (echo) and port 9 (discard); medians
//   - BENCH_CONN_CONC simultaneous connections to echo (tcpcli conc: all opened, then one
//     byte echoed on each, then all closed), and the stack's resident memory (VmRSS) at
//     idle and at its peak meanwhile
// Every step is bounded in count and time. With BENCH_CONN_CPU_PROF=DIR the stack runs
// under node --cpu-prof and writes its profile to DIR when it stops.
//
//   npm run bench:conn
//   BENCH_CONN_RUNS=7 BENCH_CONN_COUNT=5000 BENCH_CONN_CONC=10000 npm run bench:conn
//
// The last line printed is a JSON object with the figures.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Namespace, StackProcess, TAPSTACK, withNamespace } from '../test/helpers/netns.ts';
import { parseResult, tsArgs } from '../test/helpers/tcp-ns.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PEERS = process.env.PEERS_DIR ?? path.resolve(ROOT, '../shared/peers');
const PEERS_BUILD = process.env.PEERS_BIN ?? '/tmp/tapstack-peers';
const STEP_TIMEOUT_S = 120;

function env(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer`);
  return v;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length === 0 ? NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** VmRSS of a process in KiB (0 when it is gone). */
export function residentKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** User and system CPU seconds a process has used (/proc/PID/stat, USER_HZ = 100). */
export function cpuSeconds(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
  } catch {
    return { user: 0, system: 0 };
  }
}

function buildTcpcli(): string {
  const binary = path.join(PEERS_BUILD, 'tcpcli');
  const r = spawnSync('make', ['-s', '-C', PEERS, `B=${PEERS_BUILD}`, binary], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0 || !existsSync(binary)) throw new Error(`cannot build tcpcli from ${PEERS}: ${r.stderr}`);
  return binary;
}

async function tcpcli(ns: Namespace, client: string, args: string[]): Promise<Record<string, string>> {
  // conc raises its own descriptor limit to N + 64: the hard limit (ulimit -Hn) must allow it.
  const r = await ns.exec('env', [`TCPCLI_TIMEOUT=${STEP_TIMEOUT_S}`, client, ...args], (STEP_TIMEOUT_S + 10) * 1000);
  const result = parseResult(r.stdout);
  if (!result || result.error || r.code !== 0) throw new Error(`tcpcli ${args.join(' ')}: exit ${r.code} ${r.stdout} ${r.stderr}`);
  return result;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<number> {
  if (process.getuid?.() !== 0 || !existsSync('/dev/net/tun')) {
    process.stderr.write('bench:conn needs root and /dev/net/tun (it makes a namespace with a TAP)\n');
    return 1;
  }
  const runs = env('BENCH_CONN_RUNS', 5);
  const count = env('BENCH_CONN_COUNT', 5000);
  const conc = env('BENCH_CONN_CONC', 10_000);
  const profileDir = process.env.BENCH_CONN_CPU_PROF;
  const client = buildTcpcli();
  const log = (line: string): void => void process.stdout.write(`bench:conn ${line}\n`);
  const samples: Record<'echo' | 'discard', number[]> = { echo: [], discard: [] };
  /** Stack CPU microseconds per connection (user + system), per run. */
  const cpuSamples: Record<'echo' | 'discard', number[]> = { echo: [], discard: [] };
  /** The system (kernel) part of it: writing frames to the TAP runs the kernel's side of TCP. */
  const systemSamples: Record<'echo' | 'discard', number[]> = { echo: [], discard: [] };
  const result: Record<string, unknown> = { bench: 'conn', runs, count, conc };
  await withNamespace(async (ns) => {
    // The host's side of thousands of connections: a wide port range, TIME-WAIT ports reused.
    await ns.exec('sysctl', ['-qw', 'net.ipv4.ip_local_port_range=1024 65535']);
    await ns.exec('sysctl', ['-qw', 'net.ipv4.tcp_tw_reuse=1']);
    // Node refuses --cpu-prof in NODE_OPTIONS: with a profile, node runs the CLI itself (as bin/tapstack does).
    const stack = new StackProcess(
      profileDir
        ? ns.spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, ...tsArgs('src/cli.ts', ['--tap', 'tap0'])])
        : ns.spawn(TAPSTACK, ['--tap', 'tap0']),
    );
    await stack.waitFor(/^tapstack up /m, 20_000);
    const pid = stack.child.pid!;
    try {
      await tcpcli(ns, client, ['rr', '10.0.0.2', '7', '100', '64']); // warm-up
      await sleep(500);
      result.rssIdleKiB = residentKiB(pid);
      log(`resident memory at idle: ${(Number(result.rssIdleKiB) / 1024).toFixed(1)} MiB`);
      if (conc > 0) {
        let peak = residentKiB(pid);
        const sampler = setInterval(() => (peak = Math.max(peak, residentKiB(pid))), 50);
        const c = await tcpcli(ns, client, ['conc', '10.0.0.2', '7', String(conc)]);
        clearInterval(sampler);
        result.concOpened = Number(c.opened);
        result.concEchoed = Number(c.echoed);
        result.rssConcKiB = peak;
        log(
          `${conc} simultaneous: opened ${c.opened}, echoed ${c.echoed}, bad ${c.bad}, connect ${c.connect_secs} s; ` +
            `resident memory peak ${(peak / 1024).toFixed(1)} MiB (${(((peak - Number(result.rssIdleKiB)) * 1024) / conc).toFixed(0)} bytes per connection above idle)`,
        );
      }
      for (let run = 1; run <= runs; run++) {
        for (const [name, port] of [['echo', '7'], ['discard', '9']] as const) {
          const before = cpuSeconds(pid);
          const r = await tcpcli(ns, client, ['cr', '10.0.0.2', port, String(count)]);
          const after = cpuSeconds(pid);
          if (Number(r.fails) > 0) throw new Error(`${r.fails} of ${count} connections failed`);
          samples[name].push(Number(r.cps));
          cpuSamples[name].push(Math.round(((after.user + after.system - before.user - before.system) * 1e6) / count));
          systemSamples[name].push(Math.round(((after.system - before.system) * 1e6) / count));
        }
        log(
          `run ${run}: echo ${samples.echo.at(-1)} conn/s (${cpuSamples.echo.at(-1)} µs stack CPU each, ${systemSamples.echo.at(-1)} of it system), ` +
            `discard ${samples.discard.at(-1)} conn/s (${cpuSamples.discard.at(-1)} µs, ${systemSamples.discard.at(-1)} system)`,
        );
      }
    } finally {
      await stack.stop();
    }
  }, 'bconn');
  result.echoConnectionsPerSec = median(samples.echo);
  result.discardConnectionsPerSec = median(samples.discard);
  result.echoCpuMicrosPerConnection = median(cpuSamples.echo);
  result.discardCpuMicrosPerConnection = median(cpuSamples.discard);
  result.echoSystemMicrosPerConnection = median(systemSamples.echo);
  result.discardSystemMicrosPerConnection = median(systemSamples.discard);
  result.samples = samples;
  result.cpuSamples = cpuSamples;
  result.systemSamples = systemSamples;
  log(
    `medians of ${runs}: echo ${result.echoConnectionsPerSec} conn/s (${result.echoCpuMicrosPerConnection} µs stack CPU each, ${result.echoSystemMicrosPerConnection} system), ` +
      `discard ${result.discardConnectionsPerSec} conn/s (${result.discardCpuMicrosPerConnection} µs, ${result.discardSystemMicrosPerConnection} system)`,
  );
  process.stdout.write(JSON.stringify(result) + '\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench:conn: ${err.message}\n`);
    process.exit(1);
  },
);
