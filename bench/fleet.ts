// npm run bench:fleet: what a fleet costs and how it answers (issue 14 item 2), as root, on a
// TAP in a namespace made here (prefix bench-, deleted afterwards):
//
//   - resident memory per device at 1,000 and 10,000 devices: the fleet process's VmRSS
//     (/proc/PID/status) 2 s after it is up, minus that of an empty process (node with the
//     same tsx loader and malloc settings as bin/tapstack, doing nothing), divided by the count;
//   - start-up: spawn to the `tapstack up fleet` line (wall), and the fleet's own `in N ms`;
//   - ping (3 in 20 ms), HTTP GET /bytes/100 (curl) and one TCP echo (socat, port 7) from the
//     kernel to a seeded random sample of 100 devices, medians and 90th percentiles;
//   - the same for one stack per process: K processes of bin/tapstack, each on a TAP of its
//     own, all ports of one Linux bridge that carries the kernel's address.
//
// The kernel's neighbour table is shared by every namespace (gc_thresh3 of the main one): the
// kernel reaches only the sample (at most 150) and the K stacks, and the namespace's table is
// flushed after each (ip neigh flush). Every process started here is ended by PID; every
// command is bounded in time (a fleet must be up within 60 s).
//
//   npm run bench:fleet                      1,000 and 10,000 devices, 20 single stacks
//   npm run bench:fleet -- 1000 5000         other fleet sizes
//   npm run bench:fleet -- --stacks 10 --sample 50 --seed 7
//   npm run bench:fleet -- --write           also bench/results/fleet-<date>.md and .json (or --out FILE.md)
//   npm run bench:fleet -- --memory [COUNT...]   no TAP, no root: the fleet in this process on an
//                                            in-memory link (RSS after a GC, minus before, per device)

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createFleet } from '../src/fleet/fleet.ts';
import type { ServiceName } from '../src/services/index.ts';
import { formatIpv4, parseIpv4 } from '../src/ipv4/address.ts';
import { createLinkPair } from '../src/link/memory.ts';
import { RealClock } from '../src/util/clock.ts';
import { seededRandom } from '../src/util/random.ts';
import { deleteNamespace, log, machine, makeNamespace, median, outFileFromArgs, preflight, ROOT, rssMiB, run, runMain, runSync, Server, sleep, TAPSTACK, tail, writeReport } from './targets.ts';

const UP_TIMEOUT_MS = 60_000;
const SETTLE_MS = 2_000;
const SERVICES = 'echo,http';
const FIRST_DEVICE = '10.0.1.1/16';
const HOST_IP = '10.0.0.1/16';
/** Above this the kernel would hold too many neighbours at once (shared by every namespace). */
const MAX_REACHED = 150;

interface Options {
  counts: number[];
  stacks: number;
  sample: number;
  seed: number;
  memory: boolean;
  rest: string[];
}

function parseOptions(argv: string[]): Options | string {
  const o: Options = { counts: [], stacks: 20, sample: 100, seed: 1, memory: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const int = (min: number, max: number): number | string => {
      const v = Number(argv[++i]);
      return Number.isInteger(v) && v >= min && v <= max ? v : `${a} needs an integer ${min}..${max}`;
    };
    let v: number | string;
    if (/^\d+$/.test(a)) {
      v = Number(a);
      if (v < 1 || v > 65536) return `a fleet of ${a} devices: 1..65536`;
      o.counts.push(v);
    } else if (a === '--memory') o.memory = true;
    else if (a === '--stacks') {
      if (typeof (v = int(0, MAX_REACHED)) === 'string') return v;
      o.stacks = v;
    } else if (a === '--sample') {
      if (typeof (v = int(1, MAX_REACHED)) === 'string') return v;
      o.sample = v;
    } else if (a === '--seed') {
      if (typeof (v = int(0, 2 ** 31)) === 'string') return v;
      o.seed = v;
    } else o.rest.push(a);
  }
  if (o.counts.length === 0) o.counts = o.memory ? [1000] : [1000, 10_000];
  return o;
}

// ---------------------------------------------------------------------------------------
// in-memory: no TAP, no root

async function memoryBench(counts: number[]): Promise<number> {
  for (const n of counts) {
    (globalThis as { gc?: () => void }).gc?.();
    const base = process.memoryUsage().rss;
    const clock = new RealClock();
    const [, link] = createLinkPair(clock);
    const t0 = performance.now();
    const fleet = await createFleet({ count: n, link, clock, ip: FIRST_DEVICE, services: SERVICES.split(',') as ServiceName[], seed: 1 });
    const t1 = performance.now();
    await sleep(500);
    (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    console.log(
      `in-memory link: devices ${n} start ${(t1 - t0).toFixed(0)} ms rss/device ${((mem.rss - base) / n / 1024).toFixed(1)} KiB heap ${(mem.heapUsed / n / 1024).toFixed(1)} KiB/device`,
    );
    await fleet.close();
  }
  return 0;
}

// ---------------------------------------------------------------------------------------
// probes from the kernel's side

interface Probes {
  reached: number;
  /** First contact (the kernel resolves the device's address first; its code may still be cold). */
  pingMs: number[];
  httpMs: number[];
  /** Once more, right after every device was reached once. */
  pingAgainMs: number[];
  httpAgainMs: number[];
  /** Devices that failed, in either round. */
  pingFailed: number;
  pingLost: number;
  httpFailed: number;
  echoFailed: number;
  /** Entries in the namespace's neighbour table after the probes (flushed then). */
  neighbours: number;
}

const ECHO_PROBE = 'tapstack-bench-echo\n';

/** Average round trip of 3 pings 10 ms apart, or null if none came back; lost counts the others. */
async function pingMs(ns: string, address: string, p: Probes): Promise<number | null> {
  const ping = await run('ip', ['netns', 'exec', ns, 'ping', '-c', '3', '-i', '0.01', '-W', '1', '-q', address], 10_000);
  const received = Number(/(\d+) received/.exec(ping.out)?.[1] ?? 0);
  p.pingLost += 3 - received;
  const avg = /= [\d.]+\/([\d.]+)\//.exec(ping.out);
  return received > 0 && avg ? Number(avg[1]) : null;
}

/** curl's time_total of GET /bytes/100 (connect included), or null unless 200. */
async function httpMs(ns: string, address: string): Promise<number | null> {
  const http = await run('ip', ['netns', 'exec', ns, 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code} %{time_total}', '--max-time', '5', `http://${address}/bytes/100`], 10_000);
  const m = /^200 ([\d.]+)$/.exec(http.out.trim());
  return m ? Number(m[1]) * 1000 : null;
}

/** Ping, HTTP and TCP echo to each address in turn (one at a time: latencies unloaded), then ping and HTTP again. */
async function probe(ns: string, addresses: string[]): Promise<Probes> {
  const p: Probes = { reached: addresses.length, pingMs: [], httpMs: [], pingAgainMs: [], httpAgainMs: [], pingFailed: 0, pingLost: 0, httpFailed: 0, echoFailed: 0, neighbours: 0 };
  const pingFailed = new Set<string>();
  const httpFailed = new Set<string>();
  const record = (address: string, v: number | null, into: number[], failed: Set<string>): void => {
    if (v === null) failed.add(address);
    else into.push(v);
  };
  for (const a of addresses) {
    record(a, await pingMs(ns, a, p), p.pingMs, pingFailed);
    record(a, await httpMs(ns, a), p.httpMs, httpFailed);
    // socat half-closes after its stdin and waits (-t) for the echo to come back.
    const echo = await run('ip', ['netns', 'exec', ns, 'socat', '-t', '2', '-T', '5', '-', `TCP:${a}:7,connect-timeout=3`], 10_000, undefined, ECHO_PROBE);
    if (echo.out !== ECHO_PROBE) p.echoFailed++;
  }
  for (const a of addresses) {
    record(a, await pingMs(ns, a, p), p.pingAgainMs, pingFailed);
    record(a, await httpMs(ns, a), p.httpAgainMs, httpFailed);
  }
  p.pingFailed = pingFailed.size;
  p.httpFailed = httpFailed.size;
  p.neighbours = runSync('ip', ['-n', ns, 'neigh', 'show']).trim().split('\n').filter(Boolean).length;
  runSync('ip', ['-n', ns, 'neigh', 'flush', 'all']);
  return p;
}

/** Nearest-rank percentile (q in 0..1). */
function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** count distinct indices below n, seeded (a partial Fisher-Yates shuffle). */
function sampleIndices(n: number, count: number, seed: number): number[] {
  const random = seededRandom(seed);
  const idx = Array.from({ length: n }, (_, i) => i);
  const k = Math.min(n, count);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (n - i));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx.slice(0, k).sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------------
// processes

const kib = (pid: number): number => rssMiB(pid) * 1024;

/** Starts a process in ns and waits (bounded) for the line matching up; the time from spawn to it. */
async function startUntil(ns: string, cmd: string, args: string[], up: RegExp, timeoutMs: number): Promise<{ server: Server; ms: number; line: string }> {
  const t0 = performance.now();
  const server = new Server(ns, cmd, args);
  if (!(await server.waitFor(up, timeoutMs))) {
    const why = server.alive ? `not up within ${timeoutMs / 1000} s` : 'exited';
    await server.stop();
    throw new Error(`${path.basename(cmd)} ${args.join(' ')}: ${why}: ${tail(server.out)}`);
  }
  return { server, ms: performance.now() - t0, line: up.exec(server.out)![0] };
}

/**
 * The empty process: node with bin/tapstack's loader and malloc settings (its defaults, or
 * the environment's), idle. Its VmRSS is what every process pays before the stack; it moves by
 * several MiB from one start to the next (the loader's hooks run in a thread of their own, with
 * its own heap): the median of EMPTY_RUNS, started together.
 */
const EMPTY_RUNS = 3;

async function emptyProcessKiB(ns: string): Promise<number[]> {
  const env = ['MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_THRESHOLD_'].map((k, i) => `${k}=${process.env[k] ?? [67108864, 33554432][i]}`);
  const loader = `file://${path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')}`;
  const idle = (): ReturnType<typeof startUntil> =>
    startUntil(ns, 'env', [...env, 'node', '--import', loader, '-e', 'console.log("idle"); setInterval(() => {}, 1e6)'], /^idle$/m, 30_000);
  const started = await Promise.all(Array.from({ length: EMPTY_RUNS }, idle));
  await sleep(1_000);
  const v = started.map(({ server }) => kib(server.pid));
  await Promise.all(started.map(({ server }) => server.stop()));
  return v;
}

interface Row {
  kind: 'fleet' | 'stacks';
  devices: number;
  /** Spawn to the up line, ms (per process: the median). */
  startMs: number;
  /** The fleet's own `in N ms` (fleet only). */
  upMs: number | null;
  /** VmRSS of the process(es), KiB (per process: the median). */
  rssKiB: number;
  /** (RSS - empty) per device (fleet) or per process (stacks), KiB. */
  perDeviceKiB: number;
  sampleSeed: number | null;
  probes: Probes;
}

async function measureFleet(ns: string, n: number, tap: string, o: Options, emptyKiB: number): Promise<Row> {
  log(`fleet of ${n} on ${tap}`);
  const { server, ms, line } = await startUntil(
    ns,
    TAPSTACK,
    ['fleet', '--count', String(n), '--ip', FIRST_DEVICE, '--services', SERVICES, '--tap', tap, '--host-ip', HOST_IP, '--seed', '1'],
    /^tapstack up fleet .*$/m,
    UP_TIMEOUT_MS,
  );
  try {
    log(line);
    const m = /first \S+ (\S+) last \S+ (\S+) .* in (\d+) ms/.exec(line);
    if (!m) throw new Error(`unexpected up line: ${line}`);
    const first = parseIpv4(m[1]!)!;
    // The range from 10.0.1.1 skips only 10.0.0.1 and the /16's ends: device i is first + i.
    if (parseIpv4(m[2]!)! !== first + n - 1) throw new Error(`devices are not one run of addresses: ${line}`);
    await sleep(SETTLE_MS);
    const rss = kib(server.pid);
    const addresses = sampleIndices(n, o.sample, o.seed).map((i) => formatIpv4(first + i));
    log(`probing ${addresses.length} devices (seed ${o.seed}): ${addresses.slice(0, 5).join(' ')} ...`);
    const probes = await probe(ns, addresses);
    if (!server.alive) throw new Error(`the fleet exited: ${tail(server.out)}`);
    return { kind: 'fleet', devices: n, startMs: ms, upMs: Number(m[3]), rssKiB: rss, perDeviceKiB: (rss - emptyKiB) / n, sampleSeed: o.seed, probes };
  } finally {
    await server.stop();
  }
}

async function measureStacks(ns: string, k: number, emptyKiB: number): Promise<Row> {
  log(`${k} single stacks on bridge br0`);
  runSync('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
  runSync('ip', ['-n', ns, 'addr', 'add', HOST_IP, 'dev', 'br0']);
  runSync('ip', ['-n', ns, 'link', 'set', 'br0', 'up']);
  const servers: Server[] = [];
  const startMs: number[] = [];
  const addresses: string[] = [];
  try {
    // One at a time: each start-up measured alone, not against the others' (2 CPUs).
    for (let i = 1; i <= k; i++) {
      // A persistent TAP, a bridge port before the stack attaches to it (TUNSETIFF on an existing device).
      const tap = `tsp${i}`;
      runSync('ip', ['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      runSync('ip', ['-n', ns, 'link', 'set', tap, 'master', 'br0', 'up']);
      const address = `10.0.2.${i}`;
      const s = await startUntil(ns, TAPSTACK, ['--tap', tap, '--ip', `${address}/16`, '--no-host-config', '--services', SERVICES], /^tapstack up .*$/m, 30_000);
      servers.push(s.server);
      startMs.push(s.ms);
      addresses.push(address);
    }
    await sleep(SETTLE_MS);
    const rss = servers.map((s) => kib(s.pid));
    const probes = await probe(ns, addresses);
    const dead = servers.filter((s) => !s.alive).length;
    if (dead > 0) throw new Error(`${dead} single stacks exited`);
    return { kind: 'stacks', devices: k, startMs: median(startMs), upMs: null, rssKiB: median(rss), perDeviceKiB: median(rss.map((r) => r - emptyKiB)), sampleSeed: null, probes };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

// ---------------------------------------------------------------------------------------
// the table

function size(kibValue: number): string {
  return kibValue >= 10 * 1024 ? `${(kibValue / 1024).toFixed(1)} MiB` : `${kibValue.toFixed(1)} KiB`;
}

const ms2 = (xs: number[]): string => (xs.length === 0 ? '-' : `${median(xs).toFixed(2)}/${percentile(xs, 0.9).toFixed(2)} ms`);

function table(rows: Row[], emptySamples: number[], load: string): string {
  const head = ['', 'devices', 'start (wall)', 'up in', 'RSS', 'RSS-empty per device', 'ping median/p90', 'HTTP median/p90', 'again: ping', 'HTTP', 'failed ping/HTTP/echo of', 'neigh'];
  const body = rows.map((r) => [
    r.kind === 'fleet' ? 'fleet, one process' : 'one stack per process',
    String(r.devices),
    r.kind === 'fleet' ? `${(r.startMs / 1000).toFixed(2)} s` : `${(r.startMs / 1000).toFixed(2)} s each`,
    r.upMs === null ? '-' : `${(r.upMs / 1000).toFixed(2)} s`,
    size(r.rssKiB) + (r.kind === 'stacks' ? ' each' : ''),
    size(r.perDeviceKiB),
    ms2(r.probes.pingMs),
    ms2(r.probes.httpMs),
    ms2(r.probes.pingAgainMs),
    ms2(r.probes.httpAgainMs),
    `${r.probes.pingFailed}/${r.probes.httpFailed}/${r.probes.echoFailed} of ${r.probes.reached}` + (r.probes.pingLost > 0 ? ` (${r.probes.pingLost} pings lost)` : ''),
    String(r.probes.neighbours),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    `bench:fleet  (machine: ${machine()}; load average ${load})`,
    `empty process (node + tsx loader, idle): ${size(median(emptySamples))} RSS (median of ${emptySamples.map(size).join(', ')}); sample seed ${rows.find((r) => r.sampleSeed !== null)?.sampleSeed ?? '-'}; services ${SERVICES}`,
    line(head),
    ...body.map(line),
    '',
    'start (wall): spawn to the up line; up in: the fleet\'s own figure (createFleet to every device ready). RSS: VmRSS 2 s after up.',
    'ping: avg of 3 (-i 0.01, the first with ARP); HTTP: curl time_total of GET /bytes/100 (connect included); echo: one socat line to port 7;',
    'first contact, device by device; again: a second round over the same devices (neighbours resolved, the code warm in every process).',
    'neigh: entries in the namespace\'s neighbour table after the probes (then flushed).',
  ].join('\n');
}

const loadAverage = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');

async function tapBench(o: Options): Promise<number> {
  const why = preflight();
  if (why) {
    process.stderr.write(`bench:fleet: ${why} (or --memory for the in-memory measurement)\n`);
    return 2;
  }
  const outFile = outFileFromArgs('bench:fleet', o.rest, 'fleet-');
  if (outFile === null) return 2;
  for (const cmd of ['curl', 'socat', 'ping'])
    if ((await run('sh', ['-c', `command -v ${cmd}`])).code !== 0) {
      process.stderr.write(`bench:fleet: needs ${cmd}\n`);
      return 2;
    }
  // The npm script's --expose-gc is for --memory; the processes measured run as bin/tapstack would.
  delete process.env.NODE_OPTIONS;
  const loadBefore = loadAverage();
  const ns = makeNamespace();
  const rows: Row[] = [];
  let emptyKiB: number;
  let emptySamples: number[];
  try {
    // tsx caches what it compiles: the first start of the CLI compiles it all (about 1.5 s more).
    await run('ip', ['netns', 'exec', ns, TAPSTACK, 'fleet', '--help'], 60_000);
    emptySamples = await emptyProcessKiB(ns);
    emptyKiB = median(emptySamples);
    log(`empty process: ${emptySamples.map(size).join(', ')}`);
    for (const [i, n] of o.counts.entries()) rows.push(await measureFleet(ns, n, `tsf${i}`, o, emptyKiB));
    if (o.stacks > 0) rows.push(await measureStacks(ns, o.stacks, emptyKiB));
  } finally {
    deleteNamespace(ns);
  }
  const load = `${loadBefore} before, ${loadAverage()} after`;
  const text = table(rows, emptySamples, load);
  process.stdout.write(text + '\n');
  if (outFile !== undefined) {
    const commit = (await run('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'])).out.trim();
    const args = process.argv.slice(2);
    writeReport(outFile, 'tapstack bench:fleet (bench/fleet.ts)', 'bench:fleet', [], args, `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC at commit ${commit}.\n\n\`\`\`\n${text}\n\`\`\`\n`);
    const json = outFile.replace(/\.md$/, '') + '.json';
    fs.writeFileSync(json, JSON.stringify({ date: new Date().toISOString(), commit, machine: machine(), load, emptyKiB, emptySamples, rows }, null, 2) + '\n');
    log(`written to ${json}`);
  }
  return rows.every((r) => r.probes.pingFailed + r.probes.httpFailed + r.probes.echoFailed === 0) ? 0 : 1;
}

runMain('bench:fleet', async () => {
  const o = parseOptions(process.argv.slice(2));
  if (typeof o === 'string') {
    process.stderr.write(`bench:fleet: ${o}\n`);
    return 2;
  }
  return o.memory ? memoryBench(o.counts) : tapBench(o);
});
