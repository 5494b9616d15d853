// socket.info() (src/tcp/info.ts): Linux's struct tcp_info, field by field, against the TCB
// and the exchange that made it, in virtual time: the handshake's options, the bytes and
// segments of a transfer, the scoreboard during SACK recovery, the RTO's backoff and Loss
// state, persist probes, RTT against the known virtual RTT, the last_* ages; and
// stack.connections() / GET /connections (listeners, TIME-WAIT).

import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startServices } from '../../src/services/index.ts';
import '../../src/services/all.ts';
import type { Stack } from '../../src/stack.ts';
import { TCP_CA_Disorder, TCP_CA_Loss, TCP_CA_Open, TCP_CA_Recovery, TCP_INFINITE_SSTHRESH, type TcpInfo } from '../../src/tcp/info.ts';
import type { Socket } from '../../src/tcp/socket.ts';
import { windowScaleFor } from '../../src/tcp/window.ts';
import { acceptOne } from '../helpers/tcp-open.ts';
import { ACK, expectSegment, flags, payloadLength, seq, TcpHarness } from '../helpers/tcp-harness.ts';
import { stackPair } from '../helpers/tcp-pair.ts';
import { realTimeStacks } from '../helpers/real-pair.ts';

const MSS = 1460;
/** The payload of a segment with timestamps on a 1500-byte link. */
const TS_MSS = 1448;

test('after a handshake: state, options, window scales, MSS, the SYN-ACK RTT, cwnd and ssthresh', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: MSS, windowScale: 7, sackPermitted: true, ts: [100, 0] }, {}, 100);
  const i = o.socket.info();
  assert.is(i.state, 'ESTABLISHED');
  assert.is(i.tcpi_state, 1);
  assert.is(i.tcpi_ca_state, TCP_CA_Open);
  assert.is(i.tcpi_options, 1 | 2 | 4, 'TIMESTAMPS | SACK | WSCALE');
  assert.is(i.tcpi_snd_wscale, 7, 'the peer offered 7');
  assert.is(i.tcpi_rcv_wscale, windowScaleFor(h.stack.tcp.config.receiveBufferSize));
  assert.is(i.tcpi_snd_mss, TS_MSS, 'the peer MSS less the timestamp option');
  assert.is(i.tcpi_advmss, TS_MSS, 'as Linux: advmss less the timestamp option');
  assert.is(i.tcpi_rcv_mss, 536, 'tcp_initialize_rcv_mss: at most TCP_MSS_DEFAULT before data');
  assert.is(i.tcpi_pmtu, 1500);
  assert.is(i.tcpi_snd_cwnd, 10, 'the initial window, in segments');
  assert.is(i.tcpi_snd_ssthresh, TCP_INFINITE_SSTHRESH);
  // The SYN-ACK was timed: 100 ms (the ACK echoed no timestamp of ours).
  assert.is(i.tcpi_rtt, 100_000);
  assert.is(i.tcpi_rttvar, 50_000);
  assert.is(i.tcpi_min_rtt, 100_000);
  assert.is(i.tcpi_rto, 300_000, 'SRTT + 4 RTTVAR');
  assert.is(i.tcpi_segs_in, 2, 'SYN and ACK');
  assert.is(i.tcpi_segs_out, 1, 'SYN-ACK');
  assert.is(i.tcpi_bytes_acked, 0, 'a passive open starts past its SYN, as Linux');
  assert.is(i.tcpi_delivered, 1, 'the SYN-ACK');
  assert.is(i.tcpi_unacked, 0);
  assert.is(i.tcpi_ato, 0, 'no data yet');
  assert.is(i.tcpi_reordering, 3);
  assert.is(i.tcpi_snd_wnd, 65535 << 7);
});

test('without options: no option bits, no scales, the MSS as given', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: 1200 });
  const i = o.socket.info();
  assert.is(i.tcpi_options, 0);
  assert.is(i.tcpi_snd_wscale, 0);
  assert.is(i.tcpi_rcv_wscale, 0);
  assert.is(i.tcpi_snd_mss, 1200);
  assert.is(i.tcpi_advmss, MSS);
});

test('receiving: bytes and data segments in, the peer MSS measured, the ages of the last data and ACK', async () => {
  const h = await TcpHarness.create();
  const o = await acceptOne(h, 80, 1000, { mss: MSS, ts: [100, 0] });
  let tsVal = 200;
  let offset = 0;
  const ts = () => [tsVal++, h.stack.tcp.timestampNow()] as [number, number];
  for (let k = 0; k < 3; k++) {
    h.inject({ dstPort: 80, seq: o.peerSeq + offset, ack: o.iss + 1, flags: ACK, payload: Buffer.alloc(TS_MSS, k), ts: ts() });
    offset += TS_MSS;
  }
  await h.advance(0);
  h.sent();
  let i = o.socket.info();
  assert.is(i.tcpi_bytes_received, 3 * TS_MSS);
  assert.is(i.tcpi_data_segs_in, 3);
  assert.is(i.tcpi_segs_in, 2 + 3);
  assert.is(i.tcpi_rcv_mss, TS_MSS, 'tcp_measure_rcv_mss: full segments');
  assert.is(i.tcpi_ato, 40_000, 'the delayed ACK timeout once data came');
  assert.is(i.tcpi_last_data_recv, 0);
  assert.is(i.tcpi_data_segs_out, 0);
  await h.advance(500);
  i = o.socket.info();
  assert.is(i.tcpi_last_data_recv, 500);
  assert.is(i.tcpi_last_ack_recv, 500);
  // The peer's FIN counts in bytes_received, as Linux's rcv_nxt advance.
  h.inject({ dstPort: 80, seq: o.peerSeq + offset, ack: o.iss + 1, flags: ACK | 1, ts: ts() });
  await h.advance(0);
  i = o.socket.info();
  assert.is(i.state, 'CLOSE-WAIT');
  assert.is(i.tcpi_state, 8);
  assert.is(i.tcpi_bytes_received, 3 * TS_MSS + 1);
});

test('sending in a stack pair: bytes, segments and delivery against the peer, RTT against the virtual RTT', async () => {
  const { clock, a, b } = await stackPair({ latencyMs: 5 });
  let serverSocket: Socket | null = null;
  let received = 0;
  b.createServer((s) => {
    serverSocket = s;
    s.on('data', (d: Buffer) => (received += d.length));
  }).listen(9);
  const N = 200_000;
  const client = a.connect(9, '10.0.0.2');
  clock.advance(0);
  await new Promise((r) => setImmediate(r));
  client.write(Buffer.alloc(N, 7));
  for (let t = 0; t < 2000 && received < N; t += 5) {
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
  }
  clock.advance(200);
  await new Promise((r) => setImmediate(r));
  assert.is(received, N);
  const c = client.info();
  const s = serverSocket!.info();
  const segments = Math.ceil(N / TS_MSS);
  assert.is(c.tcpi_bytes_acked, N + 1, 'the data and our SYN, as Linux counts snd_una');
  assert.is(c.tcpi_bytes_sent, N);
  assert.is(c.tcpi_bytes_retrans, 0);
  assert.is(c.tcpi_total_retrans, 0);
  assert.is(c.tcpi_data_segs_out, segments);
  assert.is(s.tcpi_data_segs_in, segments);
  assert.is(s.tcpi_bytes_received, N);
  assert.is(c.tcpi_segs_out, s.tcpi_segs_in, 'no loss: what one sent the other received');
  assert.is(s.tcpi_segs_out, c.tcpi_segs_in);
  assert.is(c.tcpi_delivered, segments + 1, 'the data segments and the SYN');
  assert.is(c.tcpi_unacked, 0);
  assert.is(c.tcpi_notsent_bytes, 0);
  assert.ok(c.tcpi_delivery_rate > 0, `delivery rate ${c.tcpi_delivery_rate}`);
  // The link's RTT is 10 ms (5 ms each way); delayed ACKs add to some samples.
  assert.is(c.tcpi_min_rtt, 10_000, 'RACK measures from the send times');
  assert.ok(c.tcpi_rtt >= 10_000 && c.tcpi_rtt <= 50_000, `srtt ${c.tcpi_rtt}`);
  assert.ok(c.tcpi_rttvar > 0);
  assert.ok(c.tcpi_snd_cwnd > 10, 'slow start grew cwnd');
  assert.is(c.tcpi_snd_ssthresh, TCP_INFINITE_SSTHRESH, 'no loss');
  // The last data went 5 ms (one way) before it arrived; both at least 200 ms ago.
  assert.ok(c.tcpi_last_data_sent >= 200);
  assert.is(c.tcpi_last_data_sent - s.tcpi_last_data_recv, 5);
  // The receiver's RTT estimate (tcp_rcv_rtt_measure_ts): from its ACK's timestamp to the data echoing it.
  assert.ok(s.tcpi_rcv_rtt >= 10_000 && s.tcpi_rcv_rtt <= 60_000, `rcv_rtt ${s.tcpi_rcv_rtt}`);
  assert.ok(s.tcpi_rcv_space > 10 * TS_MSS, `rcv_space grew: ${s.tcpi_rcv_space}`);
  assert.is(s.tcpi_rcv_mss, TS_MSS);
  await a.close();
  await b.close();
});

test('SACK recovery: unacked, sacked, lost and retrans segments, ca_state Recovery, then Open', async () => {
  const h = await TcpHarness.create({ tcp: { timestamps: false } });
  const o = await acceptOne(h, 80, 1000, { mss: MSS, sackPermitted: true }, {}, 100);
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(10 * MSS, 1));
  assert.is(h.sent().length, 10);
  let i = o.socket.info();
  assert.is(i.tcpi_unacked, 10);
  assert.is(i.tcpi_data_segs_out, 10);
  assert.is(i.tcpi_notsent_bytes, 0);
  const start = o.iss + 1;
  const at = (n: number) => (start + n * MSS) >>> 0;
  // Segment 0 is lost: the first ACK SACKs 1 to 3, which makes RACK mark it lost.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: start, flags: ACK, sack: [at(1), at(4)] });
  expectSegment(h.sent()[0], seq(at(0)), payloadLength(MSS));
  i = o.socket.info();
  assert.is(i.tcpi_ca_state, TCP_CA_Recovery);
  assert.is(i.tcpi_unacked, 10);
  assert.is(i.tcpi_sacked, 3);
  assert.is(i.tcpi_lost, 1);
  assert.is(i.tcpi_retrans, 1);
  assert.is(i.tcpi_total_retrans, 1);
  assert.is(i.tcpi_bytes_retrans, MSS);
  assert.ok(i.tcpi_snd_ssthresh < TCP_INFINITE_SSTHRESH, 'a loss set ssthresh');
  assert.is(i.tcpi_snd_ssthresh, Math.floor(h.connection(80)!.cc.ssthresh / MSS));
  // Everything acknowledged: recovery over.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: at(10), flags: ACK });
  await h.advance(0);
  h.sent();
  i = o.socket.info();
  assert.is(i.tcpi_ca_state, TCP_CA_Open);
  assert.is(i.tcpi_unacked, 0);
  assert.is(i.tcpi_sacked, 0);
  assert.is(i.tcpi_lost, 0);
  assert.is(i.tcpi_retrans, 0);
  assert.is(i.tcpi_total_retrans, 1);
  assert.is(i.tcpi_bytes_acked, 10 * MSS);
  assert.is(i.tcpi_delivered, 1 + 10);
});

test('without SACK: duplicate ACKs count as SACKed segments (Linux Reno emulation), Disorder then Recovery', async () => {
  const h = await TcpHarness.create({ tcp: { timestamps: false } });
  const o = await acceptOne(h, 80, 1000, { mss: MSS }, {}, 100);
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(10 * MSS, 1));
  h.sent();
  const dup = () => h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK });
  dup();
  let i = o.socket.info();
  assert.is(i.tcpi_ca_state, TCP_CA_Disorder);
  assert.is(i.tcpi_sacked, 1);
  dup();
  dup();
  h.sent();
  i = o.socket.info();
  assert.is(i.tcpi_ca_state, TCP_CA_Recovery);
  assert.is(i.tcpi_sacked, 3);
  assert.is(i.tcpi_lost, 1, 'the head (tcp_mark_head_lost)');
  assert.is(i.tcpi_total_retrans, 1);
});

test('RTO: retransmits, backoff, ca_state Loss and the doubled RTO; an ACK clears them', async () => {
  const h = await TcpHarness.create({ tcp: { timestamps: false } });
  const o = await acceptOne(h, 80, 1000, { mss: MSS, sackPermitted: true }, {}, 100);
  o.socket.setNoDelay(true);
  o.socket.write(Buffer.alloc(MSS, 1));
  h.sent();
  const conn = h.connection(80)!;
  // Tail loss probe first (RFC 8985 7), then the RTO.
  for (let t = 0; t < 2000 && conn.retries === 0; t += 10) {
    await h.advance(10);
    h.sent();
  }
  let i = o.socket.info();
  assert.is(i.tcpi_retransmits, 1);
  assert.is(i.tcpi_backoff, 1);
  assert.is(i.tcpi_ca_state, TCP_CA_Loss);
  assert.is(i.tcpi_rto, 600_000, 'the 300 ms RTO doubled');
  assert.is(i.tcpi_lost, 1);
  assert.ok(i.tcpi_total_retrans >= 1);
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1 + MSS, flags: ACK });
  await h.advance(0);
  i = o.socket.info();
  assert.is(i.tcpi_retransmits, 0);
  assert.is(i.tcpi_ca_state, TCP_CA_Open);
  assert.is(i.tcpi_unacked, 0);
  assert.is(i.tcpi_lost, 0);
});

test('persist: tcpi_probes and tcpi_backoff count the zero-window probes, notsent_bytes the data waiting', async () => {
  const h = await TcpHarness.create({ tcp: { timestamps: false } });
  const o = await acceptOne(h, 80, 1000, { mss: MSS }, {}, 100);
  // The peer's buffer is full: it shuts the window.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, window: 0 });
  o.socket.write(Buffer.alloc(3000, 1));
  await h.advance(0);
  h.none();
  let i = o.socket.info();
  assert.is(i.tcpi_notsent_bytes, 3000);
  assert.is(i.tcpi_probes, 0);
  const conn = h.connection(80)!;
  for (let t = 0; t < 5000 && conn.probesOut < 2; t += 10) {
    await h.advance(10);
    for (const s of h.sent()) expectSegment(s, flags(ACK), payloadLength(1));
  }
  i = o.socket.info();
  assert.is(i.tcpi_probes, 2);
  assert.is(i.tcpi_backoff, 2);
  assert.is(i.tcpi_notsent_bytes, 2999, 'the probe byte is in flight');
  // The window opens: the probes are answered.
  h.inject({ dstPort: 80, seq: o.peerSeq, ack: o.iss + 1, flags: ACK, window: 65535 });
  await h.advance(0);
  h.sent();
  i = o.socket.info();
  assert.is(i.tcpi_probes, 0);
  assert.is(i.tcpi_backoff, 0);
});

test('connections(): the listener as LISTEN, the connection, then its TIME-WAIT entry', async () => {
  const { clock, a, b } = await stackPair({ tcp: { timeWaitMs: 1000 } });
  b.createServer((s) => s.on('end', () => s.end())).listen(7, 33);
  const client = a.connect(7, '10.0.0.2');
  for (let k = 0; k < 5; k++) {
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
  }
  const listed = b.connections();
  assert.is(listed.length, 2);
  const [listener, conn] = listed as [(typeof listed)[0], (typeof listed)[0]];
  assert.is(listener.state, 'LISTEN');
  assert.is(listener.info.tcpi_state, 10);
  assert.is(listener.info.tcpi_sacked, 33, 'a listener reports its backlog in tcpi_sacked, as Linux');
  assert.is(listener.localPort, 7);
  assert.is(listener.conn, '10.0.0.2:7>0.0.0.0:0');
  assert.is(conn.state, 'ESTABLISHED');
  assert.is(conn.conn, `10.0.0.2:7>10.0.0.1:${client.localPort}`);
  assert.is(conn.info.tcpi_state, 1);
  assert.equal(a.connections().map((e) => e.state), ['ESTABLISHED']);
  // The client closes first: it holds TIME-WAIT.
  client.end();
  for (let k = 0; k < 20; k++) {
    clock.advance(5);
    await new Promise((r) => setImmediate(r));
  }
  const tw = a.connections();
  assert.equal(tw.map((e) => e.state), ['TIME-WAIT']);
  assert.is(tw[0]!.info.tcpi_state, 6);
  assert.is(tw[0]!.info.tcpi_options, 1, 'the timestamp option, all an entry knows of its options');
  assert.is(client.info().state, 'CLOSED');
  assert.is(client.info().tcpi_state, 7);
  assert.ok(client.info().tcpi_segs_out > 0, 'the counters stay after the connection is gone');
  clock.advance(1000);
  assert.equal(a.connections(), []);
  await a.close();
  await b.close();
});

function getJson(a: Stack, path: string): Promise<{ status: number; type: string; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '10.0.0.2', port: 80, path, createConnection: () => a.connect(80, '10.0.0.2') as never }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: JSON.parse(text) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('GET /connections: every connection with its tcp_info as JSON, over an in-memory link', async () => {
  const { a, b } = await realTimeStacks();
  const stop = await startServices(b, ['http', 'discard']);
  try {
    // A connection of our own to the discard service, with data sent.
    const sender = a.connect(9, '10.0.0.2');
    await new Promise<void>((r) => sender.once('connect', () => r()));
    await new Promise<void>((r) => sender.write(Buffer.alloc(5000, 1), () => r()));
    await new Promise((r) => setTimeout(r, 50));
    const r = await getJson(a, '/connections');
    assert.is(r.status, 200);
    assert.is(r.type, 'application/json');
    const list = (r.body as { connections: { conn: string; state: string; localPort: number; remotePort: number; info: TcpInfo }[] }).connections;
    assert.ok(list.some((e) => e.state === 'LISTEN' && e.localPort === 80 && e.info.tcpi_state === 10));
    assert.ok(list.some((e) => e.state === 'LISTEN' && e.localPort === 9));
    const discard = list.find((e) => e.localPort === 9 && e.state === 'ESTABLISHED');
    assert.ok(discard, 'the discard connection');
    assert.is(discard!.conn, `10.0.0.2:9>10.0.0.1:${sender.localPort}`);
    assert.is(discard!.info.tcpi_bytes_received, 5000);
    assert.is(discard!.info.tcpi_options & 1, 1);
    // The request's own connection is there too, as ss shows itself.
    assert.ok(list.some((e) => e.localPort === 80 && e.state === 'ESTABLISHED'));
    // Every field of the interface is in the JSON, with a number.
    for (const [k, v] of Object.entries(discard!.info)) if (k !== 'state') assert.type(v, 'number', k);
    assert.equal(Object.keys(discard!.info).sort(), Object.keys(sender.info()).sort());
    sender.destroy();
  } finally {
    await stop();
    await a.close();
    await b.close();
  }
});

test.run();
