// Frame I/O strategies for the TAP, measured side by side (run as root; everything happens in
// a network namespace this script creates and deletes; every load is bounded in time).
//
//   npm run bench:tap-io [-- --secs 3 --pings 20000 --runs 3 --tcp-runs 5 --only rx,echo,tcp,c,fleet --fleet 1000
//                           --pin none|split|same --modes stream,worker-spin,...]
//
// Receive: the kernel's end sends UDP (udpblast from ../shared/peers if built, else a Node
// sender) at 10.0.0.2, whose MAC is a static neighbour, so every datagram becomes one frame
// on the TAP; a reader in its own process counts frames for --secs and reports frames/s and
// CPU µs per frame (process.cpuUsage, all threads). Strategies:
//   stream        libuv stream over the descriptor, net.Socket onread into one buffer, one
//                 frame per wake-up (TapDevice rxBatch 1)
//   stream-drain  the same, then fs.readSync until EAGAIN after each wake-up (TapDevice's
//                 default: rxBatch 64, with back-off when a wake-up finds nothing more)
//   busy-poll     stream-drain, then a bounded poll after wake-ups of small frames (TapIo)
//   worker-ring   a worker thread blocked in read(2), frames through a shared ring (ring.ts)
//   fsread        blocking descriptor, fs.read on the libuv thread pool, one read in flight
//   fsread-4      the same with four reads in flight
//   C             tapbench rx (../shared/peers): a C read loop, the ceiling
// Echo: the stack itself on the TAP, flooded by `ping -f -c N`: replies/s from ping's own
// count and time, and the stack's CPU per echo, for every TapOptions.io (stream with rxBatch 1
// and 64, busy-poll, worker-ring, worker-loop, worker-yield: src/tap/tap.ts, ring.ts); beside
// it zero-work responders (swap the addresses, patch the ICMP type and checksum, write back)
// on the libuv stream, on the worker ring, and in a tight fs.readSync loop on a blocking
// descriptor (no event loop at all: the ceiling of JavaScript without libuv); lwIP (tuned)
// from ../shared/peers alongside.
// TCP: ./bin/tapstack --tap-io MODE for every mode and tuned lwIP, all up at once in their own
// namespaces, taking turns figure by figure (--tcp-runs, medians): flood ping, ping RTT at
// light load (ping -c 50 -i 0.01), 64-byte echo round trips (tcpcli rr), sequential
// connect+close (tcpcli cr), bulk both ways (tcpcli push/pull, BULK bytes), CPU per GiB
// received, and idle CPU over 5 s with no traffic (all targets at once).
// Fleet (--only fleet, not in the default set): `tapstack fleet --count N --tap-io MODE`, one
// at a time (stream, busy-poll, worker-spin unless --modes): start-up, a flood ping and TCP
// round trips to one device, single pings to 50 devices in turn, idle CPU, resident memory.
// Placement (--pin): on this kind of machine (a 2-vCPU VM) a frame handed from a process on
// one CPU to one sleeping on the other waits for the other vCPU to wake from its halt, some
// 30-60 µs, which is most of a round trip; on one CPU the same exchange is a context switch.
// --pin split puts the clients (this process and its children) on CPU 0 and the stack on CPU
// 1; --pin same puts everything on CPU 0; --pin none (default) leaves it to the scheduler,
// whose choices make the figures bimodal.
//
// Other benchmarks (bench/run.ts) may import runTapIo() and print its rows.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStack } from '../src/stack.ts';
import { ioctlBuffer } from '../src/tap/ffi.ts';
import { TAP_IO_MODES, TapDevice, type TapIo } from '../src/tap/tap.ts';
import { cleanup, deleteNamespace, fmt, kv, makeNamespace, median as medianOf, probeAndWarmUp, rssMiB, run, type Running, Server, startLwip, startTapstack, TAPSTACK, tcpcli } from './targets.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LOADER = `file://${ROOT}/node_modules/tsx/dist/loader.mjs`;
const SELF = fileURLToPath(import.meta.url);
const PEERS = process.env.TAPSTACK_PEERS ?? '/tmp/tapstack-peers';
const TAP = 'tap0';
const STACK_MAC = '02:00:00:00:00:02';

export interface TapIoRow {
  test: string;
  strategy: string;
  framesPerSec: number;
  cpuUsPerFrame: number | null;
  /** User time alone (echo rows). */
  userUsPerFrame?: number;
  note?: string;
}

type RxStrategy = 'stream' | 'stream-drain' | 'busy-poll' | 'worker-ring' | 'fsread' | 'fsread-4';
/** The stack with TapDevice's 'stream' at rxBatch 1, or with an io mode at its default batch. */
type EchoStrategy = 'stream' | 'stream-drain' | Exclude<TapIo, 'stream'>;
/** Zero-work ICMP echo responders: on a TapDevice io mode, or a blocking fs.readSync loop. */
type ZeroStrategy = 'zero:stream' | 'zero:worker-loop' | 'zero:blocking';
const ECHO_STRATEGIES: EchoStrategy[] = (process.env.TAPIO_ECHO ?? 'stream,stream-drain,busy-poll,worker-ring,worker-loop,worker-yield,worker-spin').split(',') as EchoStrategy[];
const ZERO_STRATEGIES: ZeroStrategy[] = (process.env.TAPIO_ZERO ?? 'zero:stream,zero:worker-loop,zero:blocking').split(',').filter(Boolean) as ZeroStrategy[];
const STACK_MAC_BYTES = Buffer.from(STACK_MAC.split(':').map((h) => parseInt(h, 16)));

type Pin = 'none' | 'split' | 'same';
let pin: Pin = 'none';

/** taskset(1) on every thread of a process (threads made later inherit it). */
function setAffinity(pid: number, cpus: string): void {
  spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** Puts a measured process (a stack, a responder, lwIP) where --pin says. */
function placeTarget(pid: number | undefined): void {
  if (pid !== undefined && pin === 'split') setAffinity(pid, '1');
}

// ---------------------------------------------------------------------------------------
// Inner processes (run inside the namespace)

function cpuUs(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

/** A blocking descriptor on the TAP (TapDevice's is non-blocking), for reads on the thread pool. */
function openBlockingTap(name: string): number {
  const fd = fs.openSync('/dev/net/tun', fs.constants.O_RDWR);
  const ifr = Buffer.alloc(40);
  ifr.write(name, 0, 15, 'latin1');
  ifr.writeUInt16LE(0x0002 | 0x1000, 16); // IFF_TAP | IFF_NO_PI
  if (ioctlBuffer(fd, 0x400454ca, ifr).value < 0) throw new Error(`TUNSETIFF ${name} failed`); // TUNSETIFF
  return fd;
}

/** Counts frames read with one strategy for `secs` after the first frame; prints one JSON line. */
async function innerRx(strategy: RxStrategy, secs: number): Promise<void> {
  let frames = 0;
  let t0 = 0;
  let c0 = 0;
  const first = (): void => {
    t0 = performance.now();
    c0 = cpuUs();
  };
  const onFrame = (): void => {
    if (frames++ === 0) first();
  };
  let stop: () => void = () => {};
  if (strategy === 'stream' || strategy === 'stream-drain' || strategy === 'busy-poll' || strategy === 'worker-ring') {
    const io: TapIo = strategy === 'busy-poll' || strategy === 'worker-ring' ? strategy : 'stream';
    const tap = TapDevice.open({ name: TAP, rxBatch: strategy === 'stream' ? 1 : 64, io });
    tap.setReceiver(onFrame);
    stop = () => void tap.close();
  } else {
    const fd = openBlockingTap(TAP);
    let running = true;
    const inFlight = strategy === 'fsread-4' ? 4 : 1;
    for (let i = 0; i < inFlight; i++) {
      const buf = Buffer.alloc(16384);
      const again = (): void => {
        fs.read(fd, buf, 0, buf.length, null, (err, n) => {
          if (!err && n > 0) onFrame();
          if (running) again();
        });
      };
      again();
    }
    stop = () => (running = false);
  }
  process.stdout.write('ready\n');
  const deadline = Date.now() + 30_000;
  while (frames === 0 && Date.now() < deadline) await sleep(5);
  await sleep(secs * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  const counted = frames;
  const cpu = cpuUs() - c0;
  stop();
  process.stdout.write(JSON.stringify({ frames: counted, secs: elapsed, cpuUs: cpu }) + '\n');
  process.exit(0);
}

/**
 * Turns an ICMP echo request (Ethernet, IPv4, no options needed) into its reply in place:
 * MACs and addresses swapped (the IPv4 checksum does not change), type 8 -> 0 with the ICMP
 * checksum patched incrementally (RFC 1624: the word 0x0800 becomes 0x0000). False for
 * anything else.
 */
function reflectEcho(buf: Buffer, off: number, len: number): boolean {
  if (len < 42 || buf[off + 12] !== 0x08 || buf[off + 13] !== 0x00 || buf[off + 23] !== 1) return false;
  const icmp = off + 14 + (buf[off + 14]! & 15) * 4;
  if (buf[icmp] !== 8) return false;
  buf.copy(buf, off, off + 6, off + 12);
  STACK_MAC_BYTES.copy(buf, off + 6);
  const src = buf.readUInt32BE(off + 26);
  buf.writeUInt32BE(buf.readUInt32BE(off + 30), off + 26);
  buf.writeUInt32BE(src, off + 30);
  buf[icmp] = 0;
  let sum = buf.readUInt16BE(icmp + 2) + 0x0800;
  sum = (sum & 0xffff) + (sum >>> 16);
  buf.writeUInt16BE(sum, icmp + 2);
  return true;
}

/** A zero-work responder; reports its CPU time from the first echo to the `count`-th. */
async function innerZero(strategy: ZeroStrategy, count: number): Promise<void> {
  let echoes = 0;
  let c0 = process.cpuUsage();
  let t0 = 0;
  const answered = (): void => {
    if (echoes++ === 0) {
      c0 = process.cpuUsage();
      t0 = performance.now();
    }
  };
  const deadline = Date.now() + 120_000;
  if (strategy === 'zero:blocking') {
    // No event loop: read(2) blocks until the next request. Bounded by count; the driver
    // kills this process when ping gave up early.
    const fd = openBlockingTap(TAP);
    const buf = Buffer.alloc(16384);
    process.stdout.write('ready\n');
    while (echoes < count && Date.now() < deadline) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (reflectEcho(buf, 0, n)) {
        fs.writeSync(fd, buf, 0, n);
        answered();
      }
    }
  } else {
    const tap = TapDevice.open({ name: TAP, io: strategy === 'zero:stream' ? 'stream' : 'worker-loop' });
    tap.setReceiver((buf, off, len) => {
      if (reflectEcho(buf, off, len)) {
        tap.send(buf, off, len);
        answered();
      }
    });
    process.stdout.write('ready\n');
    while (echoes < count && Date.now() < deadline) await sleep(2);
    await tap.close();
  }
  const c = process.cpuUsage(c0);
  process.stdout.write(JSON.stringify({ echoes, secs: (performance.now() - t0) / 1000, cpuUs: c.user + c.system, userUs: c.user }) + '\n');
  process.exit(0);
}

/** The stack on the TAP; reports its CPU time from the first echo to the `count`-th. */
async function innerEcho(strategy: EchoStrategy, count: number): Promise<void> {
  const io: TapIo = strategy === 'stream' || strategy === 'stream-drain' ? 'stream' : strategy;
  const tap = TapDevice.open({ name: TAP, rxBatch: strategy === 'stream' ? 1 : 64, io });
  const stack = await createStack({ link: tap, ip: '10.0.0.2/24', mac: STACK_MAC });
  process.stdout.write('ready\n');
  const deadline = Date.now() + 120_000;
  while (stack.icmp.counters.rx === 0 && Date.now() < deadline) await sleep(1);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  while (stack.icmp.counters.tx < count && Date.now() < deadline) await sleep(2);
  const c = process.cpuUsage(c0);
  const secs = (performance.now() - t0) / 1000;
  const echoes = stack.icmp.counters.tx;
  await stack.close();
  // System time includes the kernel's own work on each reply we write (the TAP hands the
  // frame to the kernel's receive path in our write call).
  process.stdout.write(JSON.stringify({ echoes, secs, cpuUs: c.user + c.system, userUs: c.user }) + '\n');
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// The outer driver

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

class Netns {
  readonly name = `tapio-${process.pid}`;
  constructor() {
    execFileSync('ip', ['netns', 'add', this.name]);
    this.sh('ip', ['link', 'set', 'lo', 'up']);
  }
  sh(cmd: string, args: string[], timeoutMs = 60_000): string {
    const r = spawnSync('ip', ['netns', 'exec', this.name, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
    return (r.stdout ?? '') + (r.stderr ?? '');
  }
  /** A persistent TAP with the kernel's end at 10.0.0.1 and the stack's MAC as a static neighbour. */
  makeTap(): void {
    this.sh('ip', ['tuntap', 'add', 'dev', TAP, 'mode', 'tap']);
    this.sh('ip', ['addr', 'add', '10.0.0.1/24', 'dev', TAP]);
    this.sh('ip', ['link', 'set', TAP, 'up']);
    this.sh('ip', ['neigh', 'replace', '10.0.0.2', 'lladdr', STACK_MAC, 'dev', TAP, 'nud', 'permanent']);
  }
  dropTap(): void {
    this.sh('ip', ['tuntap', 'del', 'dev', TAP, 'mode', 'tap']);
  }
  destroy(): void {
    spawnSync('ip', ['netns', 'del', this.name]);
  }
  /** Starts a process in the namespace; resolves its stdout once it has printed `ready`. */
  start(cmd: string, args: string[]): { ready: Promise<void>; done: Promise<string>; pid: number | undefined; kill(): void } {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let readyResolve: () => void = () => {};
    const ready = new Promise<void>((r) => (readyResolve = r));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) readyResolve();
    });
    const killer = setTimeout(() => child.pid !== undefined && child.kill('SIGKILL'), 180_000);
    const done = new Promise<string>((resolve) =>
      child.on('close', () => {
        clearTimeout(killer);
        readyResolve();
        resolve(out);
      }),
    );
    return { ready, done, pid: child.pid, kill: () => child.pid !== undefined && child.exitCode === null && child.kill('SIGKILL') };
  }
}

function lastJson<T>(out: string): T | null {
  const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  return line ? (JSON.parse(line) as T) : null;
}

/** The kernel's end sends UDP datagrams of `payload` bytes to 10.0.0.2:9 for `secs`. */
function blast(ns: Netns, payload: number, secs: number): string {
  const udpblast = path.join(PEERS, 'udpblast');
  if (existsSync(udpblast)) return ns.sh(udpblast, ['10.0.0.2', '9', String(payload), String(secs)], (secs + 30) * 1000);
  const script = `const s=require('dgram').createSocket('udp4');const b=Buffer.alloc(${payload});const end=Date.now()+${secs * 1000};` +
    `(function go(){for(let i=0;i<64;i++)s.send(b,9,'10.0.0.2');if(Date.now()<end)setImmediate(go);else s.close();})();`;
  return ns.sh(process.execPath, ['-e', script], (secs + 30) * 1000);
}

async function measureRx(ns: Netns, strategy: RxStrategy, payload: number, secs: number): Promise<TapIoRow> {
  ns.sh('ip', ['neigh', 'replace', '10.0.0.2', 'lladdr', STACK_MAC, 'dev', TAP, 'nud', 'permanent']);
  const inner = ns.start(process.execPath, ['--import', LOADER, SELF, '--inner', 'rx', strategy, String(secs)]);
  await inner.ready;
  blast(ns, payload, secs + 1);
  const r = lastJson<{ frames: number; secs: number; cpuUs: number }>(await inner.done);
  const test = `rx ${payload + 42}-byte frames`;
  if (!r || r.frames === 0) return { test, strategy, framesPerSec: 0, cpuUsPerFrame: null, note: 'no frames' };
  return { test, strategy, framesPerSec: r.frames / r.secs, cpuUsPerFrame: r.cpuUs / r.frames };
}

async function measureRxC(ns: Netns, payload: number, secs: number): Promise<TapIoRow | null> {
  ns.sh('ip', ['neigh', 'replace', '10.0.0.2', 'lladdr', STACK_MAC, 'dev', TAP, 'nud', 'permanent']);
  const tapbench = path.join(PEERS, 'tapbench');
  const test = `rx ${payload + 42}-byte frames`;
  if (!existsSync(tapbench)) return null;
  // bash's `times` reports the CPU time of the finished child (user and system).
  const inner = ns.start('bash', ['-c', `${tapbench} rx ${TAP} ${secs}; times`]);
  await inner.ready;
  blast(ns, payload, secs + 1);
  const out = await inner.done;
  const fps = Number(/fps=(\d+)/.exec(out)?.[1] ?? 0);
  const frames = Number(/frames=(\d+)/.exec(out)?.[1] ?? 0);
  const times = [...out.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const cpu = times.length >= 4 ? times[2]! + times[3]! : null;
  return { test, strategy: 'C tapbench', framesPerSec: fps, cpuUsPerFrame: cpu !== null && frames > 0 ? (cpu * 1e6) / frames : null };
}

function parsePing(out: string): { sent: number; received: number; ms: number } | null {
  const m = /(\d+) packets transmitted, (\d+) received.*time (\d+)ms/.exec(out);
  return m ? { sent: Number(m[1]), received: Number(m[2]), ms: Number(m[3]) } : null;
}

async function measureEcho(ns: Netns, strategy: EchoStrategy | ZeroStrategy, count: number): Promise<TapIoRow> {
  const zero = strategy.startsWith('zero:');
  // The zero-work responders have no ARP: the kernel's end gets the MAC as a static neighbour.
  if (zero) ns.sh('ip', ['neigh', 'replace', '10.0.0.2', 'lladdr', STACK_MAC, 'dev', TAP, 'nud', 'permanent']);
  else ns.sh('ip', ['neigh', 'del', '10.0.0.2', 'dev', TAP]);
  const inner = ns.start(process.execPath, ['--import', LOADER, SELF, '--inner', zero ? 'zero' : 'echo', strategy, String(count)]);
  await inner.ready;
  placeTarget(inner.pid);
  const ping = parsePing(ns.sh('ping', ['-f', '-q', '-c', String(count), '-w', '60', '10.0.0.2'], 90_000));
  // A blocking responder waits in read(2) for requests ping did not send: end it.
  const killer = setTimeout(() => inner.kill(), 10_000);
  const r = lastJson<{ echoes: number; secs: number; cpuUs: number; userUs: number }>(await inner.done);
  clearTimeout(killer);
  const test = `echo (ping -f -c ${count})`;
  if (!ping || !r) return { test, strategy, framesPerSec: 0, cpuUsPerFrame: null, note: 'failed' };
  return {
    test,
    strategy: zero ? `zero-work, ${strategy.slice(5)}` : `stack, ${strategy}`,
    framesPerSec: (ping.received * 1000) / Math.max(1, ping.ms),
    cpuUsPerFrame: r.cpuUs / Math.max(1, r.echoes),
    userUsPerFrame: r.userUs / Math.max(1, r.echoes),
    note: `${ping.received}/${ping.sent} replies`,
  };
}

async function measureEchoLwip(ns: Netns, count: number): Promise<TapIoRow | null> {
  const lwip = path.join(PEERS, 'lwip_tap_tuned');
  if (!existsSync(lwip)) return null;
  ns.sh('ip', ['neigh', 'del', '10.0.0.2', 'dev', TAP]);
  const server = ns.start('bash', ['-c', `echo ready; exec ${lwip} ${TAP} 10.0.0.2 0`]);
  await server.ready;
  placeTarget(server.pid);
  await sleep(500);
  const ping = parsePing(ns.sh('ping', ['-f', '-q', '-c', String(count), '-w', '60', '10.0.0.2'], 90_000));
  if (server.pid !== undefined) process.kill(server.pid, 'SIGTERM');
  await server.done;
  if (!ping) return null;
  return { test: `echo (ping -f -c ${count})`, strategy: 'lwIP tuned (C)', framesPerSec: (ping.received * 1000) / Math.max(1, ping.ms), cpuUsPerFrame: null, note: `${ping.received}/${ping.sent} replies` };
}

// ---------------------------------------------------------------------------------------
// TCP and the rest, through the command line: ./bin/tapstack --tap-io MODE beside tuned lwIP

const BULK = 256 * 1024 * 1024;
const GIB = 1024 ** 3;

interface TcpFigure {
  key: string;
  label: string;
  unit: string;
  decimals: number;
}

const IDLE_FIGURE: TcpFigure = { key: 'idle', label: 'idle CPU, 5 s without traffic', unit: '% of a CPU', decimals: 2 };

export const TCP_FIGURES: TcpFigure[] = [
  { key: 'ping', label: 'flood ping (ping -f -c PINGS)', unit: 'replies/s', decimals: 0 },
  { key: 'rtt', label: 'ping RTT at light load (-c 50 -i 0.01)', unit: 'µs', decimals: 0 },
  { key: 'rttCpu', label: 'stack CPU per ping at light load', unit: 'µs', decimals: 0 },
  { key: 'rr', label: '64-byte TCP echo round trips (tcpcli rr 10000)', unit: 'RT/s', decimals: 0 },
  { key: 'rrCpu', label: 'stack CPU per round trip (rr)', unit: 'µs', decimals: 1 },
  { key: 'cr', label: 'sequential connect+close (tcpcli cr 2000)', unit: 'conn/s', decimals: 0 },
  { key: 'push', label: `bulk host -> stack (tcpcli push ${BULK >> 20} MiB)`, unit: 'MB/s', decimals: 0 },
  { key: 'pull', label: `bulk stack -> host (tcpcli pull ${BULK >> 20} MiB)`, unit: 'MB/s', decimals: 0 },
  { key: 'cpu', label: 'stack CPU per GiB received', unit: 's/GiB', decimals: 2 },
  IDLE_FIGURE,
];

export interface TcpColumn {
  name: string;
  values: Record<string, number[]>;
  notes: string[];
}

interface TcpTarget extends Running {
  column: TcpColumn;
}

/**
 * CPU time of a process in seconds, to the nanosecond: the sum of its threads' run time
 * (/proc/PID/task/TID/schedstat, first field). /proc/PID/stat counts in 10 ms ticks, too
 * coarse for the CPU of 50 pings or of 5 idle seconds.
 */
function cpuPrecise(pid: number): number {
  let ns = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* the thread just ended */
      }
    }
  } catch {
    return NaN;
  }
  return ns / 1e9;
}

function addValue(c: TcpColumn, key: string, v: number): void {
  if (Number.isFinite(v)) (c.values[key] ??= []).push(v);
}

async function tcpRound(t: TcpTarget, pings: number): Promise<void> {
  const c = t.column;
  const flood = await run('ip', ['netns', 'exec', t.clientNs, 'ping', '-q', '-f', '-c', String(pings), '-w', '60', t.host], 70_000);
  const p = parsePing(flood.out);
  if (p) addValue(c, 'ping', (p.received * 1000) / Math.max(1, p.ms));
  const l0 = cpuPrecise(t.pid);
  const light = await run('ip', ['netns', 'exec', t.clientNs, 'ping', '-q', '-c', '50', '-i', '0.01', '-w', '10', t.host], 20_000);
  addValue(c, 'rtt', Number(/= [\d.]+\/([\d.]+)\//.exec(light.out)?.[1]) * 1000);
  addValue(c, 'rttCpu', ((cpuPrecise(t.pid) - l0) * 1e6) / 50);
  const r0 = cpuPrecise(t.pid);
  addValue(c, 'rr', kv((await tcpcli(t.clientNs, ['rr', t.host, '7', '10000', '64'], 60)).out, 'rtps'));
  addValue(c, 'rrCpu', ((cpuPrecise(t.pid) - r0) * 1e6) / 10000);
  addValue(c, 'cr', kv((await tcpcli(t.clientNs, ['cr', t.host, '9', '2000'], 60)).out, 'cps'));
  const c0 = cpuPrecise(t.pid);
  const push = await tcpcli(t.clientNs, ['push', t.host, '9', String(BULK)], 60);
  const c1 = cpuPrecise(t.pid);
  const mbps = kv(push.out, 'MBps');
  addValue(c, 'push', mbps);
  if (Number.isFinite(mbps)) addValue(c, 'cpu', (c1 - c0) / (BULK / GIB));
  if (t.canPull) addValue(c, 'pull', kv((await tcpcli(t.clientNs, ['pull', t.host, '19'], 60)).out, 'MBps'));
}

/** Idle CPU of every target at once: no client runs for 5 s. */
async function idleRound(targets: TcpTarget[]): Promise<void> {
  const c0 = targets.map((t) => cpuPrecise(t.pid));
  await sleep(5000);
  targets.forEach((t, i) => addValue(t.column, 'idle', ((cpuPrecise(t.pid) - c0[i]!) / 5) * 100));
}

/** Every --tap-io mode through ./bin/tapstack, and tuned lwIP, `runs` rounds taking turns. */
export async function runTcpFigures(options: { runs?: number; pings?: number; modes?: readonly TapIo[]; lwip?: boolean } = {}): Promise<TcpColumn[]> {
  const runs = options.runs ?? 5;
  const pings = options.pings ?? 20_000;
  const targets: TcpTarget[] = [];
  const columns: TcpColumn[] = [];
  try {
    const starts: [string, () => Promise<Running | string>][] = (options.modes ?? TAP_IO_MODES).map((m) => [`tapstack --tap-io ${m}`, () => startTapstack(BULK, ['--tap-io', m])]);
    if (options.lwip ?? true) starts.push(['lwIP tuned (C)', () => startLwip(BULK, 'tuned')]);
    for (const [name, start] of starts) {
      const column: TcpColumn = { name, values: {}, notes: [] };
      columns.push(column);
      const r = await start();
      if (typeof r === 'string') {
        column.notes.push(r);
        continue;
      }
      placeTarget(r.pid);
      targets.push({ ...r, column });
      // The same warm-up for all (V8's optimizing compiler, the heap grown).
      if (!(await probeAndWarmUp(r, BULK))) column.notes.push('TCP probe failed');
    }
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`[tap-io] TCP round ${i + 1} of ${runs}\n`);
      for (const t of targets) await tcpRound(t, pings);
      await idleRound(targets);
    }
    for (const t of targets) if (!t.alive()) t.column.notes.push('died during the run');
  } finally {
    for (const t of targets) await t.stop();
    cleanup();
  }
  return columns;
}

export const FLEET_FIGURES: TcpFigure[] = [
  { key: 'up', label: 'fleet of FLEET devices: spawn to up', unit: 'ms', decimals: 0 },
  { key: 'ping', label: 'flood ping to one device (ping -f -c PINGS)', unit: 'replies/s', decimals: 0 },
  { key: 'rr', label: '64-byte TCP echo round trips to one device (tcpcli rr 5000)', unit: 'RT/s', decimals: 0 },
  { key: 'sample', label: 'ping 1 each to 50 devices, one after another', unit: 'ms', decimals: 0 },
  IDLE_FIGURE,
  { key: 'rss', label: 'resident memory, idle', unit: 'MiB', decimals: 0 },
];

/** `tapstack fleet --count N --tap-io MODE` for each mode, `runs` times each: one TAP, N stacks. */
export async function runFleetFigures(options: { runs?: number; pings?: number; count?: number; modes?: readonly TapIo[] } = {}): Promise<TcpColumn[]> {
  const runs = options.runs ?? 3;
  const pings = options.pings ?? 20_000;
  const count = options.count ?? 1000;
  const columns: TcpColumn[] = (options.modes ?? ['stream', 'busy-poll', 'worker-spin']).map((m) => ({ name: `fleet --tap-io ${m}`, values: {}, notes: [] }));
  try {
    for (let i = 0; i < runs; i++) {
      for (const c of columns) {
        const ns = makeNamespace();
        const t0 = performance.now();
        const server = new Server(ns, TAPSTACK, ['fleet', '--count', String(count), '--ip', '10.0.1.1/16', '--services', 'echo,http', '--seed', '1', '--tap-io', c.name.split(' ').pop()!]);
        const up = await server.waitFor(/^tapstack up fleet/m, 60_000);
        if (!up) c.notes.push(`did not start: ${server.out.trim().split('\n').pop()}`);
        else {
          addValue(c, 'up', performance.now() - t0);
          placeTarget(server.pid);
          const middle = `10.0.${1 + Math.floor(count / 2 / 256)}.${1 + ((count / 2) % 256)}`;
          await run('ip', ['netns', 'exec', ns, 'ping', '-q', '-c', '3', '-i', '0.01', '-W', '2', middle], 10_000);
          const flood = parsePing((await run('ip', ['netns', 'exec', ns, 'ping', '-q', '-f', '-c', String(pings), '-w', '60', middle], 70_000)).out);
          if (flood) addValue(c, 'ping', (flood.received * 1000) / Math.max(1, flood.ms));
          addValue(c, 'rr', kv((await tcpcli(ns, ['rr', middle, '7', '5000', '64'], 60)).out, 'rtps'));
          const s0 = performance.now();
          const step = Math.max(1, Math.floor(count / 50));
          const sample = Array.from({ length: 50 }, (_, k) => `10.0.${1 + Math.floor(((k * step) % count) / 256)}.${1 + (((k * step) % count) % 256)}`);
          let answered = 0;
          for (const a of sample) if ((await run('ip', ['netns', 'exec', ns, 'ping', '-q', '-c', '1', '-W', '2', a], 5_000)).code === 0) answered++;
          addValue(c, 'sample', performance.now() - s0);
          if (answered < 50) c.notes.push(`run ${i + 1}: ${answered}/50 answered`);
          const c0 = cpuPrecise(server.pid);
          await sleep(5000);
          addValue(c, 'idle', ((cpuPrecise(server.pid) - c0) / 5) * 100);
          addValue(c, 'rss', rssMiB(server.pid));
        }
        await server.stop();
        deleteNamespace(ns);
      }
    }
  } finally {
    cleanup();
  }
  return columns;
}

export function tcpTable(columns: TcpColumn[], figures: TcpFigure[] = TCP_FIGURES): string {
  const lines = [`| figure | unit | ${columns.map((c) => c.name).join(' | ')} |`, `|---|---|${columns.map(() => '---').join('|')}|`];
  for (const f of figures) {
    const cells = columns.map((c) => {
      const xs = c.values[f.key];
      if (!xs?.length) return '-';
      const m = fmt(medianOf(xs), f.decimals);
      return xs.length === 1 ? m : `${m} (${fmt(Math.min(...xs), f.decimals)}-${fmt(Math.max(...xs), f.decimals)})`;
    });
    lines.push(`| ${f.label} | ${f.unit} | ${cells.join(' | ')} |`);
  }
  const notes = columns.filter((c) => c.notes.length).map((c) => `- ${c.name}: ${c.notes.join('; ')}`);
  return lines.join('\n') + (notes.length ? `\n\n${notes.join('\n')}` : '');
}

/** Runs a measurement `runs` times and keeps the median of each figure (this machine is noisy). */
async function median(runs: number, measure: () => Promise<TapIoRow | null>): Promise<TapIoRow | null> {
  const got: TapIoRow[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await measure();
    if (r) got.push(r);
  }
  if (got.length === 0) return null;
  const mid = <T>(xs: T[]): T => xs[Math.floor(xs.length / 2)]!;
  const fps = mid(got.map((r) => r.framesPerSec).sort((a, b) => a - b));
  const cpus = got.map((r) => r.cpuUsPerFrame).filter((c): c is number => c !== null).sort((a, b) => a - b);
  const users = got.map((r) => r.userUsPerFrame).filter((c): c is number => c !== undefined).sort((a, b) => a - b);
  const user = users.length ? `, user ${mid(users).toFixed(2)} µs` : '';
  return { ...got[0]!, framesPerSec: fps, cpuUsPerFrame: cpus.length ? mid(cpus) : null, note: `${got[0]!.note ? got[0]!.note + '; ' : ''}median of ${got.length}${user}` };
}

export async function runTapIo(options: { secs?: number; pings?: number; only?: string[]; runs?: number } = {}): Promise<TapIoRow[]> {
  const secs = options.secs ?? 3;
  const pings = options.pings ?? 20_000;
  const only = options.only ?? ['rx', 'echo', 'tcp', 'c'];
  const runs = options.runs ?? 3;
  const rows: TapIoRow[] = [];
  const add = (r: TapIoRow | null): void => {
    if (r) rows.push(r);
  };
  const ns = new Netns();
  try {
    ns.makeTap();
    if (only.includes('rx')) {
      for (const payload of [22, 1472]) {
        for (const s of ['stream', 'stream-drain', 'busy-poll', 'worker-ring', 'fsread', 'fsread-4'] as RxStrategy[]) add(await median(runs, () => measureRx(ns, s, payload, secs)));
        if (only.includes('c')) add(await median(runs, () => measureRxC(ns, payload, secs)));
      }
    }
    if (only.includes('echo')) {
      for (const s of [...ECHO_STRATEGIES, ...ZERO_STRATEGIES]) add(await median(runs, () => measureEcho(ns, s, pings)));
      ns.sh('ip', ['neigh', 'del', '10.0.0.2', 'dev', TAP]);
      if (only.includes('c')) add(await median(runs, () => measureEchoLwip(ns, pings)));
    }
    ns.dropTap();
  } finally {
    ns.destroy();
  }
  return rows;
}

function printRows(rows: TapIoRow[]): void {
  const fmt = (n: number | null, digits: number): string => (n === null ? '-' : n.toFixed(digits));
  process.stdout.write(`| test | strategy | frames/s | CPU µs/frame | note |\n|---|---|---|---|---|\n`);
  for (const r of rows) process.stdout.write(`| ${r.test} | ${r.strategy} | ${Math.round(r.framesPerSec)} | ${fmt(r.cpuUsPerFrame, 2)} | ${r.note ?? ''} |\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--inner') {
    const [, kind, strategy, n] = argv;
    if (kind === 'rx') return innerRx(strategy as RxStrategy, Number(n));
    if (kind === 'zero') return innerZero(strategy as ZeroStrategy, Number(n));
    return innerEcho(strategy as EchoStrategy, Number(n));
  }
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (process.getuid?.() !== 0 || !existsSync('/dev/net/tun')) {
    process.stderr.write('bench:tap-io needs root and /dev/net/tun (it makes its own network namespace)\n');
    process.exit(1);
  }
  if (!existsSync(path.join(PEERS, 'tapbench')))
    process.stderr.write(`(C rows skipped: build them with make -C ../shared/peers B=${PEERS} all)\n`);
  const secs = Math.min(30, Number(get('--secs') ?? 3));
  const pings = Math.min(200_000, Number(get('--pings') ?? 20_000));
  const only = get('--only')?.split(',');
  const runs = Math.min(9, Number(get('--runs') ?? 3));
  pin = (get('--pin') ?? 'none') as Pin;
  if (!['none', 'split', 'same'].includes(pin)) {
    process.stderr.write('--pin: none, split or same\n');
    process.exit(2);
  }
  // The clients (ping, tcpcli, the senders) are this process's children: they inherit it.
  if (pin !== 'none') setAffinity(process.pid, '0');
  const tcpRuns = Math.min(9, Number(get('--tcp-runs') ?? 5));
  const sections = only ?? ['rx', 'echo', 'tcp', 'c'];
  if (sections.includes('rx') || sections.includes('echo')) printRows(await runTapIo({ secs, pings, only: sections.filter((s) => s !== 'tcp'), runs }));
  if (sections.includes('tcp')) {
    const modes = get('--modes')?.split(',') as TapIo[] | undefined;
    process.stdout.write(`\n${tcpTable(await runTcpFigures({ runs: tcpRuns, pings, modes, lwip: sections.includes('c') })).replace('PINGS', String(pings))}\n`);
  }
  if (sections.includes('fleet')) {
    const modes = get('--modes')?.split(',') as TapIo[] | undefined;
    const count = Math.min(10_000, Number(get('--fleet') ?? 1000));
    const table = tcpTable(await runFleetFigures({ runs: Math.min(tcpRuns, 5), pings, count, modes }), FLEET_FIGURES);
    process.stdout.write(`\n${table.replace('FLEET', String(count)).replace('PINGS', String(pings))}\n`);
  }
}

if (process.argv[1] === SELF) void main();
