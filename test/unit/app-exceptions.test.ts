// An exception thrown by an application's listener (TCP 'connection', 'connect', 'data', 'end',
// 'close', 'drain', 'timeout', UDP 'message') reaches the application as Node's does: as an
// uncaught exception carrying the original error, while the socket goes on working. The
// stack's receive path never sees it: no frame is counted as an internal error and the
// segment's processing completes (its ACK still goes out, nothing is retransmitted).
//
// Every scenario runs twice, on two tapstack stacks in virtual time and on Node's own
// node:net / node:dgram over 127.0.0.1, and both must give the same sequence of events.

import dgram from 'node:dgram';
import net from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { TcpSocket } from '../../src/index.ts';
import type { Stack } from '../../src/stack.ts';
import { stackPair } from '../helpers/tcp-pair.ts';

type Listener = (...args: any[]) => void;

interface Sock {
  on(event: string, fn: Listener): unknown;
  write(data: string | Buffer, cb?: (err?: Error | null) => void): boolean;
  end(): unknown;
  end(data: string): unknown;
  destroy(): unknown;
  resume(): unknown;
  setTimeout(ms: number): unknown;
}

interface Srv {
  on(event: string, fn: Listener): unknown;
  close(): unknown;
}

interface Udp {
  on(event: string, fn: Listener): unknown;
  send(msg: string, port: number, host: string): void;
  close(): unknown;
}

/** One implementation of the net/dgram API: tapstack's or Node's. */
interface World {
  name: string;
  createServer(listener?: (s: Sock) => void): Srv;
  listen(server: Srv): Promise<number>;
  connect(port: number): Sock;
  /** A UDP socket bound on the server's side, and its port. */
  bindUdp(): Promise<{ socket: Udp; port: number }>;
  /** A UDP socket on the client's side. */
  createUdp(): Udp;
  /** The address the client side sends UDP to. */
  udpHost: string;
  /** Lets time pass (virtual or real) until cond() holds or the limit passes. */
  until(cond: () => boolean, limitMs?: number): Promise<boolean>;
  /** Has the peer acknowledged everything this socket sent? (Node: not observable, true.) */
  acked(s: Sock): boolean;
  /** After the scenario: the stacks' own checks (no internal-error drop, no retransmission). */
  check(): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function internalErrors(stack: Stack): string[] {
  const out: string[] = [];
  for (const [layer, c] of Object.entries(stack.counters()))
    for (const reason of Object.keys(c.drops)) if (reason.startsWith('internal-error')) out.push(`${layer}: ${reason}`);
  return out;
}

async function tapstackWorld(): Promise<World> {
  // A send buffer smaller than the drain scenario's write, so that 'drain' comes from ACKs.
  const { clock, a, b } = await stackPair({ tcp: { sendBufferSize: 64 * 1024 } });
  return {
    name: 'tapstack',
    createServer: (listener) => b.createServer(listener as (s: TcpSocket) => void) as unknown as Srv,
    async listen(server) {
      const s = server as unknown as ReturnType<Stack['createServer']>;
      s.listen(0);
      return s.address()!.port;
    },
    connect: (port) => a.connect({ port, host: '10.0.0.2' }) as unknown as Sock,
    async bindUdp() {
      const socket = b.createSocket('udp4').bind(0);
      return { socket: socket as unknown as Udp, port: socket.address().port };
    },
    createUdp: () => a.createSocket('udp4') as unknown as Udp,
    udpHost: '10.0.0.2',
    async until(cond, limitMs = 10_000) {
      for (let t = 0; t < limitMs && !cond(); t++) {
        clock.advance(1);
        await new Promise((r) => setImmediate(r));
      }
      return cond();
    },
    acked(s) {
      const conn = (s as unknown as TcpSocket).connection;
      return conn === null || conn.snd.una === conn.snd.max;
    },
    check() {
      assert.equal([...internalErrors(a), ...internalErrors(b)], [], 'no frame counted as an internal error');
      assert.is(a.tcp.counters.retransmits, 0, 'client retransmits');
      assert.is(b.tcp.counters.retransmits, 0, 'server retransmits');
    },
  };
}

function nodeWorld(): World {
  return {
    name: 'node',
    createServer: (listener) => net.createServer(listener as (s: net.Socket) => void),
    listen: (server) =>
      new Promise((resolve) => {
        const s = server as net.Server;
        s.listen(0, '127.0.0.1', () => resolve((s.address() as net.AddressInfo).port));
      }),
    connect: (port) => net.connect(port, '127.0.0.1'),
    bindUdp: () =>
      new Promise((resolve) => {
        const socket = dgram.createSocket('udp4');
        socket.bind(0, '127.0.0.1', () => resolve({ socket, port: socket.address().port }));
      }),
    createUdp: () => dgram.createSocket('udp4'),
    udpHost: '127.0.0.1',
    async until(cond, limitMs = 5_000) {
      const end = Date.now() + limitMs;
      while (!cond() && Date.now() < end) await sleep(2);
      return cond();
    },
    acked: () => true,
    check() {},
  };
}

interface Run {
  log: string[];
  /** Throws a new Error('boom-<what>') and remembers it. */
  boom(what: string): never;
  /** boom(what) the first time only. */
  boomOnce(what: string): void;
  /** Waits for the uncaught exception of boom(what). */
  uncaught(what: string): Promise<void>;
}

/**
 * Runs scenario in world w with a process 'uncaughtException' listener of its own (uvu has
 * none; without one the process would die, as Node's would), and returns the events logged.
 */
async function run(w: World, scenario: (w: World, r: Run) => Promise<void>): Promise<string[]> {
  const log: string[] = [];
  const thrown: Error[] = [];
  const caught: unknown[] = [];
  const once = new Set<string>();
  const onUncaught = (err: unknown): void => {
    caught.push(err);
    log.push(`uncaught ${(err as Error).message}`);
  };
  process.on('uncaughtException', onUncaught);
  try {
    const r: Run = {
      log,
      boom(what) {
        const err = new Error(`boom-${what}`);
        thrown.push(err);
        throw err;
      },
      boomOnce(what) {
        if (!once.has(what)) {
          once.add(what);
          r.boom(what);
        }
      },
      async uncaught(what) {
        const ok = await w.until(() => log.includes(`uncaught boom-${what}`));
        assert.ok(ok, `${w.name}: boom-${what} reported as an uncaught exception; log: ${JSON.stringify(log)}`);
      },
    };
    await scenario(w, r);
    // Give stray events a moment to show up in the log.
    await w.until(() => false, 20);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  assert.is(caught.length, thrown.length, `${w.name}: every exception thrown is uncaught once`);
  for (let i = 0; i < thrown.length; i++) assert.ok(caught[i] === thrown[i], `${w.name}: the original error object`);
  w.check();
  return log;
}

/** Logs c's 'close'; end() ends our side and waits for it, then closes the server. */
function closing(w: World, r: Run, c: Sock, server: Srv, suffix = ''): { end(): Promise<void> } {
  c.on('close', (hadError: boolean) => r.log.push(`close ${hadError}${suffix}`));
  return {
    async end() {
      c.end();
      await w.until(() => r.log.includes(`close false${suffix}`));
      server.close();
    },
  };
}

/** A server that echoes what it reads and ends when its peer does. */
function echoServer(w: World, onConnection?: (s: Sock) => void): Srv {
  return w.createServer((s) => {
    onConnection?.(s);
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end());
  });
}

/** The same scenario on tapstack and on Node: both must log `expected`. */
async function both(scenario: (w: World, r: Run) => Promise<void>, expected: string[]): Promise<void> {
  const ours = await run(await tapstackWorld(), scenario);
  const node = await run(nodeWorld(), scenario);
  assert.equal(node, expected, 'Node');
  assert.equal(ours, expected, 'tapstack');
}

test("a throwing 'data' listener: uncaught exception, the data is acknowledged, later data still arrives", async () => {
  await both(
    async (w, r) => {
      let peer: Sock | null = null;
      const server = echoServer(w, (s) => {
        peer = s;
        s.write('one');
      });
      const c = w.connect(await w.listen(server));
      const close = closing(w, r, c, server);
      c.on('data', (d: Buffer) => {
        r.log.push(`data ${d}`);
        r.boomOnce('data');
      });
      c.on('end', () => r.log.push('end'));
      await r.uncaught('data');
      assert.ok(await w.until(() => w.acked(peer!)), `${w.name}: 'one' acknowledged`);
      peer!.write('two');
      await w.until(() => r.log.includes('data two'));
      await close.end();
    },
    ['data one', 'uncaught boom-data', 'data two', 'end', 'close false'],
  );
});

test("a throwing 'connect' listener: uncaught exception, no 'ready' (as Node), the socket goes on working", async () => {
  await both(
    async (w, r) => {
      const server = echoServer(w);
      const c = w.connect(await w.listen(server));
      const close = closing(w, r, c, server);
      c.on('connect', () => {
        r.log.push('connect');
        r.boom('connect');
      });
      c.on('ready', () => r.log.push('ready'));
      await r.uncaught('connect');
      // Node 20 starts reading from the 'connect' emission too: a 'data' listener added now
      // (resume) starts it again. (Node would wedge a write made before 'connect'.)
      c.on('data', (d: Buffer) => r.log.push(`data ${d}`));
      c.write('ping');
      await w.until(() => r.log.includes('data ping'));
      await close.end();
    },
    ['connect', 'uncaught boom-connect', 'data ping', 'close false'],
  );
});

test("a throwing 'connect' listener on tapstack: a write and end() made while connecting still go out", async () => {
  await run(await tapstackWorld(), async (w, r) => {
    let got = '';
    const server = w.createServer((s) => {
      s.on('data', (d: Buffer) => (got += d));
      s.on('end', () => {
        r.log.push(`server end ${got}`);
        s.end();
      });
    });
    const c = w.connect(await w.listen(server));
    closing(w, r, c, server);
    c.on('connect', () => r.boom('connect'));
    c.write('early', (err) => r.log.push(`write ${err ? err.message : 'ok'}`));
    c.end();
    c.resume();
    await r.uncaught('connect');
    await w.until(() => r.log.includes('close false'));
    assert.equal(r.log, ['write ok', 'uncaught boom-connect', 'server end early', 'close false']);
  });
});

test("a throwing 'end' listener: uncaught exception, the FIN is acknowledged, the socket can still end and close", async () => {
  await both(
    async (w, r) => {
      let peer: Sock | null = null;
      const server = w.createServer((s) => {
        peer = s;
        s.end('bye');
      });
      const c = w.connect(await w.listen(server));
      const close = closing(w, r, c, server);
      c.on('data', (d: Buffer) => r.log.push(`data ${d}`));
      c.on('end', () => {
        r.log.push('end');
        r.boom('end');
      });
      await r.uncaught('end');
      assert.ok(await w.until(() => w.acked(peer!)), `${w.name}: 'bye' and the FIN acknowledged`);
      // As in Node, the throw cut the stream's own end handling short: end our side by hand.
      await close.end();
    },
    ['data bye', 'end', 'uncaught boom-end', 'close false'],
  );
});

test("a throwing 'close' listener: uncaught exception, the next connection works", async () => {
  await both(
    async (w, r) => {
      const server = echoServer(w, (s) => s.write('hi'));
      const port = await w.listen(server);
      const c = w.connect(port);
      c.on('data', (d: Buffer) => r.log.push(`data ${d}`));
      c.on('end', () => r.log.push('end'));
      c.on('close', (hadError: boolean) => {
        r.log.push(`close ${hadError}`);
        r.boom('close');
      });
      c.end();
      await r.uncaught('close');
      const c2 = w.connect(port);
      const close = closing(w, r, c2, server, ' again');
      c2.on('data', (d: Buffer) => r.log.push(`data ${d} again`));
      await close.end();
    },
    ['data hi', 'end', 'close false', 'uncaught boom-close', 'data hi again', 'close false again'],
  );
});

test("a throwing 'drain' listener: uncaught exception, every byte still arrives, later writes go out", async () => {
  const size = 256 * 1024;
  await both(
    async (w, r) => {
      let got = 0;
      const server = w.createServer((s) => {
        s.on('data', (d: Buffer) => (got += d.length));
        s.on('end', () => {
          r.log.push(`server got ${got}`);
          s.end();
        });
      });
      const c = w.connect(await w.listen(server));
      c.on('drain', () => {
        r.log.push('drain');
        r.boom('drain');
      });
      r.log.push(`write ${c.write(Buffer.alloc(size, 1))}`);
      await r.uncaught('drain');
      c.write('tail', (err) => r.log.push(`tail ${err ? err.message : 'ok'}`));
      await w.until(() => r.log.includes('tail ok'));
      c.end();
      await w.until(() => r.log.includes(`server got ${size + 4}`));
      // The throw cut the stream's afterWrite short, before it counted the write done: the
      // Writable never emits 'finish', so the socket is not destroyed by itself (Node too).
      c.destroy();
      server.close();
    },
    ['write false', 'drain', 'uncaught boom-drain', 'tail ok', `server got ${size + 4}`],
  );
});

test("a throwing 'timeout' listener: uncaught exception, the timer comes again after activity", async () => {
  await both(
    async (w, r) => {
      const server = echoServer(w);
      const c = w.connect(await w.listen(server));
      closing(w, r, c, server);
      c.setTimeout(50);
      c.on('timeout', () => {
        r.log.push('timeout');
        r.boomOnce('timeout');
        c.end();
      });
      c.on('data', (d: Buffer) => r.log.push(`data ${d}`));
      await r.uncaught('timeout');
      c.write('x');
      await w.until(() => r.log.includes('close false'));
      server.close();
    },
    ['timeout', 'uncaught boom-timeout', 'data x', 'timeout', 'close false'],
  );
});

test("a throwing server 'connection' listener: uncaught exception, the later listeners miss it (as Node), the connection works", async () => {
  await both(
    async (w, r) => {
      let accepted: Sock | null = null;
      const server = w.createServer((s) => {
        accepted = s;
        r.log.push('connection');
        r.boom('connection');
      });
      server.on('connection', () => r.log.push('second listener'));
      const c = w.connect(await w.listen(server));
      const close = closing(w, r, c, server);
      let connected = false;
      c.on('connect', () => (connected = true));
      c.on('data', (d: Buffer) => r.log.push(`data ${d}`));
      await r.uncaught('connection');
      await w.until(() => connected);
      const s = accepted!;
      s.on('data', (d: Buffer) => s.write(d));
      s.on('end', () => s.end());
      c.write('ping');
      await w.until(() => r.log.includes('data ping'));
      assert.ok(await w.until(() => w.acked(c)), `${w.name}: 'ping' acknowledged`);
      await close.end();
    },
    ['connection', 'uncaught boom-connection', 'data ping', 'close false'],
  );
});

test("a throwing UDP 'message' listener: uncaught exception, the later listeners miss that datagram, the next one arrives", async () => {
  await both(
    async (w, r) => {
      const { socket, port } = await w.bindUdp();
      socket.on('message', (m: Buffer) => {
        r.log.push(`message ${m}`);
        r.boomOnce('message');
      });
      socket.on('message', (m: Buffer) => r.log.push(`second listener ${m}`));
      const sender = w.createUdp();
      sender.send('m1', port, w.udpHost);
      await r.uncaught('message');
      sender.send('m2', port, w.udpHost);
      await w.until(() => r.log.includes('second listener m2'));
      socket.close();
      sender.close();
    },
    ['message m1', 'uncaught boom-message', 'message m2', 'second listener m2'],
  );
});

test.run();
