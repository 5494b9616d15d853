// Opening connections segment by segment (RFC 9293 3.5, 3.10.7.2, 3.10.7.3), the RST rules
// for closed ports and LISTEN (RFC 9293 3.10.7.1/2), SYN retransmission, the SYN backlog
// bound and SYN cookies.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { emitIpv4, PROTO_TCP } from '../../src/ipv4/ipv4-packet.ts';
import { icmpMessage, ipv4Frame, ipv4Repr } from '../helpers/frames.ts';
import { acceptOne, connectOne } from '../helpers/tcp-open.ts';
import {
  ACK,
  ack,
  expectSegment,
  flags,
  mss,
  noOptions,
  payload,
  PEER_IP,
  PEER_MAC,
  STACK_IP,
  STACK_MAC,
  ports,
  RST,
  SYN,
  seq,
  TcpHarness,
  tsEcr,
  window,
  windowScale,
} from '../helpers/tcp-harness.ts';

test('passive open: SYN gets SYN-ACK with our MSS from the MTU, then ACK establishes', async () => {
  const h = await TcpHarness.create();
  let accepted = 0;
  h.stack.createServer(() => accepted++).listen(80);
  await h.advance(0);
  h.inject({ dstPort: 80, seq: 1000, flags: SYN, mss: 1400, windowScale: 7, sackPermitted: true, ts: [12345, 0] });
  const synAck = expectSegment(h.one(), ports(80, 40000), flags(SYN | ACK), ack(1001), mss(1460), windowScale(5), tsEcr(12345), window(65535));
  const conn = h.connection(80)!;
  assert.is(conn.state, 'SYN-RECEIVED');
  assert.is(accepted, 0);
  h.inject({ dstPort: 80, seq: 1001, ack: synAck.seq + 1, flags: ACK, ts: [12346, synAck.tsVal] });
  await h.advance(0);
  assert.is(conn.state, 'ESTABLISHED');
  assert.is(accepted, 1);
  // Negotiated: the peer's MSS less the timestamp option, both scales, timestamps.
  assert.is(conn.snd.mss, 1400 - 12);
  assert.is(conn.snd.wscale, 7);
  assert.is(conn.rcv.wscale, 5); // 1 MiB needs a shift of 5 to fit 16 bits
  assert.is(conn.tsEnabled, true);
  h.none();
});

test('passive open without options: SYN-ACK offers none back but MSS, and 536 is assumed', async () => {
  const h = await TcpHarness.create({ mtu: 1000 });
  h.stack.createServer(() => {}).listen(80);
  await h.advance(0);
  h.inject({ dstPort: 80, seq: 7, flags: SYN });
  const synAck = expectSegment(h.one(), flags(SYN | ACK), mss(960), windowScale(-1));
  assert.is(synAck.hasTimestamp, false);
  assert.is(h.connection(80)!.snd.mss, 536);
});

test('SYN to a closed port: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> (RFC 9293 3.10.7.1)', async () => {
  const h = await TcpHarness.create();
  h.inject({ dstPort: 81, seq: 0xfffffff0, flags: SYN });
  expectSegment(h.one(), ports(81, 40000), flags(RST | ACK), seq(0), ack(0xfffffff1), window(0), noOptions());
  // With data and FIN the acknowledgment covers them too.
  h.inject({ dstPort: 81, seq: 100, flags: 0x01, payload: 'abc' });
  expectSegment(h.one(), flags(RST | ACK), seq(0), ack(104));
  assert.is(h.stack.tcp.counters.drops['tcp-port-closed'], 2);
});

test('ACK to a closed port: <SEQ=SEG.ACK><CTL=RST>; an RST gets nothing', async () => {
  const h = await TcpHarness.create();
  h.inject({ dstPort: 81, seq: 5, ack: 777, flags: ACK, payload: 'x' });
  expectSegment(h.one(), flags(RST), seq(777), ack(0));
  h.inject({ dstPort: 81, seq: 5, ack: 777, flags: RST | ACK });
  h.inject({ dstPort: 81, seq: 5, flags: RST });
  h.none();
});

test('LISTEN: an ACK gets a reset, an RST is ignored, a segment without SYN is dropped', async () => {
  const h = await TcpHarness.create({ tcp: { synCookies: false } });
  h.stack.createServer(() => {}).listen(80);
  await h.advance(0);
  h.inject({ dstPort: 80, seq: 1, ack: 99, flags: ACK });
  expectSegment(h.one(), flags(RST), seq(99));
  h.inject({ dstPort: 80, seq: 1, flags: RST });
  h.inject({ dstPort: 80, seq: 1, flags: 0, payload: 'no flags' });
  h.none();
  assert.is(h.stack.tcp.size, 0);
});

test('SYN-RECEIVED: a duplicate SYN gets the SYN-ACK again; an unacceptable ACK gets a reset', async () => {
  const h = await TcpHarness.create();
  h.stack.createServer(() => {}).listen(80);
  await h.advance(0);
  h.inject({ dstPort: 80, seq: 1000, flags: SYN, mss: 1460 });
  const synAck = h.one();
  h.inject({ dstPort: 80, seq: 1000, flags: SYN, mss: 1460 });
  expectSegment(h.one(), flags(SYN | ACK), seq(synAck.seq), ack(1001));
  h.inject({ dstPort: 80, seq: 1001, ack: synAck.seq + 5, flags: ACK });
  expectSegment(h.one(), flags(RST), seq(synAck.seq + 5));
  assert.is(h.connection(80)!.state, 'SYN-RECEIVED');
});

test('SYN-RECEIVED (passive): an exact RST returns to LISTEN silently', async () => {
  const h = await TcpHarness.create();
  let accepted = 0;
  h.stack.createServer(() => accepted++).listen(80);
  await h.advance(0);
  h.inject({ dstPort: 80, seq: 1000, flags: SYN });
  h.one();
  h.inject({ dstPort: 80, seq: 1001, flags: RST });
  h.none();
  assert.is(h.connection(80), undefined);
  assert.is(h.stack.tcp.listeners.get(80)!.halfOpen, 0);
  assert.is(accepted, 0);
});

test('SYN-ACK is retransmitted with exponential backoff, then the half-open connection is dropped', async () => {
  const h = await TcpHarness.create({ tcp: { synAckRetries: 3 } });
  h.stack.createServer(() => {}).listen(80);
  await h.advance(0);
  h.inject({ dstPort: 80, seq: 1000, flags: SYN });
  const first = h.one();
  const gaps = [1000, 2000, 4000];
  for (const gap of gaps) {
    await h.advance(gap - 1);
    h.none();
    await h.advance(1);
    expectSegment(h.one(), flags(SYN | ACK), seq(first.seq), ack(1001));
  }
  await h.advance(8000);
  h.none();
  assert.is(h.connection(80), undefined);
});

test('active open: SYN with MSS, window scale, SACK-permitted per config and timestamps; SYN-ACK completes it', async () => {
  const h = await TcpHarness.create();
  const socket = h.stack.connect(8080, '10.0.0.1');
  const syn = expectSegment(h.one(), flags(SYN), mss(1460), windowScale(5), ack(0), window(65535));
  assert.is(syn.hasTimestamp, true);
  assert.ok(syn.srcPort >= 32768 && syn.srcPort <= 60999);
  let connected = false;
  socket.on('connect', () => (connected = true));
  h.inject({ srcPort: 8080, dstPort: syn.srcPort, seq: 5000, ack: syn.seq + 1, flags: SYN | ACK, mss: 1000, ts: [77, syn.tsVal] });
  expectSegment(h.one(), flags(ACK), seq(syn.seq + 1), ack(5001), tsEcr(77));
  await h.advance(0);
  assert.ok(connected);
  const conn = h.connection(syn.srcPort, 8080)!;
  assert.is(conn.state, 'ESTABLISHED');
  // The peer did not scale: neither do we.
  assert.is(conn.rcv.wscale, 0);
  assert.is(conn.snd.wscale, 0);
  assert.is(conn.snd.mss, 1000 - 12);
});

test('SYN-SENT: an RST with an acceptable ACK refuses; without ACK it is ignored; a bad ACK gets RST', async () => {
  const h = await TcpHarness.create();
  const socket = h.stack.connect(8080, '10.0.0.1');
  let error: (Error & { code?: string }) | null = null;
  socket.on('error', (e) => (error = e));
  const syn = h.one();
  h.inject({ srcPort: 8080, dstPort: syn.srcPort, seq: 0, flags: RST });
  h.inject({ srcPort: 8080, dstPort: syn.srcPort, seq: 0, ack: syn.seq + 10, flags: SYN | ACK });
  expectSegment(h.one(), flags(RST), seq(syn.seq + 10));
  await h.advance(0);
  assert.is(error, null);
  assert.is(h.connection(syn.srcPort, 8080)!.state, 'SYN-SENT');
  h.inject({ srcPort: 8080, dstPort: syn.srcPort, seq: 0, ack: syn.seq + 1, flags: RST | ACK });
  await h.advance(0);
  assert.is(error!.code, 'ECONNREFUSED');
  h.none();
});

test('SYN retransmission backs off 1, 2, 4 s and fails with ETIMEDOUT after synRetries', async () => {
  const h = await TcpHarness.create({ tcp: { synRetries: 2 } });
  const socket = h.stack.connect(8080, '10.0.0.1');
  let error: (Error & { code?: string; syscall?: string }) | null = null;
  socket.on('error', (e) => (error = e));
  const syn = h.one();
  await h.advance(1000);
  expectSegment(h.one(), flags(SYN), seq(syn.seq));
  await h.advance(1999);
  h.none();
  await h.advance(1);
  expectSegment(h.one(), flags(SYN), seq(syn.seq));
  await h.advance(4000);
  h.none();
  assert.is(error!.code, 'ETIMEDOUT');
  assert.is(error!.syscall, 'connect');
});

test('simultaneous open: SYN crosses SYN, both answer SYN-ACK with their ISS, ACK establishes', async () => {
  const h = await TcpHarness.create();
  const socket = h.stack.connect({ port: 8080, host: '10.0.0.1', localPort: 5555 });
  let connected = false;
  socket.on('connect', () => (connected = true));
  const syn = expectSegment(h.one(), flags(SYN), ports(5555, 8080));
  h.inject({ srcPort: 8080, dstPort: 5555, seq: 9000, flags: SYN, mss: 1460 });
  expectSegment(h.one(), flags(SYN | ACK), seq(syn.seq), ack(9001));
  const conn = h.connection(5555, 8080)!;
  assert.is(conn.state, 'SYN-RECEIVED');
  h.inject({ srcPort: 8080, dstPort: 5555, seq: 9000, ack: syn.seq + 1, flags: SYN | ACK, mss: 1460 });
  // The peer's SYN-ACK is below RCV.NXT: acknowledged, not accepted as new (RFC 9293 figure 8).
  expectSegment(h.one(), flags(ACK), seq(syn.seq + 1), ack(9001));
  h.inject({ srcPort: 8080, dstPort: 5555, seq: 9001, ack: syn.seq + 1, flags: ACK });
  await h.advance(0);
  assert.is(conn.state, 'ESTABLISHED');
  assert.ok(connected);
});

test('the SYN backlog is bounded: beyond it SYN cookies answer, and a cookie ACK opens a connection', async () => {
  const h = await TcpHarness.create({ tcp: { maxSynBacklog: 4 } });
  const accepted: number[] = [];
  h.stack.createServer((s) => accepted.push(s.remotePort!)).listen({ port: 80, backlog: 100 });
  await h.advance(0);
  const synAcks = [];
  for (let i = 0; i < 10; i++) {
    h.inject({ srcPort: 20000 + i, dstPort: 80, seq: 100 * i, flags: SYN, mss: 1460, windowScale: 7 });
    synAcks.push(expectSegment(h.one(), flags(SYN | ACK), ack(100 * i + 1)));
  }
  assert.is(h.stack.tcp.size, 4, 'only four half-open connections are kept');
  assert.is(h.stack.tcp.listeners.get(80)!.halfOpen, 4);
  // Without timestamps to carry them back, a cookie SYN-ACK offers only the MSS option.
  expectSegment(synAcks[9], mss(1460), windowScale(-1));
  assert.is(synAcks[9]!.hasTimestamp, false);
  h.inject({ srcPort: 20009, dstPort: 80, seq: 901, ack: synAcks[9]!.seq + 1, flags: ACK, payload: 'GET' });
  await h.advance(0);
  assert.equal(accepted, [20009]);
  const conn = h.stack.tcp.find(80, PEER_IP, 20009)!;
  assert.is(conn.state, 'ESTABLISHED');
  assert.is(conn.snd.mss, 1460);
  // A forged cookie is refused with a reset.
  h.sent();
  h.inject({ srcPort: 20008, dstPort: 80, seq: 801, ack: synAcks[8]!.seq + 2, flags: ACK });
  expectSegment(h.one(), flags(RST), seq(synAcks[8]!.seq + 2));
  assert.is(h.stack.tcp.counters.synCookiesAccepted, 1);
});

test('SYN cookies keep window scale and SACK through the timestamp, as Linux does', async () => {
  const h = await TcpHarness.create({ tcp: { maxSynBacklog: 1 } });
  h.stack.createServer(() => {}).listen(80);
  await h.advance(0);
  h.clock.advance(12_345);
  h.inject({ srcPort: 20000, dstPort: 80, seq: 0, flags: SYN });
  h.one();
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5000, flags: SYN, mss: 1460, windowScale: 9, sackPermitted: true, ts: [777, 0] });
  const cookie = expectSegment(h.one(), flags(SYN | ACK), mss(1460), windowScale(5), tsEcr(777));
  assert.ok(cookie.sackPermitted);
  assert.ok(cookie.tsVal <= Math.floor(h.clock.now()), 'TSval not ahead of the clock');
  assert.is(cookie.tsVal & 0x1f, 0x10 | 9);
  assert.is(h.stack.tcp.size, 1, 'no state kept for the cookie');
  h.inject({ srcPort: 20001, dstPort: 80, seq: 5001, ack: cookie.seq + 1, flags: ACK, ts: [778, cookie.tsVal], window: 100 });
  const conn = h.stack.tcp.find(80, PEER_IP, 20001)!;
  assert.is(conn.state, 'ESTABLISHED');
  assert.is(conn.snd.wscale, 9);
  assert.is(conn.rcv.wscale, 5);
  assert.is(conn.snd.wnd, 100 << 9);
  assert.ok(conn.sackPermitted && conn.tsEnabled);
  assert.is(conn.tsRecent, 778);
  assert.is(conn.snd.mss, 1460 - 12);
});

test('without SYN cookies a full SYN queue drops new SYNs', async () => {
  const h = await TcpHarness.create({ tcp: { maxSynBacklog: 2, synCookies: false } });
  h.stack.createServer(() => {}).listen(80);
  await h.advance(0);
  for (let i = 0; i < 5; i++) h.inject({ srcPort: 20000 + i, dstPort: 80, seq: i, flags: SYN });
  assert.is(h.sent().length, 2);
  assert.is(h.stack.tcp.counters.drops['tcp-syn-queue-full'], 3);
});

test('data on the third segment of the handshake is accepted', async () => {
  const h = await TcpHarness.create();
  let got = '';
  h.stack.createServer((s) => s.on('data', (d: Buffer) => (got += d.toString()))).listen(80);
  await h.advance(0);
  h.inject({ dstPort: 80, seq: 1000, flags: SYN });
  const synAck = h.one();
  h.inject({ dstPort: 80, seq: 1001, ack: synAck.seq + 1, flags: ACK, payload: 'hello' });
  await h.advance(0);
  assert.is(got, 'hello');
  await h.advance(40);
  expectSegment(h.one(), flags(ACK), ack(1006));
  void payload;
  void connectOne;
  void acceptOne;
});

test('an ICMP port unreachable about our SYN refuses the connection (RFC 1122 4.2.3.9, as Linux)', async () => {
  const h = await TcpHarness.create();
  const socket = h.stack.connect(8080, '10.0.0.1');
  let error: (Error & { code?: string }) | null = null;
  socket.on('error', (e) => (error = e));
  const syn = h.one();
  // The ICMP error quotes our IPv4 header and the first 8 bytes of the SYN.
  const quoted = Buffer.alloc(28);
  emitIpv4(quoted, 0, ipv4Repr({ src: STACK_IP, dst: PEER_IP, protocol: PROTO_TCP }), 8);
  quoted.writeUInt16BE(syn.srcPort, 20);
  quoted.writeUInt16BE(8080, 22);
  quoted.writeUInt32BE(syn.seq, 24);
  const icmp = icmpMessage(3, 3, 0, quoted);
  h.link.inject(ipv4Frame(STACK_MAC, PEER_MAC, ipv4Repr({ src: PEER_IP, dst: STACK_IP, protocol: 1 }), icmp));
  await h.advance(0);
  assert.is(error!.code, 'ECONNREFUSED');
  // A quoted sequence number that is not in flight is ignored (RFC 5927 4.1).
  const s2 = h.stack.connect(8080, '10.0.0.1');
  let error2: Error | null = null;
  s2.on('error', (e) => (error2 = e));
  const syn2 = h.one();
  quoted.writeUInt16BE(syn2.srcPort, 20);
  quoted.writeUInt32BE(syn2.seq + 1000, 24);
  h.link.inject(ipv4Frame(STACK_MAC, PEER_MAC, ipv4Repr({ src: PEER_IP, dst: STACK_IP, protocol: 1 }), icmpMessage(3, 3, 0, quoted)));
  await h.advance(0);
  assert.is(error2, null);
});

test.run();
