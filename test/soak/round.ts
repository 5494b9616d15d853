// One round of the soak: two to four stacks on one in-memory segment (a hub), each sending
// through its own random netem shape, with a random workload (TCP to the services and to a
// listener with a random behaviour, readers and non-readers, half-closes and aborts, UDP
// to unicast and broadcast, loopback to itself) and a hostile port injecting crafted frames.
// Then every socket is closed, and the round checks what a long-running stack must hold:
//   - no exception escaped, no counter says internal-error;
//   - the segment never carried a storm (frames bounded by the workload);
//   - after close, every connection and every half-open or TIME-WAIT entry is gone in
//     bounded virtual time, and once the stacks are closed no timer is left;
//   - data that reached a clean end arrived exactly as sent (unless the attacker was on-path).
// Everything is drawn from the round's seed: the same seed gives the same frames (checked by
// runRound's caller with `hashFrames`).

import { createHash } from 'node:crypto';
import { MemoryHub } from '../../src/link/memory.ts';
import type { Link } from '../../src/link/link.ts';
import { NetemLink, type NetemShape } from '../../src/link/netem.ts';
import { startServices, type ServiceName, type StopService } from '../../src/services/index.ts';
import '../../src/services/all.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import type { TcpConfig } from '../../src/tcp/config.ts';
import type { TcpSocket } from '../../src/index.ts';
import { seededRandom } from '../../src/util/random.ts';
import { ATTACKER_MAC, BLIND_KINDS, FrameSample, hostileFrames, ON_PATH_KINDS, pick, randInt, type Rng, type Victim } from './hostile.ts';
import { CountingClock } from '../helpers/counting-clock.ts';

export interface RoundOptions {
  /** Hash every frame on the segment (for the determinism check). */
  hashFrames?: boolean;
  /** Leave out the HTTP service (Node's http.Server adds a Date header: frames differ by wall time). */
  noHttp?: boolean;
  /** Scale of the workload and of the attack (1: the default). */
  scale?: number;
}

export interface RoundResult {
  seed: number;
  failures: string[];
  frames: number;
  hostileFrames: number;
  connections: number;
  bytesDelivered: number;
  virtualMs: number;
  frameHash: string | null;
}

const immediate = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Frames on the segment at most per round: a workload of this size needs a few tens of thousands. */
const MAX_FRAMES_ACTIVE = 1_500_000;
/** Frames after everything is closed: FINs, RSTs, retransmissions of orphans, ARP. */
const MAX_FRAMES_TEARDOWN = 200_000;
/** Timers run at most per round (a loop guard of the driver itself). */
const MAX_TIMERS = 3_000_000;
/**
 * How long after close every connection must be gone. The longest legitimate life of an
 * orphan: tcp_orphan_retries' backoff (8 retries of a 120 s RTO cap: about 16 minutes), a
 * zero-window orphan probing as long, FIN-WAIT-2 (60 s) and TIME-WAIT (60 s) after it.
 */
const TEARDOWN_LIMIT_MS = 4 * 3_600_000;

function randomShape(rng: Rng): NetemShape | undefined {
  if (rng() < 0.25) return undefined;
  const shape: NetemShape = {};
  if (rng() < 0.7) shape.delayMs = randInt(rng, 0, 40);
  if (shape.delayMs && rng() < 0.5) shape.jitterMs = randInt(rng, 0, shape.delayMs);
  if (rng() < 0.6)
    shape.loss = rng() < 0.6 ? rng() * 0.08 : { model: 'gemodel', p: rng() * 0.05, r: 0.2 + rng() * 0.7 };
  if (rng() < 0.3) shape.duplicate = rng() * 0.05;
  if (rng() < 0.3) shape.corrupt = rng() * 0.03;
  if (shape.delayMs && rng() < 0.3) shape.reorder = rng() * 0.3;
  if (rng() < 0.3) {
    shape.rateBps = pick(rng, [1e6, 10e6, 100e6]);
    shape.limit = randInt(rng, 5, 1000);
  }
  return shape;
}

function randomTcpConfig(rng: Rng): Partial<TcpConfig> {
  const config: Partial<TcpConfig> = {
    sack: rng() < 0.8,
    timestamps: rng() < 0.8,
    windowScaling: rng() < 0.9,
    congestion: rng() < 0.5 ? 'cubic' : 'newreno',
  };
  if (rng() < 0.3) config.receiveBufferSize = pick(rng, [2048, 8192, 65536]);
  if (rng() < 0.3) config.sendBufferSize = pick(rng, [4096, 65536]);
  if (rng() < 0.2) config.maxSynBacklog = pick(rng, [4, 16, 64]);
  return config;
}

type ListenerMode = 'read' | 'pause' | 'echo' | 'destroy' | 'end' | 'pause-resume';
type ClientRead = 'read' | 'pause' | 'pause-resume';
type ClientFinish = 'end' | 'destroy' | 'none' | 'reset';

const LISTEN_PORT = 5000;
const CLOSED_PORT = 6000;
const UDP_PORT = 5001;
/** A client reads at most this much (then destroys its socket). */
const CLIENT_READ_LIMIT = 4 * 1024 * 1024;

/** Runs one round; never throws (a failure is in the result). */
export async function runRound(seed: number, options: RoundOptions = {}): Promise<RoundResult> {
  const failures: string[] = [];
  const result: RoundResult = { seed, failures, frames: 0, hostileFrames: 0, connections: 0, bytesDelivered: 0, virtualMs: 0, frameHash: null };
  const onUncaught = (err: unknown) => failures.push(`uncaught: ${(err as Error)?.stack ?? String(err)}`);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  try {
    await round(seed, options, result);
  } catch (err) {
    failures.push(`thrown: ${(err as Error)?.stack ?? String(err)}`);
  } finally {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  }
  return result;
}

async function round(seed: number, options: RoundOptions, result: RoundResult): Promise<void> {
  const { failures } = result;
  const rng = seededRandom(seed * 2654435761);
  const scale = options.scale ?? 1;
  const clock = new CountingClock();
  const hub = new MemoryHub(clock, { mtu: 1500, latencyMs: rng() < 0.5 ? 0 : randInt(rng, 1, 5) });
  const hash = options.hashFrames ? createHash('sha256') : null;
  const sample = new FrameSample();
  let phase: 'active' | 'teardown' = 'active';
  const frames = { active: 0, teardown: 0 };

  // The hostile port sees every frame (a hub) and keeps a sample to mutate and replay.
  const attacker: Link = hub.connect();
  const attackRng = seededRandom(seed ^ 0x5eed);
  attacker.setReceiver((buf, off, len) => {
    frames[phase]++;
    if (hash) {
      hash.update(clock.now().toFixed(3));
      hash.update(buf.subarray(off, off + len));
    }
    sample.observe(buf, off, len, attackRng);
  });

  const n = randInt(rng, 2, 4);
  const stacks: Stack[] = [];
  const netems: NetemLink[] = [];
  for (let i = 0; i < n; i++) {
    let link: Link = hub.connect();
    const shape = randomShape(rng);
    if (shape) {
      const netem = new NetemLink(link, clock, { seed: seed * 16 + i, tx: shape });
      netems.push(netem);
      link = netem;
    }
    stacks.push(
      await createStack({ clock, link, ip: `10.0.0.${i + 1}/24`, mac: `02:00:00:00:00:0${i + 1}`, seed: seed * 16 + i, tcp: randomTcpConfig(rng) }),
    );
  }
  const victims: Victim[] = stacks.map((s) => ({ ip: s.ip, mac: Buffer.from(s.mac) }));

  // Services and a listener whose behaviour each connection draws.
  const stops: StopService[] = [];
  const serverSockets = new Set<TcpSocket>();
  const servers: { close(): unknown }[] = [];
  const digests = new Map<string, { bytes: number; hash: ReturnType<typeof createHash> }>();
  for (const stack of stacks) {
    const names: ServiceName[] = (['echo', 'discard', 'chargen', 'http'] as const).filter(
      (name) => rng() < 0.6 && !(name === 'http' && options.noHttp),
    );
    if (names.length > 0) stops.push(await startServices(stack, names, { chargenBytes: rng() < 0.5 ? randInt(rng, 0, 200_000) : undefined }));
    const server = stack.createServer((s) => {
      serverSockets.add(s);
      s.on('error', () => {});
      s.on('close', () => serverSockets.delete(s));
      const mode = pick<ListenerMode>(rng, ['read', 'read', 'pause', 'echo', 'destroy', 'end', 'pause-resume']);
      let digest: { bytes: number; hash: ReturnType<typeof createHash> } | null = null;
      s.once('data', (d: Buffer) => {
        // The client's first 8 bytes name the connection, for the end-to-end check.
        const key = d.subarray(0, 8).toString('hex');
        digest = { bytes: 0, hash: createHash('sha1') };
        digests.set(`server:${key}`, digest);
      });
      if (mode === 'pause') s.pause();
      else s.on('data', (d: Buffer) => {
        if (digest) {
          digest.bytes += d.length;
          digest.hash.update(d);
        }
        result.bytesDelivered += d.length;
      });
      if (mode === 'echo') s.pipe(s);
      if (mode === 'pause-resume') {
        s.pause();
        clock.setTimer(randInt(rng, 10, 5000), () => s.resume());
      }
      if (mode === 'destroy') clock.setTimer(randInt(rng, 0, 2000), () => s.destroy());
      if (mode === 'end') clock.setTimer(randInt(rng, 0, 2000), () => s.end());
      s.on('end', () => {
        if (digest) digest.bytes = -digest.bytes - 1; // ended: complete
        if (mode === 'read') s.end();
      });
    });
    server.on('error', () => {});
    server.listen(LISTEN_PORT);
    servers.push(server);
  }

  // The workload: client connections and datagrams at random times.
  const activeMs = randInt(rng, 1000, 20_000);
  const clients = new Set<TcpSocket>();
  const sent = new Map<string, { bytes: number; hash: ReturnType<typeof createHash>; complete: boolean }>();
  const udpSockets: { close(): void }[] = [];
  const nConns = Math.round(randInt(rng, 0, 30) * scale);
  for (let c = 0; c < nConns; c++) {
    const from = pick(rng, stacks);
    const to = rng() < 0.1 ? from : pick(rng, stacks);
    const port = pick(rng, [LISTEN_PORT, LISTEN_PORT, LISTEN_PORT, 7, 9, 19, 80, CLOSED_PORT]);
    const total = rng() < 0.2 ? 0 : randInt(rng, 1, rng() < 0.2 ? 1_000_000 : 100_000);
    const read = pick<ClientRead>(rng, ['read', 'read', 'pause', 'pause-resume']);
    const finish = pick<ClientFinish>(rng, ['end', 'end', 'destroy', 'none', 'reset']);
    const key = Buffer.alloc(8);
    key.writeUInt32BE(seed >>> 0, 0);
    key.writeUInt32BE(c, 4);
    const startAt = randInt(rng, 0, activeMs);
    const chunk = randInt(rng, 1, 16_384);
    const gap = rng() < 0.5 ? 0 : randInt(rng, 1, 200);
    const finishAfter = randInt(rng, 0, activeMs);
    clock.setTimer(startAt, () => {
      result.connections++;
      const s = from.connect({ port, host: formatIp(to.ip) });
      clients.add(s);
      s.on('error', () => {});
      s.on('close', () => clients.delete(s));
      if (read === 'pause') s.pause();
      else {
        if (read === 'pause-resume') {
          s.pause();
          clock.setTimer(randInt(rng, 10, 5000), () => s.resume());
        }
        // chargen never stops (RFC 864), and loopback costs no virtual time: a reader of its
        // own stack's chargen would keep the clock still. Readers stop after a few MB.
        let got = 0;
        s.on('data', (d: Buffer) => {
          result.bytesDelivered += d.length;
          got += d.length;
          if (got > CLIENT_READ_LIMIT) s.destroy();
        });
      }
      const record = { bytes: 0, hash: createHash('sha1'), complete: false };
      if (port === LISTEN_PORT) sent.set(`server:${key.toString('hex')}`, record);
      let written = 0;
      const writeSome = (): void => {
        if (s.destroyed) return;
        if (written === 0 && port === LISTEN_PORT) {
          s.write(key);
          written = key.length;
          record.bytes += key.length;
          record.hash.update(key);
        }
        if (port === 80 && written === 0) {
          const req = Buffer.from(rng() < 0.7 ? 'GET / HTTP/1.1\r\nHost: t\r\n\r\n' : 'GET / HT');
          s.write(req);
          written += req.length;
          return;
        }
        if (written >= total) return;
        const len = Math.min(chunk, total - written);
        const data = Buffer.alloc(len, (written + c) & 0xff);
        s.write(data);
        record.bytes += len;
        record.hash.update(data);
        written += len;
        if (written < total) clock.setTimer(gap, writeSome);
        else if (finish === 'end') {
          record.complete = true;
          s.end();
        }
      };
      writeSome();
      if (finish === 'destroy') clock.setTimer(finishAfter, () => s.destroy());
      if (finish === 'reset') clock.setTimer(finishAfter, () => s.resetAndDestroy());
      if (finish === 'end' && total === 0) s.end();
    });
  }
  const nDatagrams = Math.round(randInt(rng, 0, 40) * scale);
  for (let d = 0; d < nDatagrams; d++) {
    const from = pick(rng, stacks);
    const dst = pick(rng, [...stacks.map((s) => formatIp(s.ip)), '10.0.0.255', '255.255.255.255']);
    const port = pick(rng, [7, 9, 19, 13, UDP_PORT]);
    const size = rng() < 0.2 ? randInt(rng, 1473, 9000) : randInt(rng, 0, 1400);
    clock.setTimer(randInt(rng, 0, activeMs), () => {
      const sock = from.createSocket('udp4');
      udpSockets.push(sock);
      sock.on('error', () => {});
      sock.bind(() => {
        if (dst.endsWith('.255')) sock.setBroadcast(true);
        sock.send(Buffer.alloc(size, d & 0xff), port, dst);
      });
    });
  }

  // The attack.
  const kinds = rng() < 0.5 ? BLIND_KINDS : ON_PATH_KINDS;
  const onPath = kinds === ON_PATH_KINDS;
  const nActs = Math.round(randInt(rng, 0, 60) * scale);
  for (let a = 0; a < nActs; a++) {
    const kind = pick(rng, kinds);
    clock.setTimer(randInt(rng, 0, activeMs), () => {
      for (const f of hostileFrames(kind, attackRng, victims, sample)) {
        result.hostileFrames++;
        attacker.send(f, 0, f.length);
      }
    });
  }
  void ATTACKER_MAC;

  // Drive: one timer at a time, then the streams' ticks, as Node's event loop would.
  const drive = async (untilMs: number, done: () => boolean = () => false): Promise<void> => {
    let idle = 0;
    while (clock.now() < untilMs && !done() && clock.fired < MAX_TIMERS && idle < 3) {
      const before = clock.fired;
      const ran = clock.runUntilTrue(() => clock.fired > before, untilMs - clock.now());
      await immediate();
      idle = ran ? 0 : idle + 1;
      if (frames.active > MAX_FRAMES_ACTIVE || frames.teardown > MAX_FRAMES_TEARDOWN) return;
    }
  };
  await drive(activeMs + randInt(rng, 0, 10_000));
  if (frames.active > MAX_FRAMES_ACTIVE) failures.push(`storm: ${frames.active} frames while active`);

  // The end-to-end check of connections that ended cleanly.
  if (!onPath)
    for (const [key, want] of sent) {
      const got = digests.get(key);
      if (!want.complete || !got || got.bytes >= 0) continue;
      const bytes = -got.bytes - 1;
      if (bytes !== want.bytes || got.hash.digest('hex') !== want.hash.digest('hex'))
        failures.push(`data: ${key} received ${bytes} bytes, sent ${want.bytes}, or the bytes differ`);
    }

  // Teardown: every socket closed, services stopped; connections must go in bounded time.
  phase = 'teardown';
  for (const s of [...clients, ...serverSockets]) s.destroy();
  for (const s of servers) s.close();
  for (const stop of stops) await stop();
  for (const u of udpSockets) {
    try {
      u.close();
    } catch {
      // already closed
    }
  }
  await immediate();
  const teardownStart = clock.now();
  const connectionsLeft = () => stacks.reduce((sum, s) => sum + s.tcp.size, 0);
  await drive(teardownStart + TEARDOWN_LIMIT_MS, () => connectionsLeft() === 0);
  if (frames.teardown > MAX_FRAMES_TEARDOWN) failures.push(`storm: ${frames.teardown} frames after close`);
  if (connectionsLeft() > 0)
    failures.push(`state: ${connectionsLeft()} connections left ${((clock.now() - teardownStart) / 1000).toFixed(0)} s after close: ${describeLeft(stacks)}`);
  if (clock.fired >= MAX_TIMERS) failures.push(`timers: ${MAX_TIMERS} timers run`);
  // Then past the reassembly timeout (30 s), whatever the attack left half-assembled.
  await drive(clock.now() + 31_000);

  // What close must give back: every byte charged to the TCP memory budget, every orphan,
  // every reassembly queue (they time out in 30 s).
  for (const stack of stacks) {
    const tcp = stack.tcp.counters;
    if (tcp.memory !== 0 || tcp.orphans !== 0) failures.push(`memory: ${formatIp(stack.ip)} holds ${tcp.memory} bytes, ${tcp.orphans} orphans after close`);
    const reassembling = stack.ipv4.reassembler?.datagrams ?? 0;
    if (reassembling !== 0) failures.push(`memory: ${formatIp(stack.ip)} still reassembles ${reassembling} datagrams`);
  }
  for (const stack of stacks)
    for (const [layer, c] of Object.entries(stack.counters()))
      for (const [reason, count] of Object.entries(c.drops))
        if (reason.startsWith('internal-error')) failures.push(`${formatIp(stack.ip)} ${layer}: ${reason} (${count})`);

  for (const stack of stacks) await stack.close();
  for (const netem of netems) netem.enabled = false;
  await immediate();
  // Whatever a closed stack left scheduled still runs: let it, then nothing may be left.
  clock.runAll(TEARDOWN_LIMIT_MS);
  await immediate();
  if (clock.pending > 0) failures.push(`timers: ${clock.pending} still scheduled after every stack closed`);

  result.frames = frames.active + frames.teardown;
  result.virtualMs = clock.now();
  result.frameHash = hash ? hash.digest('hex') : null;
}

function formatIp(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

function describeLeft(stacks: Stack[]): string {
  const parts: string[] = [];
  for (const s of stacks) {
    if (s.tcp.size === 0) continue;
    const states = new Map<string, number>();
    for (const c of s.tcp.all()) states.set(c.state, (states.get(c.state) ?? 0) + 1);
    parts.push(`${formatIp(s.ip)}: ${[...states].map(([st, k]) => `${k} ${st}`).join(', ')}`);
  }
  return parts.join('; ');
}
