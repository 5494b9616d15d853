// TCP's inside as observers see it: the probe (every segment with its connection and why it
// was sent, every state change with its event and RFC section, cwnd/ssthresh/recovery and
// RTT changes), the state x event table, and TCP's statistics in the stack's counters.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { statsSnapshot } from '../../src/services/http.ts';
import { describeTransitions, TCP_EVENTS, type TcpState } from '../../src/tcp/state.ts';
import type { CongestionSnapshot, SendReason, Tcb, TcpProbe } from '../../src/tcp/tcb.ts';
import type { TcpSegment } from '../../src/tcp/tcp-segment.ts';
import { stackPair } from '../helpers/tcp-pair.ts';

async function runUntil(clock: { advance(ms: number): void }, done: () => boolean, limitMs = 60_000): Promise<boolean> {
  for (let t = 0; t < limitMs && !done(); t++) {
    clock.advance(1);
    await new Promise((r) => setImmediate(r));
  }
  return done();
}

class RecordingProbe implements TcpProbe {
  segmentsIn = 0;
  segmentsOut = 0;
  readonly reasons = new Map<string, number>();
  readonly states: string[] = [];
  readonly congestion: string[] = [];
  rttSamples = 0;
  backoffs = 0;
  tcpSegment(direction: 'in' | 'out', conn: Tcb | null, seg: TcpSegment, reason: SendReason | null): void {
    if (direction === 'in') this.segmentsIn++;
    else {
      this.segmentsOut++;
      assert.ok(reason !== null, 'an outgoing segment says why it was sent');
      this.reasons.set(reason!, (this.reasons.get(reason!) ?? 0) + 1);
    }
    if (conn !== null) assert.ok(seg.srcPort === conn.remotePort || seg.dstPort === conn.remotePort);
  }
  tcpState(conn: Tcb, from: TcpState, to: TcpState, event: { name: string; rfc: string }): void {
    assert.is(conn.state, to);
    this.states.push(`${conn.localPort === 7 ? 'server' : 'client'} ${from} -> ${to}: ${event.name} (${event.rfc})`);
  }
  tcpCongestion(conn: Tcb, previous: CongestionSnapshot, cause: string): void {
    assert.ok(previous.cwnd !== conn.cc.cwnd || previous.ssthresh !== conn.cc.ssthresh || previous.phase !== conn.recoveryPhase);
    this.congestion.push(`${previous.cwnd}->${conn.cc.cwnd} ${conn.recoveryPhase}: ${cause}`);
  }
  tcpRtt(_conn: Tcb, cause: 'sample' | 'backoff'): void {
    if (cause === 'sample') this.rttSamples++;
    else this.backoffs++;
  }
}

test('the probe sees every segment both ways, each state change with its cause, cwnd and RTT changes', async () => {
  const { clock, a, b } = await stackPair({ faults: { seed: 11, drop: 0.03 } });
  const probeA = new RecordingProbe();
  const probeB = new RecordingProbe();
  a.setProbe(probeA);
  b.setProbe(probeB);
  const server = b.createServer((s) => {
    s.resume();
    s.on('end', () => s.end());
  });
  server.listen(7);
  const client = a.connect({ host: '10.0.0.2', port: 7 });
  let closed = false;
  client.on('close', () => (closed = true));
  client.resume(); // a socket nobody reads never closes (the Node-compatibility issue)
  client.end(Buffer.alloc(200_000, 1));
  const done = await runUntil(clock, () => closed, 120_000);
  assert.ok(done, `the transfer completes: ${probeA.states.join("; ")} | ${probeB.states.join("; ")} | ${client.readyState}`);
  await runUntil(clock, () => false, 70_000); // TIME-WAIT runs out

  // Every segment TCP counted, the probe saw.
  assert.is(probeA.segmentsOut, a.tcp.counters.tx);
  assert.is(probeA.segmentsIn, a.tcp.counters.rx);
  assert.is(probeB.segmentsOut, b.tcp.counters.tx);
  assert.ok(probeA.reasons.get('data')! > 100);
  assert.ok((probeA.reasons.get('retransmit') ?? 0) + (probeA.reasons.get('fast-retransmit') ?? 0) + (probeA.reasons.get('sack-retransmit') ?? 0) > 0, 'loss shows as retransmissions with a reason');

  assert.equal(probeA.states, [
    `client CLOSED -> SYN-SENT: ${TCP_EVENTS.activeOpen.name} (RFC 9293 3.10.1)`,
    `client SYN-SENT -> ESTABLISHED: ${TCP_EVENTS.synAckReceived.name} (RFC 9293 3.10.7.3, fourth)`,
    `client ESTABLISHED -> FIN-WAIT-1: ${TCP_EVENTS.closeCall.name} (RFC 9293 3.10.4)`,
    `client FIN-WAIT-1 -> FIN-WAIT-2: ${TCP_EVENTS.finAcked.name} (RFC 9293 3.10.7.4, fifth)`,
    `client FIN-WAIT-2 -> TIME-WAIT: ${TCP_EVENTS.finReceived.name} (RFC 9293 3.10.7.4, eighth)`,
    `client TIME-WAIT -> CLOSED: ${TCP_EVENTS.timeWaitTimeout.name} (RFC 9293 3.10.8)`,
  ]);
  assert.equal(probeB.states, [
    'server CLOSED -> SYN-RECEIVED: SYN on a listening port (RFC 9293 3.10.7.2)',
    'server SYN-RECEIVED -> ESTABLISHED: ACK of our SYN (RFC 9293 3.10.7.4, fifth)',
    'server ESTABLISHED -> CLOSE-WAIT: FIN received (RFC 9293 3.10.7.4, eighth)',
    'server CLOSE-WAIT -> LAST-ACK: CLOSE call (RFC 9293 3.10.4)',
    'server LAST-ACK -> CLOSED: ACK of our FIN (RFC 9293 3.10.7.4, fifth)',
  ]);
  assert.ok(probeA.congestion.some((c) => c.includes('slow start')));
  assert.ok(probeA.congestion.some((c) => /loss|timeout/.test(c)), `a loss moved cwnd: ${probeA.congestion.slice(0, 5).join('; ')}`);
  assert.ok(probeA.rttSamples > 10);
});

test('a probe that throws is counted, never felt by the stack; setProbe(null) removes it', async () => {
  const { clock, a, b } = await stackPair();
  let calls = 0;
  a.setProbe({
    tcpState() {
      calls++;
      throw new Error('probe bug');
    },
  });
  b.createServer((s) => s.pipe(s)).listen(7);
  const client = a.connect({ host: '10.0.0.2', port: 7 });
  let echoed = '';
  client.on('data', (d: Buffer) => (echoed += d.toString()));
  client.write('hello');
  assert.ok(await runUntil(clock, () => echoed === 'hello', 5_000), 'the connection works');
  assert.ok(calls >= 2);
  assert.is(a.counters().ethernet!.drops['probe-error: probe bug'], calls);
  a.setProbe(null);
  client.end();
  await runUntil(clock, () => false, 100);
  assert.is(a.counters().ethernet!.drops['probe-error: probe bug'], calls, 'no probe after setProbe(null)');
});

test('the probe hears of every drop with its layer and reason', async () => {
  const { clock, a, b } = await stackPair();
  const drops: string[] = [];
  b.setProbe({ drop: (layer, reason) => drops.push(`${layer} ${reason}`) });
  const client = a.connect({ host: '10.0.0.2', port: 1 });
  let error = '';
  client.on('error', (e: Error & { code?: string }) => (error = e.code ?? ''));
  assert.ok(await runUntil(clock, () => error !== '', 5_000));
  assert.is(error, 'ECONNREFUSED');
  assert.equal(drops, ['tcp tcp-port-closed']);
  b.setProbe(null);
  a.connect({ host: '10.0.0.2', port: 1 }).on('error', () => {});
  await runUntil(clock, () => false, 100);
  assert.equal(drops, ['tcp tcp-port-closed'], 'none after setProbe(null)');
  assert.is(b.counters().tcp!.drops['tcp-port-closed'], 2);
});

test('the state x event table: every state is reached, every event names its RFC section', () => {
  const lines = describeTransitions();
  const targets = new Set(lines.map((l) => l.split('--> ')[1]));
  for (const s of ['SYN-SENT', 'SYN-RECEIVED', 'ESTABLISHED', 'FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSE-WAIT', 'CLOSING', 'LAST-ACK', 'TIME-WAIT', 'CLOSED']) {
    assert.ok(targets.has(s), `${s} is reachable`);
  }
  for (const e of Object.values(TCP_EVENTS)) assert.match(e.rfc, /^RFC \d+/);
});

test("TCP's statistics are in counters() and the HTTP service's /stats", async () => {
  const { clock, a, b } = await stackPair({ faults: { seed: 3, drop: 0.05 } });
  b.createServer((s) => s.resume()).listen(9);
  const client = a.connect({ host: '10.0.0.2', port: 9 });
  client.resume();
  client.end(Buffer.alloc(100_000, 2));
  let closed = false;
  client.on('close', () => (closed = true));
  assert.ok(await runUntil(clock, () => closed || a.tcp.counters.retransmits > 3, 120_000));
  const tcp = a.counters().tcp as { stats: Record<string, number> };
  assert.ok(tcp.stats.retransmits! > 0, 'retransmissions are counted');
  assert.is(tcp.stats.retransmits, a.tcp.counters.retransmits);
  assert.ok('fastRetransmits' in tcp.stats && 'timeouts' in tcp.stats && 'synCookiesSent' in tcp.stats);
  const snapshot = statsSnapshot(a) as { tcp: { stats: Record<string, number> } };
  assert.is(snapshot.tcp.stats.retransmits, a.tcp.counters.retransmits);
  assert.is(b.counters().tcp!.rx > 0, true);
});

test('each socket has its own TCP counters, and the layer sums them', async () => {
  const { clock, a, b } = await stackPair({ faults: { seed: 3, drop: 0.05 } });
  b.createServer((s) => s.resume()).listen(9);
  const sockets = [0, 1].map(() => a.connect({ host: '10.0.0.2', port: 9 }));
  assert.is(sockets[0]!.tcpStats()!.segmentsOut, 1, 'the SYN');
  let closed = 0;
  for (const s of sockets) {
    s.resume();
    s.on('close', () => closed++);
    s.end(Buffer.alloc(60_000, 3));
  }
  assert.ok(await runUntil(clock, () => closed === 2, 120_000));
  const stats = sockets.map((s) => s.tcpStats()!);
  for (const st of stats) {
    assert.ok(st.bytesSent >= 60_000 && st.bytesAcked >= 60_000, JSON.stringify(st));
    assert.ok(st.segmentsIn > 0 && st.segmentsOut > 40);
    assert.is(st.bytesSent - st.bytesRetransmitted, 60_000, 'every byte sent once, and again only as a retransmission');
  }
  for (const k of ['retransmits', 'timeouts', 'fastRetransmits', 'tailLossProbes'] as const) {
    assert.is(stats[0]![k] + stats[1]![k], a.tcp.counters[k], `${k}: the layer's count is the sum of the connections'`);
  }
  assert.ok(a.tcp.counters.retransmits > 0, 'loss was repaired');
});

test.run();
