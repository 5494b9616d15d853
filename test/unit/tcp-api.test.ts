// The net-like API over two stacks on an in-memory link, in virtual time.

import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TcpSocket } from '../../src/index.ts';
import { stackPair } from '../helpers/tcp-pair.ts';

/** Lets the stream machinery's nextTicks and immediates run while virtual time moves. */
async function runFor(clock: { advance(ms: number): void }, ms: number, step = 1): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    await new Promise((r) => setImmediate(r));
  }
}

async function runUntil(clock: { advance(ms: number): void }, done: () => boolean, limitMs = 60_000, step = 1): Promise<boolean> {
  for (let t = 0; t < limitMs && !done(); t += step) {
    clock.advance(step);
    await new Promise((r) => setImmediate(r));
  }
  return done();
}

test('connect, echo a megabyte both ways, close: both sides see end and close without error', async () => {
  const { clock, a, b } = await stackPair();
  const serverEvents: string[] = [];
  const server = b.createServer((s) => {
    serverEvents.push(`connection ${s.remoteAddress}:${(s.remotePort ?? 0) > 0}`);
    s.pipe(s);
    s.on('end', () => serverEvents.push('end'));
    s.on('close', (hadError: boolean) => serverEvents.push(`close ${hadError}`));
  });
  let listening = false;
  server.listen(7, () => (listening = true));
  await runFor(clock, 1);
  assert.ok(listening);
  assert.equal(server.address(), { port: 7, family: 'IPv4', address: '0.0.0.0' });

  const events: string[] = [];
  const client = a.connect({ port: 7, host: '10.0.0.2' }, () => events.push('connect'));
  client.on('ready', () => events.push('ready'));
  assert.is(client.connecting, true);
  assert.is(client.readyState, 'opening');
  const got: Buffer[] = [];
  client.on('data', (d: Buffer) => got.push(d));
  client.on('end', () => events.push('end'));
  client.on('close', (hadError: boolean) => events.push(`close ${hadError}`));
  const data = Buffer.alloc(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
  client.write(data.subarray(0, 1000));
  client.end(data.subarray(1000));
  assert.ok(await runUntil(clock, () => events.includes('close false')));
  const echoed = Buffer.concat(got);
  assert.is(echoed.length, data.length);
  assert.ok(echoed.equals(data));
  assert.equal(events, ['connect', 'ready', 'end', 'close false']);
  assert.is(client.bytesRead, data.length);
  assert.is(client.bytesWritten, data.length);
  assert.is(client.remoteAddress, '10.0.0.2');
  assert.is(client.remotePort, 7);
  assert.is(client.localAddress, '10.0.0.1');
  assert.ok(client.localPort! >= 32768 && client.localPort! <= 60999);
  await runFor(clock, 5);
  assert.equal(serverEvents, ['connection 10.0.0.1:true', 'end', 'close false']);
  // The client closed first: it waits in TIME-WAIT; the server's side is gone.
  // (a compact entry, as Linux's inet_timewait_sock: the connection itself is gone).
  assert.equal([...a.tcp.all()].map((c) => c.state), []);
  assert.equal([...a.tcp.allTimeWait()].map((c) => c.state), ['TIME-WAIT']);
  assert.equal([...b.tcp.all()].map((c) => c.state), []);
  clock.advance(60_000);
  assert.is(a.tcp.size, 0);
});

test('connecting to a closed port fails with ECONNREFUSED shaped like Node', async () => {
  const { clock, a } = await stackPair();
  const client = a.connect(9999, '10.0.0.2');
  let error: (Error & { code?: string; errno?: number; syscall?: string; address?: string; port?: number }) | null = null;
  let closedWithError: boolean | null = null;
  client.on('error', (e) => (error = e));
  client.on('close', (h: boolean) => (closedWithError = h));
  await runUntil(clock, () => closedWithError !== null, 100);
  assert.ok(error);
  const e = error as unknown as { code: string; errno: number; syscall: string; address: string; port: number; message: string };
  assert.is(e.code, 'ECONNREFUSED');
  assert.is(e.errno, -111);
  assert.is(e.syscall, 'connect');
  assert.is(e.address, '10.0.0.2');
  assert.is(e.port, 9999);
  assert.is(e.message, 'connect ECONNREFUSED 10.0.0.2:9999');
  assert.is(closedWithError, true);
});

test('a second listen on the same port emits EADDRINUSE', async () => {
  const { clock, b } = await stackPair();
  b.createServer().listen(80);
  const second = b.createServer();
  let err: (Error & { code?: string; syscall?: string }) | null = null;
  second.on('error', (e) => (err = e));
  second.listen(80);
  await runFor(clock, 1);
  assert.ok(err);
  assert.is((err as unknown as { code: string }).code, 'EADDRINUSE');
  assert.is((err as unknown as { syscall: string }).syscall, 'listen');
  assert.is((err as unknown as Error).message, 'listen EADDRINUSE: address already in use :::80');
});

test('the peer resetting an established connection gives ECONNRESET', async () => {
  const { clock, a, b } = await stackPair();
  let serverSide: TcpSocket | null = null;
  b.createServer((s) => (serverSide = s)).listen(80);
  const client = a.connect(80, '10.0.0.2');
  let error: (Error & { code?: string }) | null = null;
  client.on('error', (e) => (error = e));
  await runUntil(clock, () => serverSide !== null, 100);
  (serverSide as unknown as TcpSocket).resetAndDestroy();
  await runUntil(clock, () => error !== null, 100);
  assert.is(error!.code, 'ECONNRESET');
  assert.is(client.destroyed, true);
});

test('half-close with allowHalfOpen: the server keeps sending after the client ends', async () => {
  const { clock, a, b } = await stackPair();
  b.createServer({ allowHalfOpen: true }, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => {
      // Our side is still open: answer with the hash of everything received, then end.
      s.end(createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
    });
  }).listen(5000);
  const client = a.connect({ port: 5000, host: '10.0.0.2', allowHalfOpen: true });
  let answer = '';
  let ended = false;
  client.on('data', (d: Buffer) => (answer += d.toString()));
  client.on('end', () => (ended = true));
  const body = Buffer.alloc(100_000, 3);
  client.end(body);
  assert.ok(await runUntil(clock, () => ended));
  assert.is(answer, createHash('sha256').update(body).digest('hex'));
});

test('backpressure: write returns false when the send buffer is full, drain follows', async () => {
  const { clock, a, b } = await stackPair({ tcp: { sendBufferSize: 64 * 1024, receiveBufferSize: 64 * 1024 } });
  let serverSide: TcpSocket | null = null;
  b.createServer({ pauseOnConnect: true }, (s) => (serverSide = s)).listen(80);
  const client = a.connect(80, '10.0.0.2');
  // More than the send buffer, the peer's receive buffer and the stream's highWaterMark.
  const writes = 20;
  let accepted = true;
  for (let i = 0; i < writes; i++) accepted = client.write(Buffer.alloc(16 * 1024));
  assert.is(accepted, false, 'write() returns false once the buffers are full');
  let drained = false;
  client.on('drain', () => (drained = true));
  await runFor(clock, 2000, 5);
  // The server reads nothing: its window closes, our send buffer stays full, no drain.
  assert.is(drained, false);
  assert.ok(client.writableLength > 0, 'writes are held back');
  const server = serverSide as unknown as TcpSocket;
  assert.is(server.connection!.rcv.adv, server.connection!.rcv.nxt, 'advertised window is zero');
  // Reading reopens the window; the data flows and drain comes.
  let received = 0;
  server.on('data', (d: Buffer) => (received += d.length));
  server.resume();
  assert.ok(await runUntil(clock, () => drained, 60_000, 5));
  client.end();
  assert.ok(await runUntil(clock, () => received === writes * 16 * 1024, 60_000, 5));
});

test('setTimeout emits timeout after idle time on the stack clock', async () => {
  const { clock, a, b } = await stackPair();
  b.createServer(() => {}).listen(80);
  const client = a.connect(80, '10.0.0.2');
  let timeouts = 0;
  client.setTimeout(1000, () => timeouts++);
  await runFor(clock, 900, 10);
  assert.is(timeouts, 0);
  await runFor(clock, 200, 10);
  assert.is(timeouts, 1);
});

test.run();
