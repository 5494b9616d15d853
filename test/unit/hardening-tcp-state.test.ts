// Issue 10 item 6, "state that never expires": every piece of TCP state an outsider can make
// has a bound and a timeout, as Linux's: zero-window probes (tcp_probe_timer, tcp_retries2,
// tcp_orphan_retries, TCP_USER_TIMEOUT), FIN-WAIT-2 orphans (tcp_fin_timeout), compact and
// capped TIME-WAIT (inet_timewait_sock, tcp_max_tw_buckets), orphans (tcp_max_orphans), the
// buffer budget (tcp_mem) and a connection cap. All in virtual time.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { echoConnection } from '../../src/services/tcp.ts';
import type { Socket } from '../../src/tcp/socket.ts';
import { acceptOne, connectOne } from '../helpers/tcp-open.ts';
import { ACK, ack, expectSegment, FIN, flags, PEER_IP, RST, seq, SYN, type TcpHarness as Harness, TcpHarness } from '../helpers/tcp-harness.ts';
import { stackPair } from '../helpers/tcp-pair.ts';

const MiB = 1024 * 1024;

/** The peer closes its window: an ACK of what it has, window 0. */
function closeWindow(h: Harness, o: { peerSeq: number; iss: number }): void {
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, window: 0 });
}

function errorOf(socket: Socket): { code: string } {
  const e = { code: '' };
  socket.on('error', (err: Error & { code?: string }) => (e.code = err.code ?? err.message));
  return e;
}

test('item 6a: a zero window whose peer vanished fails with ETIMEDOUT after tcp_retries2 unanswered probes', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  const conn = h.connection(80)!;
  const error = errorOf(o.socket);
  closeWindow(h, o);
  o.socket.write(Buffer.alloc(10_000, 1));
  await h.advance(0);
  h.none();
  // Far less than the 168 hours it held before: 15 probes backed off up to the RTO maximum.
  await h.advance(3_600_000, 1000);
  assert.is(error.code, 'ETIMEDOUT');
  assert.is(h.stateOf(80), 'CLOSED');
  assert.is(conn.stats.persistProbes, 15, 'tcp_retries2 probes, then the abort');
  assert.is(h.stack.tcp.memory.allocated, 0, 'its buffers went back to the budget');
});

test('item 6a: a peer that answers the probes (window still zero) keeps the connection, as RFC 1122 4.2.2.17 asks', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  const error = errorOf(o.socket);
  closeWindow(h, o);
  o.socket.write(Buffer.alloc(10_000, 1));
  await h.advance(0);
  for (let t = 0; t < 7200; t++) {
    await h.advance(1000);
    // Every probe is answered: an acceptable ACK resets the count (Linux tcp_ack, icsk_probes_out).
    for (const s of h.sent()) if (s.payload.length > 0) closeWindow(h, o);
  }
  assert.is(error.code, '');
  assert.is(h.stateOf(80), 'ESTABLISHED');
  assert.ok(h.connection(80)!.stats.persistProbes > 15);
});

test('item 6a: the user timeout (TCP_USER_TIMEOUT) ends unanswered probing and unacknowledged data', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  const error = errorOf(o.socket);
  o.socket.setUserTimeout(10_000);
  closeWindow(h, o);
  o.socket.write(Buffer.alloc(10_000, 1));
  await h.advance(0);
  h.sent();
  // The first probe goes after one persist interval (the RTO: SRTT, a microsecond here, plus
  // 200 ms); the timeout counts from it.
  await h.advance(10_200, 1);
  assert.is(h.stateOf(80), 'ESTABLISHED');
  await h.advance(1, 1);
  assert.is(error.code, 'ETIMEDOUT');
  assert.is(h.stateOf(80), 'CLOSED');

  // Data that is never acknowledged: the same bound, well before 15 retransmissions.
  const h2 = await TcpHarness.create({ tcp: { userTimeoutMs: 5_000 } });
  const o2 = await acceptOne(h2);
  const error2 = errorOf(o2.socket);
  o2.socket.write('lost');
  await h2.advance(4_999, 1);
  assert.is(error2.code, '');
  await h2.advance(1, 1);
  assert.is(error2.code, 'ETIMEDOUT');
  assert.ok(h2.stack.tcp.counters.timeouts <= 6, `${h2.stack.tcp.counters.timeouts} timeouts`);
});

test('item 6b: an orphan in FIN-WAIT-1 with a zero window is dropped after tcp_orphan_retries probes', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h);
  const conn = h.connection(80)!;
  closeWindow(h, o);
  o.socket.end(Buffer.alloc(100_000, 2));
  await h.advance(0);
  o.socket.destroy();
  await h.advance(0);
  assert.is(conn.state, 'FIN-WAIT-1');
  assert.ok(conn.orphaned);
  assert.is(h.stack.tcp.counters.orphans, 1);
  await h.advance(3_600_000, 1000);
  assert.is(h.stateOf(80), 'CLOSED');
  // tcp_orphan_retries = 0 means 8 while the connection looks alive.
  assert.is(conn.stats.persistProbes, 8);
  assert.is(h.stack.tcp.counters.orphans, 0);
  assert.is(h.stack.tcp.memory.allocated, 0);
});

test('item 6c: an orphan that reached FIN-WAIT-2 through end() then destroy() is dropped after finWait2Ms', async () => {
  const h = await TcpHarness.create({ tcp: { finWait2Ms: 3000 } });
  const o = await acceptOne(h, 80, 1000, {}, { allowHalfOpen: true });
  o.socket.end();
  await h.advance(0);
  expectSegment(h.one(), flags(FIN | ACK));
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 2, flags: ACK });
  assert.is(h.stateOf(80), 'FIN-WAIT-2');
  // Not an orphan yet: the application may still read; no timeout.
  await h.advance(10_000, 1000);
  assert.is(h.stateOf(80), 'FIN-WAIT-2');
  o.socket.destroy();
  await h.advance(2999);
  assert.is(h.stateOf(80), 'FIN-WAIT-2');
  await h.advance(1);
  assert.is(h.stateOf(80), 'CLOSED');
  assert.is(h.stack.tcp.counters.orphans, 0);
});

test('item 6d: TIME-WAIT is a compact entry that re-ACKs a retransmitted FIN, restarts, and ends on an exact RST', async () => {
  const h = await TcpHarness.create({ tcp: { timeWaitMs: 5000 } });
  const o = await acceptOne(h, 80, 1000, { ts: [100, 0] });
  const conn = h.connection(80)!;
  o.socket.end(Buffer.alloc(5000, 3));
  await h.advance(0);
  const fin = h.sent().find((s) => s.flags & FIN)!;
  const finAck = fin.seq + fin.payload.length + 1;
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: finAck, flags: FIN | ACK, ts: [200, fin.tsVal] });
  const last = expectSegment(h.one(), flags(ACK), seq(finAck), ack(o.peerSeq + 1));
  assert.is(h.stateOf(80), 'TIME-WAIT');
  // The connection itself is done: no table entry, no buffers, nothing charged.
  assert.is(h.connection(80), undefined);
  assert.is(conn.state, 'CLOSED');
  assert.is(h.stack.tcp.counters.connections, 0);
  assert.is(h.stack.tcp.counters.timeWait, 1);
  assert.is(h.stack.tcp.memory.allocated, 0);
  // A retransmitted FIN: the same ACK again (window and timestamp echo kept), the wait restarts.
  await h.advance(4000);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: finAck, flags: FIN | ACK, ts: [300, fin.tsVal] });
  const again = expectSegment(h.one(), flags(ACK), seq(finAck), ack(o.peerSeq + 1));
  assert.is(again.window, last.window);
  assert.is(again.tsEcr, 200);
  // A bare in-window ACK gets nothing; an old timestamp (PAWS) gets an ACK.
  h.inject({ dstPort: 80, seq: o.peerSeq + 1, ack: finAck, flags: ACK, ts: [300, fin.tsVal] });
  h.none();
  h.inject({ dstPort: 80, seq: o.peerSeq + 1, ack: finAck, flags: ACK, ts: [50, fin.tsVal] });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 1));
  await h.advance(4999);
  assert.is(h.stateOf(80), 'TIME-WAIT');
  // An inexact reset is ignored; an exact one ends the wait (Linux, tcp_rfc1337 = 0).
  h.inject({ dstPort: 80, seq: o.peerSeq + 5, flags: RST });
  assert.is(h.stateOf(80), 'TIME-WAIT');
  h.inject({ dstPort: 80, seq: o.peerSeq + 1, flags: RST });
  h.none();
  assert.is(h.stateOf(80), 'CLOSED');
  assert.is(h.stack.tcp.size, 0);
});

test('item 6d: a TIME-WAIT entry answers out-of-window segments at most once per tcp_invalid_ratelimit; a retransmitted FIN always', async () => {
  const h = await TcpHarness.create({ tcp: { timeWaitMs: 60_000 } });
  const o = await acceptOne(h, 80, 1000, { ts: [100, 0] });
  o.socket.end();
  await h.advance(0);
  const fin = h.sent().find((s) => s.flags & FIN)!;
  const finAck = fin.seq + 1;
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: finAck, flags: FIN | ACK, ts: [200, fin.tsVal] });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 1));
  assert.is(h.stateOf(80), 'TIME-WAIT');
  // A peer that keeps sending out-of-window data (the other half of an ACK storm): one ACK per 500 ms.
  let acks = 0;
  for (let i = 0; i < 100; i++) {
    h.inject({ dstPort: 80, seq: o.peerSeq + 100_000, ack: finAck, flags: ACK, ts: [300, fin.tsVal], payload: Buffer.alloc(10) });
    acks += h.sent().length;
    await h.advance(10);
  }
  assert.is(acks, 2, 'one ACK at 0 ms and one at 500 ms in 1 s');
  assert.ok(h.stack.tcp.counters.invalidAcksSkipped >= 98);
  // The peer's retransmitted FIN is answered at once, limit or not.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: finAck, flags: FIN | ACK, ts: [400, fin.tsVal] });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 1));
});

test('item 6d: a new SYN reopens a TIME-WAIT 4-tuple; past maxTimeWait a connection closes without TIME-WAIT, counted', async () => {
  const h = await TcpHarness.create({ tcp: { timeWaitMs: 60_000, maxTimeWait: 1 } });
  const o = await acceptOne(h);
  o.socket.end();
  await h.advance(0);
  h.sent();
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 2, flags: FIN | ACK });
  h.sent();
  assert.is(h.stateOf(80), 'TIME-WAIT');
  // An old SYN is answered with an ACK; a newer one opens a new connection (RFC 6191).
  h.inject({ dstPort: 80, seq: o.peerSeq - 100, flags: SYN });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 1));
  h.inject({ dstPort: 80, seq: o.peerSeq + 100_000, flags: SYN });
  expectSegment(h.one(), flags(SYN | ACK), ack(o.peerSeq + 100_001));
  assert.is(h.stateOf(80), 'SYN-RECEIVED');
  assert.is(h.stack.tcp.counters.timeWait, 0);

  // One entry allowed: the second connection to reach TIME-WAIT closes at once.
  for (const port of [40001, 40002]) {
    let socket: Socket | null = null;
    o.server.once('connection', (s: Socket) => (socket = s));
    h.inject({ srcPort: port, dstPort: 80, seq: 7000, flags: SYN, mss: 1460 });
    const synAck = expectSegment(h.one(), flags(SYN | ACK));
    h.inject({ srcPort: port, dstPort: 80, seq: 7001, ack: synAck.seq + 1, flags: ACK });
    await h.advance(0);
    socket!.end();
    await h.advance(0);
    h.sent();
    h.inject({ srcPort: port, dstPort: 80, seq: 7001, ack: synAck.seq + 2, flags: FIN | ACK });
    expectSegment(h.one(), flags(ACK), ack(7002));
  }
  assert.is(h.stateOf(80, 40001), 'TIME-WAIT');
  assert.is(h.stateOf(80, 40002), 'CLOSED');
  assert.is(h.stack.tcp.counters.timeWait, 1);
  assert.is(h.stack.tcp.counters.timeWaitOverflows, 1);
});

test('item 6d: connect() does not reuse a 4-tuple in TIME-WAIT (EADDRINUSE, as Linux without tcp_tw_reuse)', async () => {
  const h = await TcpHarness.create();
  const o = await connectOne(h);
  o.socket.end();
  await h.advance(0);
  const fin = expectSegment(h.one(), flags(FIN | ACK));
  h.inject({ srcPort: 8080, dstPort: o.localPort, seq: o.peerSeq, ack: fin.seq + 1, flags: FIN | ACK });
  expectSegment(h.one(), flags(ACK), ack(o.peerSeq + 1));
  assert.is(h.stateOf(o.localPort, 8080), 'TIME-WAIT');
  const again = h.stack.connect({ port: 8080, host: '10.0.0.1', localPort: o.localPort });
  const error = errorOf(again);
  await h.advance(0);
  h.none();
  assert.is(error.code, 'EADDRINUSE');
});

test('item 6e: past maxOrphans an orphan is reset and dropped (tcp_max_orphans)', async () => {
  const h = await TcpHarness.create({ tcp: { maxOrphans: 1 } });
  const sockets: Socket[] = [];
  const server = h.stack.createServer((s) => sockets.push(s));
  server.listen(80);
  await h.advance(0);
  const isns: number[] = [];
  for (const port of [40001, 40002]) {
    h.inject({ srcPort: port, dstPort: 80, seq: 1000, flags: SYN, mss: 1460 });
    const synAck = expectSegment(h.one(), flags(SYN | ACK));
    isns.push(synAck.seq);
    // Window closed: the data the application leaves behind cannot go.
    h.inject({ srcPort: port, dstPort: 80, seq: 1001, ack: synAck.seq + 1, flags: ACK, window: 0 });
  }
  await h.advance(0);
  for (const s of sockets) {
    s.end(Buffer.alloc(5000, 4));
    s.destroy();
  }
  await h.advance(0);
  const segs = h.sent();
  // The first orphan waits; the second is one too many: reset.
  assert.is(h.stateOf(80, 40001), 'FIN-WAIT-1');
  assert.is(h.stateOf(80, 40002), 'CLOSED');
  const rst = segs.find((s) => s.flags & RST);
  expectSegment(rst, flags(RST | ACK), seq(isns[1]! + 1));
  assert.is(h.stack.tcp.counters.abortOnMemory, 1);
  assert.is(h.stack.tcp.counters.orphans, 1);
});

test('item 6f: echo with clients that never read stays within the buffer budget (tcp_mem)', async () => {
  const budget = { memoryLow: 3 * MiB, memoryPressure: 4 * MiB, memoryHigh: 6 * MiB };
  const { clock, a, b } = await stackPair({ tcp: budget });
  b.createServer((s) => {
    s.on('error', () => {});
    echoConnection(s);
  }).listen(7);
  const clients: Socket[] = [];
  const n = 12;
  for (let i = 0; i < n; i++) {
    const c = a.connect({ host: '10.0.0.2', port: 7 });
    c.pause(); // never reads what comes back
    c.on('error', () => {});
    const chunk = Buffer.alloc(64 * 1024, i);
    const pump = (): void => {
      while (c.write(chunk)) {}
    };
    c.on('drain', pump);
    c.on('connect', pump);
    clients.push(c);
  }
  let peak = 0;
  for (let t = 0; t < 20_000; t += 10) {
    clock.advance(10);
    await new Promise((r) => setImmediate(r));
    peak = Math.max(peak, b.tcp.memory.allocated);
  }
  const counters = b.tcp.counters;
  // Without the budget each connection held 2 MiB (a full send ring, a full unread receive
  // buffer): 24 MiB here. With it, the high mark and each connection's minimum.
  assert.ok(peak <= budget.memoryHigh + n * 2 * 64 * 1024, `peak ${(peak / MiB).toFixed(2)} MiB`);
  assert.ok(peak > budget.memoryPressure, 'the clients pushed it to the limit');
  assert.is(counters.memory, b.tcp.memory.allocated);
  assert.ok(counters.memoryPressures >= 1);
  assert.ok((counters.drops['tcp-memory-limit'] ?? 0) > 0, JSON.stringify(counters.drops));
  // Every connection still works and the budget empties when they end.
  assert.is(counters.connections, n);
  // Their few unread bytes count as read (Node's buffer holds them): each closes with a FIN,
  // and is reset once the echo's data reaches the orphan (a few seconds of zero-window probes).
  for (const c of clients) c.destroy();
  for (let t = 0; t < 30_000; t += 10) {
    clock.advance(10);
    await new Promise((r) => setImmediate(r));
  }
  assert.is(b.tcp.memory.allocated, 0);
  assert.is(b.tcp.memory.underPressure, false);
});

test('item 6g: past maxConnections a SYN is dropped (a full queue, tcp_abort_on_overflow = 0) and connect() fails with ENOBUFS', async () => {
  const h = await TcpHarness.create({ tcp: { maxConnections: 1 } });
  await acceptOne(h);
  h.inject({ srcPort: 40001, dstPort: 80, seq: 5000, flags: SYN, mss: 1460 });
  h.none();
  assert.is(h.stack.tcp.counters.drops['tcp-connection-limit'], 1);
  const client = h.stack.connect(8080, '10.0.0.1');
  const error = errorOf(client);
  await h.advance(0);
  h.none();
  assert.is(error.code, 'ENOBUFS');
  assert.is(h.stack.tcp.counters.drops['tcp-connection-limit'], 2);
  assert.is(h.stack.tcp.find(80, PEER_IP, 40001), undefined);
});

test.run();
