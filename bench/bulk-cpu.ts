// Bulk transfer cost (needs root): in a namespace of its own, ./bin/tapstack on a TAP and the
// C tcpcli of ../shared/peers push N bytes to discard (port 9) and pull N bytes from chargen
// (port 19), RUNS times each. For each direction it prints MB/s and the stack's CPU seconds
// per GiB (utime + stime deltas of /proc/PID/stat over the transfer), medians over the runs.
// BULK_PROFILE=DIR also writes a V8 CPU profile of the stack process there (node --cpu-prof).
//
//   BULK_BYTES=268435456 BULK_RUNS=5 BULK_OFFLOAD=on npx tsx bench/bulk-cpu.ts
//   BULK_PROFILE=/tmp/prof BULK_ONLY=push npx tsx bench/bulk-cpu.ts
//   BULK_ONLY=rr npx tsx bench/bulk-cpu.ts     64-byte echo round trips instead

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, StackProcess, withNamespace } from '../test/helpers/netns.ts';
import { parseResult } from '../test/helpers/tcp-ns.ts';

const BYTES = Number(process.env.BULK_BYTES ?? 256 * 1024 * 1024);
const RUNS = Number(process.env.BULK_RUNS ?? 3);
const OFFLOAD = process.env.BULK_OFFLOAD ?? 'on';
const ONLY = process.env.BULK_ONLY ?? '';
const PROFILE = process.env.BULK_PROFILE ?? '';
const PEERS = process.env.PEERS_DIR ?? path.resolve(import.meta.dirname, '../../shared/peers');
const PEERS_BUILD = process.env.PEERS_BIN ?? '/tmp/tapstack-peers';
const CLK_TCK = 100; // Linux USER_HZ
const GIB = 1024 ** 3;

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const tcpcli = path.join(PEERS_BUILD, 'tcpcli');
  const made = spawnSync('make', ['-s', '-C', PEERS, `B=${PEERS_BUILD}`, tcpcli], { encoding: 'utf8', timeout: 120_000 });
  if (made.status !== 0) throw new Error(`building tcpcli: ${made.stderr}`);
  if (PROFILE) fs.mkdirSync(PROFILE, { recursive: true });
  const figures: Record<string, { mbps: number[]; cpu: number[] }> = { push: { mbps: [], cpu: [] }, pull: { mbps: [], cpu: [] } };
  const roundTrips: number[] = [];
  await withNamespace(async (ns) => {
    const args = ['--tap', 'tap0', '--chargen-bytes', String(BYTES), '--offload', OFFLOAD, '--stats-on-exit'];
    let stack: StackProcess;
    if (PROFILE) {
      // As bin/tapstack does, with the profiler on (node refuses --cpu-prof in NODE_OPTIONS).
      const loader = `file://${path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')}`;
      stack = new StackProcess(ns.spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${PROFILE}`, '--import', loader, path.join(ROOT, 'src/cli.ts'), ...args]));
      await stack.waitFor(/^tapstack up /m, 20_000);
    } else {
      stack = await ns.startStack(args);
    }
    const pid = stack.child.pid!;
    try {
      for (let run = 1; run <= RUNS; run++) {
        if (ONLY === 'rr') {
          // 64-byte echo round trips (TCP_NODELAY), to check the bulk changes cost latency nothing.
          const r = await ns.exec(tcpcli, ['rr', '10.0.0.2', '7', '20000', '64'], 180_000);
          const result = parseResult(r.stdout);
          if (!result || r.code !== 0) throw new Error(`tcpcli rr: ${r.stdout} ${r.stderr}`);
          roundTrips.push(Number(result.rtps));
          console.log(`run ${run} rr: ${result.rtps} round trips/s`);
          continue;
        }
        for (const mode of ['push', 'pull'] as const) {
          if (ONLY && ONLY !== mode) continue;
          const args = mode === 'push' ? ['push', '10.0.0.2', '9', String(BYTES)] : ['pull', '10.0.0.2', '19'];
          const c0 = cpuSeconds(pid);
          const r = await ns.exec(tcpcli, args, 180_000);
          const c1 = cpuSeconds(pid);
          const result = parseResult(r.stdout);
          if (!result || r.code !== 0) throw new Error(`tcpcli ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
          const cpu = (c1 - c0) / (BYTES / GIB);
          figures[mode]!.mbps.push(Number(result.MBps));
          figures[mode]!.cpu.push(cpu);
          console.log(`run ${run} ${mode}: ${result.MBps} MB/s, stack CPU ${cpu.toFixed(2)} s/GiB`);
        }
      }
    } finally {
      const stats = await stack.stop();
      if (stats.code !== 0) console.log(`stack exit ${stats.code} ${stats.signal}: ${stack.stderr}`);
      if (process.env.BULK_STATS) console.log(stack.stdout);
    }
  }, 'bulk');
  if (roundTrips.length > 0) console.log(`rr (offload ${OFFLOAD}, ${roundTrips.length} runs of 20000): median ${median(roundTrips).toFixed(0)} round trips/s`);
  for (const [mode, f] of Object.entries(figures)) {
    if (f.mbps.length === 0) continue;
    console.log(`${mode} (offload ${OFFLOAD}, ${BYTES} bytes, ${f.mbps.length} runs): median ${median(f.mbps).toFixed(1)} MB/s, ${median(f.cpu).toFixed(2)} s/GiB`);
  }
}

await main();
