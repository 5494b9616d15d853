// The dgram-like API on two stacks joined by an in-memory link, in virtual time: binding,
// sending and receiving, connect, error codes as Node gives them, ICMP port unreachable and
// its report to connected sockets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VirtualClock } from '../../src/util/clock.ts';
import { ICMP_DEST_UNREACHABLE, IcmpPacket, UNREACH_PORT } from '../../src/ipv4/icmp-packet.ts';
import { Ipv4Packet, PROTO_ICMP } from '../../src/ipv4/ipv4-packet.ts';
import type { Ipv4Reassembler } from '../../src/ipv4/reassembly.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { createStack } from '../../src/stack.ts';
import type { RemoteInfo, UdpSocket } from '../../src/udp/socket.ts';
import { EPHEMERAL_FIRST, EPHEMERAL_LAST } from '../../src/udp/udp.ts';

async function pair() {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock);
  const a = await createStack({ link: la, clock, ip: '10.0.0.1/24', seed: 1 });
  const b = await createStack({ link: lb, clock, ip: '10.0.0.2/24', seed: 2 });
  clock.runAll(1000);
  return { clock, a, b };
}

/** Lets process.nextTick callbacks (events, send callbacks) run. */
const ticks = () => new Promise<void>((resolve) => setImmediate(resolve));

function collect(sock: UdpSocket): { msg: Buffer; rinfo: RemoteInfo }[] {
  const got: { msg: Buffer; rinfo: RemoteInfo }[] = [];
  sock.on('message', (msg, rinfo) => got.push({ msg, rinfo }));
  return got;
}

function errorsOf(sock: UdpSocket): (Error & { code?: string; errno?: number; syscall?: string })[] {
  const errs: Error[] = [];
  sock.on('error', (e) => errs.push(e));
  return errs;
}

function throwsCode(fn: () => unknown, code: string, message?: string): void {
  try {
    fn();
  } catch (err) {
    assert.is((err as { code?: string }).code, code);
    if (message !== undefined) assert.is((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('bind with no port takes an ephemeral port in 32768-60999 and emits listening', async () => {
  const { a } = await pair();
  const s = a.createSocket('udp4');
  let listening = 0;
  s.bind(() => listening++);
  await ticks();
  assert.is(listening, 1);
  const addr = s.address();
  assert.is(addr.address, '0.0.0.0');
  assert.is(addr.family, 'IPv4');
  assert.ok(addr.port >= EPHEMERAL_FIRST && addr.port <= EPHEMERAL_LAST, String(addr.port));
  const s2 = a.createSocket({ type: 'udp4' }).bind(0, '10.0.0.1');
  await ticks();
  assert.is(s2.address().address, '10.0.0.1');
  assert.is.not(s2.address().port, addr.port);
});

test('a taken port gives EADDRINUSE as an error event; reuseAddr on both shares it', async () => {
  const { a } = await pair();
  const s1 = a.createSocket('udp4').bind(5000);
  const s2 = a.createSocket('udp4');
  const errs = errorsOf(s2);
  let listened = false;
  s2.bind(5000, () => (listened = true));
  await ticks();
  assert.is(errs.length, 1);
  assert.is(errs[0]!.code, 'EADDRINUSE');
  assert.is(errs[0]!.errno, -98);
  assert.is(errs[0]!.syscall, 'bind');
  assert.is(errs[0]!.message, 'bind EADDRINUSE 0.0.0.0:5000');
  assert.not.ok(listened);
  // The failed bind leaves the socket unbound: it may try again elsewhere.
  s2.bind(5001);
  await ticks();
  assert.is(s2.address().port, 5001);
  s1.close();
  const r1 = a.createSocket({ type: 'udp4', reuseAddr: true }).bind(6000);
  const r2 = a.createSocket({ type: 'udp4', reuseAddr: true });
  const rErrs = errorsOf(r2);
  r2.bind(6000);
  await ticks();
  assert.is(rErrs.length, 0);
  assert.is(r1.address().port, r2.address().port);
});

test('state errors carry Node codes: already bound, not running, EBADF before bind, bad port, bad type', async () => {
  const { a } = await pair();
  const s = a.createSocket('udp4');
  throwsCode(() => s.address(), 'EBADF', 'getsockname EBADF');
  s.bind(7000);
  throwsCode(() => s.bind(7001), 'ERR_SOCKET_ALREADY_BOUND', 'Socket is already bound');
  throwsCode(() => s.send('x', 0, '10.0.0.2'), 'ERR_SOCKET_BAD_PORT', 'Port should be > 0 and < 65536. Received type number (0).');
  throwsCode(() => s.send('x', 70000, '10.0.0.2'), 'ERR_SOCKET_BAD_PORT');
  throwsCode(() => a.createSocket('udp6' as 'udp4'), 'ERR_SOCKET_BAD_TYPE');
  let closed = 0;
  s.close(() => closed++);
  throwsCode(() => s.send('x', 9, '10.0.0.2'), 'ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running');
  throwsCode(() => s.close(), 'ERR_SOCKET_DGRAM_NOT_RUNNING');
  throwsCode(() => s.address(), 'ERR_SOCKET_DGRAM_NOT_RUNNING');
  await ticks();
  assert.is(closed, 1);
  // The port is free again.
  const again = a.createSocket('udp4');
  const errs = errorsOf(again);
  again.bind(7000);
  await ticks();
  assert.is(errs.length, 0);
});

test('send and receive between two stacks: data, rinfo and the send callback', async () => {
  const { clock, a, b } = await pair();
  const server = b.createSocket('udp4').bind(4000);
  const got = collect(server);
  const client = a.createSocket('udp4');
  const results: [Error | null, number][] = [];
  client.send('hello', 4000, '10.0.0.2', (err, n) => results.push([err, n]));
  client.send(Buffer.from('0123456789'), 2, 3, 4000, '10.0.0.2');
  client.send([Buffer.from('ab'), 'cd', new Uint8Array([101, 102])], 4000, '10.0.0.2');
  client.send(new Uint16Array([0x4241]), 4000, '10.0.0.2');
  client.send(Buffer.alloc(0), 4000, '10.0.0.2');
  clock.runAll(1000);
  await ticks();
  assert.equal(results, [[null, 5]]);
  assert.equal(
    got.map((g) => g.msg.toString('latin1')),
    ['hello', '234', 'abcdef', 'AB', ''],
  );
  const port = client.address().port;
  assert.equal(got[0]!.rinfo, { address: '10.0.0.1', family: 'IPv4', port, size: 5 });
  assert.is(got[4]!.rinfo.size, 0);
  assert.is(b.udp.counters.rx, 5);
  assert.is(a.udp.counters.tx, 5);
});

test('datagrams up to 65507 bytes cross fragmented and come back whole; one byte more is EMSGSIZE', async () => {
  const { clock, a, b } = await pair();
  const server = b.createSocket('udp4').bind(7);
  server.on('message', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
  const client = a.createSocket('udp4');
  const got = collect(client);
  const big = Buffer.alloc(65507);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 8)) & 255;
  const mid = big.subarray(0, 8000);
  client.send(big, 7, '10.0.0.2');
  client.send(mid, 7, '10.0.0.2');
  const errs: (Error & { code?: string })[] = [];
  client.send(Buffer.alloc(65508), 7, '10.0.0.2', (err) => err && errs.push(err));
  clock.runAll(1000);
  await ticks();
  assert.is(got.length, 2);
  assert.ok(got[0]!.msg.equals(big));
  assert.ok(got[1]!.msg.equals(mid));
  assert.is(errs.length, 1);
  assert.is(errs[0]!.code, 'EMSGSIZE');
  assert.is(errs[0]!.message, 'send EMSGSIZE 10.0.0.2:7');
  // 65507 + 8 bytes in pieces of 1480: 45 fragments each way, all reassembled.
  assert.is((b.ipv4.reassembler as Ipv4Reassembler).reassembled, 2);
});

test('a send error goes to the callback only; without one it is not emitted (Node doSend)', async () => {
  const { a } = await pair();
  const s = a.createSocket('udp4');
  const errs = errorsOf(s);
  const codes: (string | undefined)[] = [];
  s.send(Buffer.alloc(70000), 9, '10.0.0.2');
  s.send('x', 9, '10.0.0.255'); // broadcast without setBroadcast(true): EACCES, as Linux
  s.send('x', 9, '10.0.0.255', (err) => codes.push((err as { code?: string } | null)?.code));
  await ticks();
  assert.equal(errs, []);
  assert.equal(codes, ['EACCES']);
});

test('connect: sends go to the peer, only its datagrams arrive, and Node errors for misuse', async () => {
  const { clock, a, b } = await pair();
  const server = b.createSocket('udp4').bind(4000);
  const serverGot = collect(server);
  const client = a.createSocket('udp4');
  let connected = 0;
  client.connect(4000, '10.0.0.2', () => connected++);
  throwsCode(() => client.connect(4000, '10.0.0.2'), 'ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected');
  await ticks();
  assert.is(connected, 1);
  assert.equal(client.remoteAddress(), { address: '10.0.0.2', family: 'IPv4', port: 4000 });
  // As in Node: with offset and length given, a port or address means misuse.
  throwsCode(() => client.send('xyz', 0, 1, 4000, '10.0.0.2'), 'ERR_SOCKET_DGRAM_IS_CONNECTED');
  const sent: number[] = [];
  client.send('one', (err, n) => !err && sent.push(n));
  client.send(Buffer.from('xtwox'), 1, 3);
  clock.runAll(1000);
  await ticks();
  assert.equal(sent, [3]);
  assert.equal(
    serverGot.map((g) => g.msg.toString()),
    ['one', 'two'],
  );
  // A datagram from another port of the peer is not for the connected socket.
  const clientGot = collect(client);
  const other = b.createSocket('udp4').bind(4001);
  other.send('stranger', client.address().port, '10.0.0.1');
  server.send('friend', client.address().port, '10.0.0.1');
  clock.runAll(1000);
  assert.equal(
    clientGot.map((g) => g.msg.toString()),
    ['friend'],
  );
  client.disconnect();
  throwsCode(() => client.disconnect(), 'ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected');
  throwsCode(() => client.remoteAddress(), 'ERR_SOCKET_DGRAM_NOT_CONNECTED');
  other.send('stranger again', client.address().port, '10.0.0.1');
  clock.runAll(1000);
  assert.is(clientGot.at(-1)!.msg.toString(), 'stranger again');
});

test('a closed port answers ICMP port unreachable; a connected socket gets ECONNREFUSED, others nothing', async () => {
  const { clock, a, b } = await pair();
  const frames: Buffer[] = [];
  const origSend = b.link.send.bind(b.link);
  b.link.send = (buf, off, len) => {
    frames.push(Buffer.from(buf.subarray(off, off + len)));
    origSend(buf, off, len);
  };
  const connectedSock = a.createSocket('udp4');
  const connErrs = errorsOf(connectedSock);
  connectedSock.connect(4444, '10.0.0.2');
  await ticks();
  connectedSock.send('anyone?');
  const loose = a.createSocket('udp4');
  const looseErrs = errorsOf(loose);
  loose.send('anyone?', 4445, '10.0.0.2');
  clock.runAll(1000);
  await ticks();
  const icmp = frames
    .map((f) => {
      const ip = new Ipv4Packet();
      if (f.readUInt16BE(12) !== 0x0800 || ip.parse(f, 14, f.length - 14) || ip.protocol !== PROTO_ICMP) return null;
      const m = new IcmpPacket();
      return m.parse(f, ip.payloadOffset, ip.payloadLength) ? null : m.toRepr();
    })
    .filter((m) => m !== null);
  assert.is(icmp.length, 2);
  for (const m of icmp) {
    assert.is(m.type, ICMP_DEST_UNREACHABLE);
    assert.is(m.code, UNREACH_PORT);
  }
  assert.is(connErrs.length, 1);
  assert.is(connErrs[0]!.code, 'ECONNREFUSED');
  assert.is(connErrs[0]!.syscall, 'recvmsg');
  assert.is(connErrs[0]!.errno, -111);
  assert.is(looseErrs.length, 0);
  assert.is(a.udp.counters.drops['udp-icmp-no-socket'], 1);
  assert.is(b.udp.counters.drops['udp-port-unreachable'], 2);
});

test('port unreachable is rate limited (Linux: burst of 6 per destination, then 1 a second)', async () => {
  const { clock, a, b } = await pair();
  const s = a.createSocket('udp4');
  for (let i = 0; i < 50; i++) s.send('x', 999, '10.0.0.2');
  clock.runAll(10);
  assert.is(b.icmp.counters.tx, 6);
  assert.is(b.icmp.counters.drops['icmp-rate-limited'], 44);
  clock.advance(1000);
  s.send('x', 999, '10.0.0.2');
  clock.runAll(10);
  assert.is(b.icmp.counters.tx, 7);
});

test('broadcasts reach every socket on the port and never draw an ICMP error', async () => {
  const { clock, a, b } = await pair();
  const r1 = b.createSocket({ type: 'udp4', reuseAddr: true }).bind(5353);
  const r2 = b.createSocket({ type: 'udp4', reuseAddr: true }).bind(5353);
  const specific = b.createSocket('udp4').bind(5354, '10.0.0.2'); // bound to the unicast address
  const g1 = collect(r1);
  const g2 = collect(r2);
  const g3 = collect(specific);
  // As on Node, SO_BROADCAST needs a descriptor: bound first (else EBADF).
  const s = a.createSocket('udp4').bind(0);
  s.setBroadcast(true);
  s.send('hi all', 5353, '10.0.0.255');
  s.send('hi all', 5354, '10.0.0.255');
  s.send('nobody', 5999, '255.255.255.255');
  clock.runAll(1000);
  assert.is(g1.length, 1);
  assert.is(g2.length, 1);
  assert.is(g3.length, 0);
  assert.is(b.icmp.counters.tx, 0);
  assert.is(b.udp.counters.drops['udp-broadcast-no-socket'], 2);
});

test('unicast with reuseAddr goes to the most recently bound socket; a connected one wins', async () => {
  const { clock, a, b } = await pair();
  const r1 = b.createSocket({ type: 'udp4', reuseAddr: true }).bind(5000);
  const r2 = b.createSocket({ type: 'udp4', reuseAddr: true }).bind(5000);
  const g1 = collect(r1);
  const g2 = collect(r2);
  const s = a.createSocket('udp4').bind(6000);
  s.send('x', 5000, '10.0.0.2');
  clock.runAll(1000);
  assert.equal([g1.length, g2.length], [0, 1]);
  r1.connect(6000, '10.0.0.1');
  s.send('y', 5000, '10.0.0.2');
  clock.runAll(1000);
  assert.equal([g1.length, g2.length], [1, 1]);
});

test('a datagram to our own address loops back', async () => {
  const { clock, a } = await pair();
  const s = a.createSocket('udp4').bind(1234);
  const got = collect(s);
  a.createSocket('udp4').send('me', 1234, 'localhost');
  clock.runAll(100);
  assert.equal(
    got.map((g) => [g.msg.toString(), g.rinfo.address]),
    [['me', '10.0.0.1']],
  );
});

test('an exception in a message listener is the application\'s, not a dropped frame', async () => {
  const { clock, a, b } = await pair();
  const s = b.createSocket('udp4').bind(4000);
  s.on('message', () => {
    throw new Error('listener bug');
  });
  const seen: Error[] = [];
  const onUncaught = (err: Error): void => {
    seen.push(err);
  };
  process.prependListener('uncaughtException', onUncaught);
  a.createSocket('udp4').send('boom', 4000, '10.0.0.2');
  clock.runAll(100);
  await ticks();
  process.off('uncaughtException', onUncaught);
  assert.equal(
    seen.map((e) => e.message),
    ['listener bug'],
  );
  assert.is(Object.keys(b.ethCounters.drops).filter((k) => k.startsWith('internal-error')).length, 0);
});

test('stack.close closes its sockets', async () => {
  const { a } = await pair();
  const s = a.createSocket('udp4').bind(4000);
  let closed = false;
  s.on('close', () => (closed = true));
  await a.close();
  await ticks();
  assert.ok(closed);
  throwsCode(() => s.send('x', 1, '10.0.0.2'), 'ERR_SOCKET_DGRAM_NOT_RUNNING');
});

test('send(msg, port, cb) and send(msg, offset, length, port, cb) call back (lib/dgram.js: the callback moves to address)', async () => {
  const { clock, a } = await pair();
  const local = a.createSocket('udp4').bind(7201);
  const got = collect(local);
  const s = a.createSocket('udp4');
  const calls: string[] = [];
  s.send('short', 7201, (err, n) => calls.push(`port:${err}:${n}`));
  s.send(Buffer.from('xoffsetx'), 1, 6, 7201, (err, n) => calls.push(`offset:${err}:${n}`));
  clock.runAll(100);
  await ticks();
  assert.equal(calls, ['port:null:5', 'offset:null:6']);
  assert.equal(
    got.map((g) => g.msg.toString()),
    ['short', 'offset'],
  );
});

test('bind takes the port as Node 20 does (uint32, 16 bits kept); connect is pending until its event', async () => {
  const { a } = await pair();
  const s = a.createSocket('udp4').bind(70000);
  await ticks();
  assert.is(s.address().port, 4464);
  const c = a.createSocket('udp4');
  c.connect(9, '10.0.0.2');
  throwsCode(() => c.remoteAddress(), 'ERR_SOCKET_DGRAM_NOT_CONNECTED');
  throwsCode(() => c.send('x'), 'ERR_SOCKET_BAD_PORT');
  await ticks();
  assert.is(c.remoteAddress().port, 9);
});

test.run();
