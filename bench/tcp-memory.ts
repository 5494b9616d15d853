// The TCP code's own cost, without a TAP, a kernel or wake-ups (no root): two stacks on an
// in-memory cable in virtual time, so the CPU time measured is the stacks' work alone, and
// the frames are the same every run. Figures: 64-byte echo round trips (one segment each way
// per round trip, as bench:tcp's rr), bulk transfer, and connect+close, each as CPU
// microseconds per unit (user + system of this process, median of RUNS).
//
//   npx tsx bench/tcp-memory.ts                      this checkout
//   TAPSTACK_ROOT=/path/to/other/checkout npx tsx bench/tcp-memory.ts
//                                                    another checkout's src/ (a git worktree
//                                                    of an older commit: before/after figures)
//   RUNS=7 RR=20000 BULK_MB=64 CONNS=2000 HELD=5000 ...
//   NODE_OPTIONS=--expose-gc adds heap bytes per held connection

import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(process.env.TAPSTACK_ROOT ?? path.join(import.meta.dirname, '..'));
const RUNS = Number(process.env.RUNS ?? 5);
const RR = Number(process.env.RR ?? 20_000);
const BULK_MB = Number(process.env.BULK_MB ?? 64);
const CONNS = Number(process.env.CONNS ?? 2000);

interface Api {
  createStack(o: Record<string, unknown>): Promise<StackLike>;
  createLinkPair(clock: unknown, o?: Record<string, unknown>): [unknown, unknown];
  VirtualClock: new () => { advance(ms: number): void; now(): number };
}
interface SocketLike {
  on(e: string, f: (...a: never[]) => void): void;
  write(b: Buffer): boolean;
  end(b?: Buffer): void;
  resume(): void;
  destroy(): void;
  setNoDelay(v: boolean): void;
}
interface StackLike {
  createServer(f: (s: SocketLike) => void): { listen(p: number): void };
  connect(o: { host: string; port: number }): SocketLike;
  close(): Promise<void>;
}

const api = (await import(pathToFileURL(path.join(ROOT, 'src/index.ts')).href)) as Api;

async function pair(): Promise<{ clock: InstanceType<Api['VirtualClock']>; a: StackLike; b: StackLike }> {
  const clock = new api.VirtualClock();
  const [la, lb] = api.createLinkPair(clock, { mtu: 1500, latencyMs: 0 });
  const a = await api.createStack({ link: la, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const b = await api.createStack({ link: lb, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  clock.advance(10);
  return { clock, a, b };
}

/** Runs virtual time (0.1 ms steps) and the event loop's ticks until done(). */
async function until(clock: { advance(ms: number): void }, done: () => boolean, limit = 10_000_000): Promise<void> {
  for (let i = 0; i < limit && !done(); i++) {
    clock.advance(0.1);
    await new Promise<void>((r) => setImmediate(r));
  }
  if (!done()) throw new Error('did not finish');
}

function cpuMicros(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return d.user + d.system;
}

async function echoRoundTrips(): Promise<number> {
  const { clock, a, b } = await pair();
  b.createServer((s) => {
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => s.write(d));
  }).listen(7);
  const c = a.connect({ host: '10.0.0.2', port: 7 });
  c.setNoDelay(true);
  let connected = false;
  c.on('connect', () => (connected = true));
  await until(clock, () => connected);
  const msg = Buffer.alloc(64, 7);
  let got = 0;
  let done = 0;
  c.on('data', (d: Buffer) => {
    got += d.length;
    if (got >= 64) {
      got -= 64;
      done++;
      if (done < RR) c.write(msg);
    }
  });
  const t0 = process.cpuUsage();
  c.write(msg);
  await until(clock, () => done >= RR);
  const us = cpuMicros(t0) / RR;
  c.destroy();
  await a.close();
  await b.close();
  return us;
}

async function bulk(): Promise<number> {
  const { clock, a, b } = await pair();
  let received = 0;
  b.createServer((s) => s.on('data', (d: Buffer) => (received += d.length))).listen(9);
  const c = a.connect({ host: '10.0.0.2', port: 9 });
  const total = BULK_MB * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 1);
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      sent += chunk.length;
      if (!c.write(chunk)) return;
    }
  };
  c.on('drain', pump);
  const t0 = process.cpuUsage();
  pump();
  await until(clock, () => received >= total);
  const us = cpuMicros(t0) / BULK_MB;
  c.destroy();
  await a.close();
  await b.close();
  return us;
}

async function connections(): Promise<number> {
  const { clock, a, b } = await pair();
  b.createServer((s) => {
    s.resume();
    s.on('end', () => s.end());
  }).listen(7);
  let closed = 0;
  const t0 = process.cpuUsage();
  for (let i = 0; i < CONNS; i++) {
    const c = a.connect({ host: '10.0.0.2', port: 7 });
    c.resume();
    c.on('connect', () => c.end());
    c.on('close', () => closed++);
    await until(clock, () => closed > i);
  }
  const us = cpuMicros(t0) / CONNS;
  await a.close();
  await b.close();
  return us;
}

/** Heap bytes per established connection (both ends counted), HELD connections open at once. */
async function heldConnections(held: number): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return NaN;
  const { clock, a, b } = await pair();
  b.createServer((s) => s.resume()).listen(7);
  gc();
  const before = process.memoryUsage().heapUsed;
  const sockets: SocketLike[] = [];
  let connected = 0;
  for (let i = 0; i < held; i++) {
    const c = a.connect({ host: '10.0.0.2', port: 7 });
    c.on('connect', () => connected++);
    sockets.push(c);
  }
  await until(clock, () => connected >= held);
  // The handshakes' last ACKs and delayed ACKs settle.
  for (let i = 0; i < 2000; i++) {
    clock.advance(0.1);
    await new Promise<void>((r) => setImmediate(r));
  }
  gc();
  const bytes = (process.memoryUsage().heapUsed - before) / held;
  for (const s of sockets) s.destroy();
  await a.close();
  await b.close();
  return bytes;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

// One run first for the JIT, not counted.
await echoRoundTrips();
await bulk();
await connections();
const results: Record<string, number[]> = { rr: [], bulk: [], conn: [] };
for (let r = 0; r < RUNS; r++) {
  results.rr!.push(await echoRoundTrips());
  results.bulk!.push(await bulk());
  results.conn!.push(await connections());
}
const fmt = (xs: number[]): string => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`;
console.log(`tcp-memory ${ROOT} (RUNS=${RUNS}, medians, min-max)`);
console.log(`  64-byte echo round trip   CPU µs per round trip  ${fmt(results.rr!)}`);
console.log(`  bulk ${BULK_MB} MiB               CPU µs per MiB         ${fmt(results.bulk!)}`);
console.log(`  connect + close           CPU µs per connection  ${fmt(results.conn!)}`);
const held = Number(process.env.HELD ?? 5000);
const perConnection = await heldConnections(held);
console.log(`  ${held} held connections    heap bytes per connection (client and server side) ${Number.isNaN(perConnection) ? 'n/a (run with NODE_OPTIONS=--expose-gc)' : perConnection.toFixed(0)}`);
