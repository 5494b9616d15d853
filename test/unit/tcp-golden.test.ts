// Golden traces: the exact frame sequences of seeded runs in virtual time (two stacks, or one
// stack and a scripted peer), compared line by line with test/golden/<name>.trace. They were
// recorded from the code before the TCP refactoring (commit 5e9a68e): a pure move or split
// must reproduce every one byte for byte. Each scenario runs twice, to check it is deterministic.
//
//   npx tsx test/unit/tcp-golden.test.ts                 compare
//   GOLDEN_UPDATE=1 npx tsx test/unit/tcp-golden.test.ts rewrite test/golden/*.trace
//   GOLDEN_ONLY=bulk-clean npx tsx test/unit/tcp-golden.test.ts   scenarios whose name contains it
//
// Rule: a golden file may change only in a commit that says why, for a deliberate behaviour
// change (a fix), never as a side effect of a refactoring. Line format: test/helpers/golden.ts.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TcpSocket } from '../../src/index.ts';
import { ACK, FIN, RST, SYN } from '../../src/tcp/tcp-segment.ts';
import {
  diffLines,
  type LoseRule,
  type PairOptions,
  pattern,
  run,
  runUntil,
  tcpCounters,
  type Trace,
  type TracedHarness,
  tracedHarness,
  type TracedPair,
  tracedPair,
  Watched,
} from '../helpers/golden.ts';
import { acceptOne } from '../helpers/tcp-open.ts';

const GOLDEN_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../golden');
const UPDATE = process.env.GOLDEN_UPDATE === '1';
const ONLY = process.env.GOLDEN_ONLY;

interface Scenario {
  name: string;
  run: () => Promise<Trace>;
}
const scenarios: Scenario[] = [];
function scenario(name: string, fn: () => Promise<Trace>): void {
  scenarios.push({ name, run: fn });
}

// ---------------------------------------------------------------------------------------------
// Two-stack scenarios: A (10.0.0.1) is the client, B (10.0.0.2) listens on port 7.

interface Conn {
  p: TracedPair;
  client: Watched;
  server: () => Watched;
  maybeServer: () => Watched | null;
  serverSocket: () => TcpSocket;
}

/** A listens nothing, B listens on 7; A connects. `onServer` runs for the accepted socket. */
function connectPair(
  p: TracedPair,
  options: { client?: Record<string, unknown>; server?: Record<string, unknown>; onServer?: (s: TcpSocket, w: Watched) => void; clientData?: boolean; serverData?: boolean } = {},
): Conn {
  let server: Watched | null = null;
  let serverSocket: TcpSocket | null = null;
  p.b
    .createServer(options.server ?? {}, (s) => {
      serverSocket = s;
      server = new Watched(s, 'B', p.trace, { data: options.serverData });
      options.onServer?.(s, server);
    })
    .listen(7);
  const socket = p.a.connect({ port: 7, host: '10.0.0.2', ...(options.client ?? {}) });
  const client = new Watched(socket, 'A', p.trace, { data: options.clientData });
  return {
    p,
    client,
    server: () => {
      assert.ok(server, 'B accepted a connection');
      return server!;
    },
    maybeServer: () => server,
    serverSocket: () => serverSocket!,
  };
}

const isClosed = (w: Watched | null) => w !== null && w.events.some((e) => e.startsWith('close'));
const closedBoth = (c: Conn) => () => isClosed(c.client) && isClosed(c.maybeServer());

/** Runs until both sockets closed, then (faults off) until no connection is left; summary lines. */
async function finish(c: Conn, limitMs = 600_000, step = 1): Promise<Trace> {
  const { p } = c;
  const done = await runUntil(p.clock, closedBoth(c), limitMs, step);
  p.trace.note('-', done ? 'both sockets closed' : 'NOT both closed within the limit');
  if (p.faultsA) p.faultsA.enabled = false;
  if (p.faultsB) p.faultsB.enabled = false;
  await settle(p);
  return summarize(p, [c.client, c.server()]);
}

/** Runs (in 100 ms steps) until neither stack holds a connection, at most 3 minutes. */
async function settle(p: TracedPair): Promise<void> {
  const gone = await runUntil(p.clock, () => p.a.tcp.size + p.b.tcp.size === 0, 180_000, 100);
  p.trace.note('-', gone ? 'no connection left' : `connections left: A ${p.a.tcp.size} B ${p.b.tcp.size}`);
}

async function summarize(p: TracedPair, watched: Watched[]): Promise<Trace> {
  // Closing the stacks resets what is left (nothing, in most scenarios).
  p.trace.note('-', 'stacks close');
  await p.a.close();
  await p.b.close();
  await run(p.clock, 10);
  for (const w of watched) p.trace.result(w.summary());
  p.trace.result(tcpCounters('A', p.a));
  p.trace.result(tcpCounters('B', p.b));
  if (p.faultsA && p.faultsB) p.trace.result(`faults A ${JSON.stringify(p.faultsA.counters)} B ${JSON.stringify(p.faultsB.counters)}`);
  return p.trace;
}

/**
 * Loses chosen transmissions of chosen data segments from `who`: segment i is the i-th distinct
 * sequence number that sender sent data at (0-based); transmission 1 is the first.
 */
function loseSegments(who: string, spec: Record<number, number[]>): LoseRule {
  const index = new Map<number, number>();
  const count = new Map<number, number>();
  return (w, tcp) => {
    if (w !== who || !tcp || tcp.payloadLength === 0) return false;
    if (!index.has(tcp.seq)) index.set(tcp.seq, index.size);
    const n = (count.get(tcp.seq) ?? 0) + 1;
    count.set(tcp.seq, n);
    return spec[index.get(tcp.seq)!]?.includes(n) ?? false;
  };
}

/** Loses frames from `who` whose flags include all of `flags` (first `times` of them; all by default). */
function loseFlagged(who: string, flags: number, times = Infinity): LoseRule {
  let lost = 0;
  return (w, tcp) => {
    if (w !== who || !tcp || (tcp.flags & flags) !== flags || lost >= times) return false;
    lost++;
    return true;
  };
}

const KB = 1024;

/** A sends `bytes` and closes; B reads everything and closes after A's FIN (Node's default). */
async function bulk(options: PairOptions, bytes = 200 * KB, back = 0): Promise<Trace> {
  const p = await tracedPair({ ...options, tcp: { timeWaitMs: 2000, ...options.tcp } });
  const c = connectPair(p, { onServer: (s) => back > 0 && s.write(pattern(1, 0, back)) });
  c.client.socket.end(pattern(0, 0, bytes));
  return finish(c);
}

scenario('bulk-clean', () => bulk({}));
scenario('bulk-drop2-seed1', () => bulk({ faults: { seed: 1, drop: 0.02 } }));
scenario('bulk-drop2-seed7', () => bulk({ faults: { seed: 7, drop: 0.02 } }));
scenario('bulk-drop5-seed3-both-ways', () => bulk({ faults: { seed: 3, drop: 0.05 } }, 200 * KB, 60 * KB));
scenario('bulk-drop5-seed3-newreno', () => bulk({ faults: { seed: 3, drop: 0.05 }, tcp: { congestion: 'newreno' } }));
scenario('bulk-reorder-dup-corrupt-seed5', () => bulk({ faults: { seed: 5, drop: 0.01, duplicate: 0.03, reorder: 0.05, corrupt: 0.01, maxDelayMs: 20 } }));

// SACK recovery with chosen losses: data segments 5, 9 and 10 lost, and segment 5's first
// retransmission lost too (found again without an RTO once later data is SACKed).
const sackLosses = { 5: [1, 2], 9: [1], 10: [1] };
scenario('sack-loss-cubic', () => bulk({ lose: loseSegments('A', sackLosses), tcp: { congestion: 'cubic' } }, 100 * KB));
scenario('sack-loss-newreno', () => bulk({ lose: loseSegments('A', sackLosses), tcp: { congestion: 'newreno' } }, 100 * KB));
// Without SACK: NewReno's partial ACKs (RFC 6582), one hole per round trip.
scenario('nosack-loss-newreno', () => bulk({ lose: loseSegments('A', sackLosses), tcp: { congestion: 'newreno', sack: false } }, 100 * KB));
scenario('nosack-loss-cubic', () => bulk({ lose: loseSegments('A', sackLosses), tcp: { congestion: 'cubic', sack: false } }, 100 * KB));

// Tail loss probe (RFC 8985 7): the last three segments of a 10-segment flight are lost;
// then the probe itself as well, which the RTO repairs.
async function tailLoss(spec: Record<number, number[]>): Promise<Trace> {
  const p = await tracedPair({ lose: loseSegments('A', spec), tcp: { timeWaitMs: 2000 } });
  const c = connectPair(p, { client: { noDelay: true }, server: { allowHalfOpen: true } });
  await run(p.clock, 20);
  c.client.socket.write(pattern(0, 0, 10 * 1448));
  await run(p.clock, 5000);
  c.client.socket.end();
  c.serverSocket().end();
  return finish(c);
}
scenario('tail-loss-probe', () => tailLoss({ 7: [1], 8: [1], 9: [1] }));
scenario('tail-loss-probe-lost', () => tailLoss({ 7: [1], 8: [1], 9: [1, 2] }));

// Zero window: B's application stops reading with a 16 KB receive buffer; A's persist timer
// probes with backoff for 20 s; then B reads again and everything arrives.
scenario('zero-window-persist', async () => {
  const p = await tracedPair({ tcp: { timeWaitMs: 2000, receiveBufferSize: 16 * KB } });
  const c = connectPair(p, { onServer: (s) => s.pause() });
  c.client.socket.end(pattern(0, 0, 100 * KB));
  await run(p.clock, 20_000, 5);
  p.trace.note('B', 'resume');
  c.serverSocket().resume();
  return finish(c);
});

// Close orders.
scenario('close-client-first-time-wait', async () => {
  // A closes first and holds TIME-WAIT for the default 60 s.
  const p = await tracedPair({});
  const c = connectPair(p, { server: { allowHalfOpen: true }, onServer: (s) => s.on('end', () => s.end(pattern(1, 0, 3000))) });
  c.client.socket.end(pattern(0, 0, 5000));
  await runUntil(p.clock, closedBoth(c), 10_000);
  p.trace.note('A', `state ${[...p.a.tcp.all(), ...p.a.tcp.allTimeWait()].map((x) => x.state).join(',')}`);
  return finish(c);
});
scenario('close-server-first', async () => {
  const p = await tracedPair({ tcp: { timeWaitMs: 2000 } });
  const c = connectPair(p, { client: { allowHalfOpen: true }, onServer: (s) => s.end(pattern(1, 0, 5000)) });
  c.client.socket.on('end', () => c.client.socket.end());
  return finish(c);
});
scenario('close-simultaneous', async () => {
  const p = await tracedPair({ tcp: { timeWaitMs: 2000 } });
  const c = connectPair(p, { client: { allowHalfOpen: true }, server: { allowHalfOpen: true } });
  await run(p.clock, 20);
  // Both FINs leave in the same turn and cross on the wire: CLOSING on both sides.
  c.client.socket.end();
  c.serverSocket().end();
  return finish(c);
});
scenario('close-with-data-in-flight', async () => {
  const p = await tracedPair({ tcp: { timeWaitMs: 2000 } });
  const c = connectPair(p, { client: { allowHalfOpen: true }, server: { allowHalfOpen: true } });
  await run(p.clock, 20);
  // Both write and close in the same turn: each FIN follows data still unacknowledged.
  c.client.socket.end(pattern(0, 0, 40 * KB));
  c.serverSocket().end(pattern(1, 0, 30 * KB));
  return finish(c);
});
scenario('half-close', async () => {
  // A sends a little and ends at once; B keeps sending 50 KB for a while, then ends.
  const p = await tracedPair({ tcp: { timeWaitMs: 2000 } });
  const c = connectPair(p, {
    client: { allowHalfOpen: true },
    server: { allowHalfOpen: true },
    onServer: (s) =>
      s.on('end', () => {
        let n = 0;
        const more = () => {
          s.write(pattern(1, n * 10 * KB, 10 * KB));
          if (++n < 5) p.clock.setTimer(50, more);
          else s.end();
        };
        more();
      }),
  });
  c.client.socket.end('request');
  return finish(c);
});
scenario('destroy-rst', async () => {
  // B's application destroys its socket with more unread data than its stream buffers (what
  // Node would leave in the kernel): RST (and A gets ECONNRESET). Then a
  // second connection reset on purpose from A with resetAndDestroy().
  const p = await tracedPair({ tcp: { timeWaitMs: 2000 } });
  const accepted: Watched[] = [];
  p.b
    .createServer((s) => {
      const w = new Watched(s, `B${accepted.length + 1}`, p.trace, { data: false });
      accepted.push(w);
      if (accepted.length === 1) s.pause();
    })
    .listen(7);
  const c1 = p.a.connect({ port: 7, host: '10.0.0.2' });
  const w1 = new Watched(c1, 'A1', p.trace);
  c1.write(pattern(0, 0, 24 * KB));
  await run(p.clock, 50);
  p.trace.note('B1', 'destroy()');
  accepted[0]!.socket.destroy();
  await run(p.clock, 100);
  const c2 = p.a.connect({ port: 7, host: '10.0.0.2' });
  const w2 = new Watched(c2, 'A2', p.trace);
  await run(p.clock, 20);
  c2.write('hello');
  await run(p.clock, 100);
  p.trace.note('A2', 'resetAndDestroy()');
  c2.resetAndDestroy();
  await run(p.clock, 100);
  await settle(p);
  return summarize(p, [w1, w2, ...accepted]);
});
scenario('close-fin-lost', async () => {
  // A's first FIN (and the first retransmission) is lost; the RTO retransmits it.
  const p = await tracedPair({ lose: loseFlagged('A', FIN, 2), tcp: { timeWaitMs: 2000 } });
  const c = connectPair(p);
  c.client.socket.end(pattern(0, 0, 3000));
  return finish(c);
});

// Simultaneous open (RFC 9293 3.5 figure 8): both connect to each other's fixed port at once.
scenario('simultaneous-open', async () => {
  const p = await tracedPair({ tcp: { timeWaitMs: 2000 } });
  const sa = p.a.connect({ port: 6000, host: '10.0.0.2', localPort: 5000, allowHalfOpen: true });
  const sb = p.b.connect({ port: 5000, host: '10.0.0.1', localPort: 6000, allowHalfOpen: true });
  const wa = new Watched(sa, 'A', p.trace);
  const wb = new Watched(sb, 'B', p.trace);
  await run(p.clock, 50);
  sa.end(pattern(0, 0, 2000));
  sb.end(pattern(1, 0, 1000));
  await runUntil(p.clock, () => isClosed(wa) && isClosed(wb), 60_000);
  await settle(p);
  return summarize(p, [wa, wb]);
});

// SYN cookies between two stacks: B keeps one half-open connection at most, and A opens three
// at once: the second and third are answered with cookies (no timestamps carried: TS on).
scenario('syn-cookies-pair', async () => {
  const p = await tracedPair({ tcp: { timeWaitMs: 2000, maxSynBacklog: 1 } });
  const servers: Watched[] = [];
  p.b.createServer((s) => servers.push(new Watched(s, `B${servers.length + 1}`, p.trace))).listen({ port: 7, backlog: 10 });
  const clients: Watched[] = [];
  for (let i = 0; i < 3; i++) {
    const s = p.a.connect({ port: 7, host: '10.0.0.2' });
    clients.push(new Watched(s, `A${i + 1}`, p.trace));
    s.end(pattern(0, i * 1000, 1000 + i));
  }
  await runUntil(p.clock, () => clients.every((w) => isClosed(w)) && servers.length === 3 && servers.every((w) => isClosed(w)), 60_000);
  p.trace.note('-', `synCookiesAccepted ${p.b.tcp.counters.synCookiesAccepted}`);
  await settle(p);
  return summarize(p, [...clients, ...servers]);
});

// Keepalive (RFC 1122 4.2.3.6): probes after 2 s idle, answered; then the peer goes silent
// and the connection times out after 3 unanswered probes.
scenario('keepalive', async () => {
  let silent = false;
  const p = await tracedPair({ lose: (who) => silent && who === 'B', tcp: { timeWaitMs: 2000, keepAliveIntervalMs: 1000, keepAliveProbes: 3 } });
  const c = connectPair(p);
  c.client.socket.setKeepAlive(true, 2000);
  c.client.socket.write('x');
  await run(p.clock, 7000, 5);
  p.trace.note('-', 'B goes silent');
  silent = true;
  await runUntil(p.clock, () => isClosed(c.client), 30_000, 5);
  silent = false;
  c.serverSocket().destroy();
  await run(p.clock, 100);
  await settle(p);
  return summarize(p, [c.client, c.server()]);
});

// A connect() to a port nobody listens on: RST, ECONNREFUSED.
scenario('connect-refused', async () => {
  const p = await tracedPair({});
  const s = p.a.connect({ port: 9, host: '10.0.0.2' });
  const w = new Watched(s, 'A', p.trace);
  await runUntil(p.clock, () => isClosed(w), 10_000);
  return summarize(p, [w]);
});

// A connect() whose SYNs are all lost: retries at 1, 2 s, then ETIMEDOUT.
scenario('connect-timeout', async () => {
  const p = await tracedPair({ lose: loseFlagged('A', SYN), tcp: { synRetries: 2 } });
  const s = p.a.connect({ port: 7, host: '10.0.0.2' });
  const w = new Watched(s, 'A', p.trace);
  await runUntil(p.clock, () => isClosed(w), 60_000, 10);
  return summarize(p, [w]);
});

// ---------------------------------------------------------------------------------------------
// One stack (S, 10.0.0.2) and a scripted peer (P, 10.0.0.1).

async function harnessSummary(h: TracedHarness, watched: Watched[]): Promise<Trace> {
  h.trace.note('-', 'stack close');
  await h.stack.close();
  await h.advance(10);
  h.sent();
  for (const w of watched) h.trace.result(w.summary());
  h.trace.result(tcpCounters('S', h.stack));
  return h.trace;
}

scenario('syn-cookies-harness', async () => {
  const h = await tracedHarness({ tcp: { maxSynBacklog: 2 } });
  const accepted: Watched[] = [];
  h.stack.createServer((s) => accepted.push(new Watched(s, `S${s.remotePort}`, h.trace))).listen({ port: 80, backlog: 100 });
  await h.advance(0);
  h.clock.advance(12_345);
  // Two fill the queue; the rest get cookies: without options, with MSS and window scale, and
  // with timestamps (which carry window scale and SACK back, as Linux does).
  h.inject({ srcPort: 20000, dstPort: 80, seq: 0, flags: SYN, mss: 1460 });
  h.inject({ srcPort: 20001, dstPort: 80, seq: 100, flags: SYN, mss: 1460 });
  h.inject({ srcPort: 20002, dstPort: 80, seq: 200, flags: SYN });
  h.inject({ srcPort: 20003, dstPort: 80, seq: 300, flags: SYN, mss: 1400, windowScale: 7 });
  h.inject({ srcPort: 20004, dstPort: 80, seq: 400, flags: SYN, mss: 1460, windowScale: 9, sackPermitted: true, ts: [777, 0] });
  const synAcks = h.sent();
  const cookie = (port: number) => synAcks.find((s) => s.dstPort === port)!;
  await h.advance(10);
  h.inject({ srcPort: 20002, dstPort: 80, seq: 201, ack: cookie(20002).seq + 1, flags: ACK, payload: 'GET' });
  h.inject({ srcPort: 20003, dstPort: 80, seq: 301, ack: cookie(20003).seq + 1, flags: ACK });
  h.inject({ srcPort: 20004, dstPort: 80, seq: 401, ack: cookie(20004).seq + 1, flags: ACK, ts: [778, cookie(20004).tsVal], window: 100, payload: 'hello' });
  // A forged cookie: reset.
  h.inject({ srcPort: 20009, dstPort: 80, seq: 901, ack: cookie(20003).seq + 2, flags: ACK });
  await h.advance(50);
  for (const w of accepted) w.socket.write(`reply to ${w.socket.remotePort}`);
  await h.advance(50);
  h.trace.note('-', `synCookiesAccepted ${h.stack.tcp.counters.synCookiesAccepted} connections ${h.stack.tcp.size}`);
  return harnessSummary(h, accepted);
});

scenario('rfc5961-harness', async () => {
  const h = await tracedHarness();
  const o = await acceptOne(h);
  const w = new Watched(o.socket, 'S', h.trace);
  const s = o.peerSeq;
  const una = o.iss + 1;
  // RFC 5961 3.2: an in-window RST that is not exact gets a challenge ACK; out of window, nothing.
  h.inject({ dstPort: 80, seq: s + 100, flags: RST });
  h.inject({ dstPort: 80, seq: s + 5_000_000, flags: RST });
  h.inject({ dstPort: 80, seq: s - 1, flags: RST });
  // 4.2: a SYN in ESTABLISHED, in or out of the window: challenge ACK.
  h.inject({ dstPort: 80, seq: s + 10, flags: SYN });
  h.inject({ dstPort: 80, seq: s - 5000, flags: SYN });
  // 5.2: an ACK of unsent data is answered and dropped; a too old one is challenged; an old but
  // acceptable one lets its data in.
  h.inject({ dstPort: 80, seq: s, ack: una + 1000, flags: ACK, payload: 'bad ack' });
  h.inject({ dstPort: 80, seq: s, ack: una - 70_000, flags: ACK, payload: 'old ack' });
  h.inject({ dstPort: 80, seq: s, ack: una - 100, flags: ACK, payload: 'fine' });
  await h.advance(100);
  // PAWS is not on (no timestamps); an exact RST resets: ECONNRESET.
  h.inject({ dstPort: 80, seq: s + 4, flags: RST });
  await h.advance(10);
  return harnessSummary(h, [w]);
});

scenario('rfc5961-rate-limit', async () => {
  const h = await tracedHarness({ tcp: { challengeAckLimit: 5 } });
  const o = await acceptOne(h);
  const w = new Watched(o.socket, 'S', h.trace);
  for (let i = 0; i < 8; i++) h.inject({ dstPort: 80, seq: o.peerSeq + 1 + i, flags: RST });
  await h.advance(500);
  for (let i = 0; i < 8; i++) h.inject({ dstPort: 80, seq: o.peerSeq + 1 + i, flags: SYN });
  await h.advance(600);
  for (let i = 0; i < 8; i++) h.inject({ dstPort: 80, seq: o.peerSeq + 1 + i, flags: RST });
  h.trace.note('S', `state ${h.connection(80)!.state}`);
  return harnessSummary(h, [w]);
});

// ---------------------------------------------------------------------------------------------

function goldenPath(name: string): string {
  return path.join(GOLDEN_DIR, `${name}.trace`);
}

for (const s of scenarios) {
  if (ONLY && !s.name.includes(ONLY)) continue;
  test(s.name, async () => {
    const first = (await s.run()).text();
    const second = (await s.run()).text();
    const nd = diffLines(first, second);
    assert.ok(nd === '', `${s.name} is not deterministic (run 1 vs run 2):\n${nd}`);
    const file = goldenPath(s.name);
    if (UPDATE) {
      mkdirSync(GOLDEN_DIR, { recursive: true });
      writeFileSync(file, first);
      return;
    }
    assert.ok(existsSync(file), `no golden ${file}: record it with GOLDEN_UPDATE=1`);
    const expected = readFileSync(file, 'utf8');
    const d = diffLines(expected, first);
    if (d !== '') assert.unreachable(`${s.name} differs from ${path.relative(process.cwd(), file)}\n${d}`);
  });
}

test.run();
