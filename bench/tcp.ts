// TCP benchmark (npm run bench:tcp; needs root): in a namespace of its own, brings
// ./bin/tapstack up on a TAP and measures from the kernel's side
//   - bulk throughput host -> stack (push to discard, port 9), MB/s (10^6 bytes)
//   - bulk throughput stack -> host (pull from chargen, port 19, started with
//     --chargen-bytes N so that it closes after N bytes), MB/s; and the same through HTTP
//     (curl GET /bytes/N: Node's http module on top)
//   - 64-byte echo round trips per second (port 7, one connection, TCP_NODELAY)
//   - sequential connections per second (connect, half-close, wait for FIN, close; port 9)
// with the C tcpcli of ../shared/peers when it builds (else test/clients/tcpcli.ts, the
// same modes in Node). Every step is bounded in bytes, count and time. Runs BENCH_TCP_RUNS times and
// reports medians. BENCH_TCP_CLIENT=node uses the Node client even when the C one builds;
// PEERS_DIR and PEERS_BIN place the peers and their build as for bench/run.ts.
//
//   npm run bench:tcp                   defaults
//   BENCH_TCP_BYTES=268435456 BENCH_TCP_RUNS=3 BENCH_TCP_OFFLOAD=off npm run bench:tcp
//
// The last line printed is a JSON object with the figures (bench/run.ts reads it), and
// benchTcp() returns the same object to a caller in this process.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Namespace, withNamespace } from '../test/helpers/netns.ts';
import { parseResult, tsArgs } from '../test/helpers/tcp-ns.ts';

export interface TcpBenchOptions {
  /** Bytes per bulk transfer, each way. */
  bytes: number;
  /** Echo round trips per run. */
  roundTrips: number;
  /** Sequential connections per run. */
  connections: number;
  runs: number;
  /** Checksum and segmentation offloads on the TAP (the CLI's --offload; default on). */
  offload: boolean;
}

export interface TcpBenchResult {
  bench: 'tcp';
  client: 'c-tcpcli' | 'node-tcpcli';
  bytes: number;
  runs: number;
  offload: boolean;
  hostToStackMBps: number;
  stackToHostMBps: number;
  stackToHostHttpMBps: number;
  echoRoundTripsPerSec: number;
  connectionsPerSec: number;
  /** Every run's figures, in order. */
  samples: {
    hostToStackMBps: number[];
    stackToHostMBps: number[];
    stackToHostHttpMBps: number[];
    echoRoundTripsPerSec: number[];
    connectionsPerSec: number[];
  };
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The C peers beside the checkout, or PEERS_DIR (as bench/run.ts finds them); built into PEERS_BIN. */
const PEERS = process.env.PEERS_DIR ?? path.resolve(ROOT, '../shared/peers');
const PEERS_BUILD = process.env.PEERS_BIN ?? '/tmp/tapstack-peers';
const STEP_TIMEOUT_MS = 180_000;

/** Builds just the C tcpcli from the peers folder, if that folder is on this machine. */
function buildCTcpcli(): string | null {
  const binary = path.join(PEERS_BUILD, 'tcpcli');
  if (!existsSync(path.join(PEERS, 'Makefile'))) return null;
  const r = spawnSync('make', ['-s', '-C', PEERS, `B=${PEERS_BUILD}`, binary], { encoding: 'utf8', timeout: 120_000 });
  return r.status === 0 && existsSync(binary) ? binary : null;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function measure(ns: Namespace, client: string | null, args: string[]): Promise<Record<string, string>> {
  const r = client
    ? await ns.exec(client, args, STEP_TIMEOUT_MS)
    : await ns.exec(process.execPath, tsArgs('test/clients/tcpcli.ts', args), STEP_TIMEOUT_MS);
  const result = parseResult(r.stdout);
  if (!result || result.error || r.code !== 0) throw new Error(`tcpcli ${args.join(' ')}: exit ${r.code} ${r.stdout} ${r.stderr}`);
  return result;
}

/** curl downloads N bytes from /bytes/N; MB/s from its own timing. */
async function download(ns: Namespace, bytes: number): Promise<number> {
  const seconds = String(STEP_TIMEOUT_MS / 1000);
  const r = await ns.exec('curl', ['-sS', '--max-time', seconds, '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `http://10.0.0.2/bytes/${bytes}`], STEP_TIMEOUT_MS + 5_000);
  const [size, secs] = r.stdout.trim().split(' ').map(Number);
  if (r.code !== 0 || size !== bytes || !secs) throw new Error(`curl /bytes/${bytes}: exit ${r.code} ${r.stdout} ${r.stderr}`);
  return bytes / secs / 1e6;
}

export async function benchTcp(options: TcpBenchOptions, log: (line: string) => void = () => {}): Promise<TcpBenchResult> {
  const cClient = process.env.BENCH_TCP_CLIENT === 'node' ? null : buildCTcpcli();
  log(`client: ${cClient ?? 'test/clients/tcpcli.ts (C tcpcli did not build)'}`);
  const samples: TcpBenchResult['samples'] = {
    hostToStackMBps: [],
    stackToHostMBps: [],
    stackToHostHttpMBps: [],
    echoRoundTripsPerSec: [],
    connectionsPerSec: [],
  };
  await withNamespace(async (ns) => {
    const stack = await ns.startStack(['--tap', 'tap0', '--chargen-bytes', String(options.bytes), '--offload', options.offload ? 'on' : 'off']);
    try {
      for (let run = 1; run <= options.runs; run++) {
        const push = await measure(ns, cClient, ['push', '10.0.0.2', '9', String(options.bytes)]);
        samples.hostToStackMBps.push(Number(push.MBps));
        const pull = await measure(ns, cClient, ['pull', '10.0.0.2', '19']);
        if (Number(pull.bytes) !== options.bytes) throw new Error(`pulled ${pull.bytes} bytes, not ${options.bytes}`);
        samples.stackToHostMBps.push(Number(pull.MBps));
        samples.stackToHostHttpMBps.push(await download(ns, options.bytes));
        const rr = await measure(ns, cClient, ['rr', '10.0.0.2', '7', String(options.roundTrips), '64']);
        samples.echoRoundTripsPerSec.push(Number(rr.rtps));
        const cr = await measure(ns, cClient, ['cr', '10.0.0.2', '9', String(options.connections)]);
        if (Number(cr.fails) > 0) throw new Error(`${cr.fails} of ${options.connections} connections failed`);
        samples.connectionsPerSec.push(Number(cr.cps));
        log(
          `run ${run}: host->stack ${push.MBps} MB/s, stack->host ${pull.MBps} MB/s (HTTP ${samples.stackToHostHttpMBps.at(-1)!.toFixed(1)}), ` +
            `echo ${rr.rtps} rt/s, connections ${cr.cps}/s`,
        );
      }
    } finally {
      await stack.stop();
    }
  }, 'bench');
  return {
    bench: 'tcp',
    client: cClient ? 'c-tcpcli' : 'node-tcpcli',
    bytes: options.bytes,
    runs: options.runs,
    offload: options.offload,
    hostToStackMBps: median(samples.hostToStackMBps),
    stackToHostMBps: median(samples.stackToHostMBps),
    stackToHostHttpMBps: median(samples.stackToHostHttpMBps),
    echoRoundTripsPerSec: median(samples.echoRoundTripsPerSec),
    connectionsPerSec: median(samples.connectionsPerSec),
    samples,
  };
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0 || !existsSync('/dev/net/tun')) {
    process.stderr.write('bench:tcp needs root and /dev/net/tun (it makes a namespace with a TAP)\n');
    return 1;
  }
  const env = (name: string, fallback: number): number => {
    const v = Number(process.env[name] ?? fallback);
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer`);
    return v;
  };
  const options: TcpBenchOptions = {
    bytes: env('BENCH_TCP_BYTES', 256 * 1024 * 1024),
    roundTrips: env('BENCH_TCP_ROUND_TRIPS', 20_000),
    connections: env('BENCH_TCP_CONNECTIONS', 2_000),
    runs: env('BENCH_TCP_RUNS', 3),
    offload: process.env.BENCH_TCP_OFFLOAD !== 'off',
  };
  const result = await benchTcp(options, (line) => process.stdout.write(`bench:tcp ${line}\n`));
  process.stdout.write(
    `bench:tcp medians of ${result.runs} (offload ${result.offload ? 'on' : 'off'}): host->stack ${result.hostToStackMBps.toFixed(1)} MB/s, ` +
      `stack->host ${result.stackToHostMBps.toFixed(1)} MB/s (HTTP ${result.stackToHostHttpMBps.toFixed(1)}), 64-byte echo ${Math.round(result.echoRoundTripsPerSec)} round trips/s, ` +
      `${Math.round(result.connectionsPerSec)} connections/s\n`,
  );
  process.stdout.write(JSON.stringify(result) + '\n');
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`bench:tcp: ${err.message}\n`);
      process.exit(1);
    },
  );
}
