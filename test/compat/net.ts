// Compatibility scenarios for net (issue 11, items 1 and 2): each runs on Node's own net in a
// namespace and on two tapstacks; the records (events in order, error codes, bytes) must match.
import { once } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';
import { type CompatEnv, recordEvents } from '../helpers/node-reference.ts';

const SOCKET_EVENTS = ['connect', 'ready', 'end', 'finish', 'close', 'error'] as const;

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves at 'close' (events.once would reject on an 'error' before it; s.closed is set before 'close'). */
const closed = (s: Socket): Promise<void> => new Promise((r) => s.once('close', () => r()));

async function listen(server: Server, port: number, host: string): Promise<void> {
  server.listen(port, host);
  await once(server, 'listening');
}

/** Closes a server, destroying the sockets given first. */
async function shut(server: Server, sockets: Socket[] = []): Promise<void> {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
}

function errInfo(err: unknown): Record<string, unknown> {
  const e = err as NodeJS.ErrnoException & { hostname?: string };
  return { name: e.name, code: e.code, syscall: e.syscall, message: e.message, hostname: e.hostname };
}

function thrown(fn: () => unknown): Record<string, unknown> | null {
  try {
    fn();
    return null;
  } catch (err) {
    return { ...errInfo(err), rangeError: err instanceof RangeError, typeError: err instanceof TypeError };
  }
}

export const scenarios = {
  /** Nobody reads the server's socket; the client ends (with no data, then with data). */
  async unreadEnd(env: CompatEnv): Promise<unknown> {
    const out: Record<string, unknown> = {};
    for (const payload of ['', 'hello']) {
      const log: string[] = [];
      const accepted: Socket[] = [];
      const server = env.serverNet.createServer((s: Socket) => {
        accepted.push(s);
        recordEvents(log, 'server', s, SOCKET_EVENTS);
      });
      await listen(server, 7201, env.serverAddress);
      const client = env.clientNet.connect({ port: 7201, host: env.serverAddress });
      recordEvents(log, 'client', client, SOCKET_EVENTS);
      client.resume();
      await Promise.all([once(client, 'connect'), once(server, 'connection')]);
      client.end(payload);
      let closedBack = false;
      server.close(() => {
        closedBack = true;
        log.push('server-close-callback');
      });
      await wait(300);
      log.push(`after300:closed=${closedBack}`);
      await new Promise<void>((r) => {
        if (closedBack) r();
        else server.once('close', () => r());
        for (const s of accepted) s.destroy();
      });
      client.destroy();
      await wait(20);
      // Between the two sockets only each one's order counts (libuv closes handles LIFO).
      out[payload === '' ? 'empty' : 'data'] = { client: log.filter((e) => e.startsWith('client')), rest: log.filter((e) => !e.startsWith('client')) };
    }
    return out;
  },

  /** destroy() with data the application never read, still in the stream's buffer: FIN, not RST. */
  async destroyWithBufferedData(env: CompatEnv): Promise<unknown> {
    const log: string[] = [];
    const server = env.serverNet.createServer((s: Socket) => {
      // No 'data' listener: the bytes sit in the stream's buffer.
      setTimeout(() => {
        s.write('bye');
        s.destroy();
      }, 100);
    });
    await listen(server, 7202, env.serverAddress);
    const client = env.clientNet.connect({ port: 7202, host: env.serverAddress });
    recordEvents(log, 'client', client, SOCKET_EVENTS);
    const chunks: Buffer[] = [];
    client.on('data', (d: Buffer) => chunks.push(d));
    client.write('garbage the server never reads');
    await closed(client);
    await shut(server);
    return { log, got: Buffer.concat(chunks).toString() };
  },

  /** localAddress that is not ours: bind's EADDRNOTAVAIL. */
  async localAddressNotOurs(env: CompatEnv): Promise<unknown> {
    const log: string[] = [];
    const server = env.serverNet.createServer((s: Socket) => s.destroy());
    await listen(server, 7203, env.serverAddress);
    const client = env.clientNet.connect({ port: 7203, host: env.serverAddress, localAddress: '10.9.9.9' });
    recordEvents(log, 'client', client, SOCKET_EVENTS);
    const [err] = (await once(client, 'error')) as [Error];
    await closed(client);
    // Our own address as localAddress is fine.
    const ok = env.clientNet.connect({ port: 7203, host: env.serverAddress, localAddress: env.clientAddress });
    await once(ok, 'connect');
    const local = ok.localAddress === env.clientAddress;
    ok.destroy();
    await shut(server);
    const e = errInfo(err);
    return { log, code: e.code, syscall: e.syscall, message: String(e.message).replace(/ 10\.9\.9\.9.*$/, ' <addr>'), local };
  },

  /** An AbortSignal: already aborted, and aborted once connected. */
  async abortSignal(env: CompatEnv): Promise<unknown> {
    const log: string[] = [];
    const accepted: Socket[] = [];
    const server = env.serverNet.createServer((s: Socket) => {
      accepted.push(s);
      s.resume();
    });
    await listen(server, 7204, env.serverAddress);
    const ac1 = new AbortController();
    ac1.abort();
    const a = env.clientNet.connect({ port: 7204, host: env.serverAddress, signal: ac1.signal });
    // Node 20 still connects a socket whose signal was aborted before connect (its connect()
    // revives a destroyed socket), 'connect' after 'close'; we do not: not compared.
    recordEvents(log, 'pre', a, ['error', 'close']);
    // Node's 'close' of a socket with no handle yet comes on the next tick, before an await resumes.
    const aClosed = closed(a);
    const [e1] = (await once(a, 'error')) as [Error];
    await aClosed;
    const ac2 = new AbortController();
    const b = env.clientNet.connect({ port: 7204, host: env.serverAddress, signal: ac2.signal });
    recordEvents(log, 'post', b, SOCKET_EVENTS);
    await once(b, 'connect');
    ac2.abort();
    const [e2] = (await once(b, 'error')) as [Error];
    await closed(b);
    await wait(30);
    a.destroy();
    await shut(server, accepted);
    return { log, e1: errInfo(e1), e2: errInfo(e2), destroyed: [a.destroyed, b.destroyed] };
  },

  /** onread: the bytes come through the callback into the given buffer, no 'data' events. */
  async onread(env: CompatEnv): Promise<unknown> {
    const log: string[] = [];
    const server = env.serverNet.createServer((s: Socket) => s.end('hello world, in pieces'));
    await listen(server, 7205, env.serverAddress);
    const buf = Buffer.alloc(64);
    const got: string[] = [];
    let sameBuffer = true;
    const client = env.clientNet.connect({
      port: 7205,
      host: env.serverAddress,
      onread: {
        buffer: buf,
        callback(n: number, b: Buffer) {
          if (b !== buf) sameBuffer = false;
          got.push(b.toString('latin1', 0, n));
          return true;
        },
      },
    });
    recordEvents(log, 'client', client, SOCKET_EVENTS);
    client.on('data', () => log.push('client:data'));
    await closed(client);
    await shut(server);
    return { log, got: got.join(''), sameBuffer, bytesRead: client.bytesRead };
  },

  /** onread's callback returning false pauses reading, the FIN included, until resume(). */
  async onreadPause(env: CompatEnv): Promise<unknown> {
    const log: string[] = [];
    const server = env.serverNet.createServer((s: Socket) => s.end('hello world, in pieces'));
    await listen(server, 7214, env.serverAddress);
    const buf = Buffer.alloc(5);
    let calls = 0;
    const client = env.clientNet.connect({
      port: 7214,
      host: env.serverAddress,
      onread: {
        buffer: buf,
        callback(n: number, b: Buffer) {
          log.push(`read:${b.toString('latin1', 0, n)}`);
          return ++calls !== 1;
        },
      },
    });
    recordEvents(log, 'client', client, SOCKET_EVENTS);
    const cClosed = closed(client);
    await wait(150);
    log.push(`resume:paused=${client.isPaused()}`);
    client.resume();
    await cClosed;
    await shut(server);
    return log;
  },

  /** family with an IPv4 address: 4 connects; 6 is ignored for an IP literal (net.js lookupAndConnect). */
  async family(env: CompatEnv): Promise<unknown> {
    const out: Record<string, unknown> = {};
    const server = env.serverNet.createServer((s: Socket) => s.end());
    await listen(server, 7206, env.serverAddress);
    for (const family of [4, 6]) {
      const log: string[] = [];
      const c = env.clientNet.connect({ port: 7206, host: env.serverAddress, family });
      recordEvents(log, 'client', c, SOCKET_EVENTS);
      c.resume();
      await closed(c);
      out[family] = log;
    }
    await shut(server);
    return out;
  },

  /** listen() twice throws; after close() the port refuses at once. */
  async listenTwice(env: CompatEnv): Promise<unknown> {
    const log: string[] = [];
    const server = env.serverNet.createServer();
    server.on('listening', () => log.push('listening'));
    await listen(server, 7207, env.serverAddress);
    const second = thrown(() => server.listen(7208, env.serverAddress));
    await wait(20);
    server.close(() => log.push('closed'));
    const c = env.clientNet.connect({ port: 7207, host: env.serverAddress });
    recordEvents(log, 'client', c, SOCKET_EVENTS);
    await closed(c);
    return { log, second };
  },

  /** maxConnections: 1 closes the second (FIN) and emits 'drop'; 0 is no limit (Node 20). */
  async maxConnections(env: CompatEnv): Promise<unknown> {
    const out: Record<string, unknown> = {};
    for (const max of [1, 0]) {
      const log: string[] = [];
      const serverLog: string[] = [];
      const accepted: Socket[] = [];
      const server = env.serverNet.createServer((s: Socket) => {
        accepted.push(s);
        serverLog.push('connection');
      });
      server.maxConnections = max;
      let drop: Record<string, unknown> | null = null;
      server.on('drop', (d?: Record<string, unknown>) => {
        serverLog.push('drop');
        drop = d
          ? {
              keys: Object.keys(d).sort(),
              localAddress: d.localAddress === env.serverAddress,
              localPort: d.localPort,
              remoteAddress: d.remoteAddress === env.clientAddress,
              remoteFamily: d.remoteFamily,
              remotePort: typeof d.remotePort,
            }
          : null;
      });
      await listen(server, 7209, env.serverAddress);
      const first = env.clientNet.connect({ port: 7209, host: env.serverAddress });
      await once(first, 'connect');
      await wait(50);
      const second = env.clientNet.connect({ port: 7209, host: env.serverAddress });
      recordEvents(log, 'second', second, SOCKET_EVENTS);
      second.resume();
      await wait(200);
      first.destroy();
      second.destroy();
      await shut(server, accepted);
      await wait(30);
      out[max] = { client: log, server: serverLog, drop };
    }
    return out;
  },

  /** Writing after the peer's FIN: EPIPE without allowHalfOpen; allowed with it. */
  async writeAfterPeerFin(env: CompatEnv): Promise<unknown> {
    const out: Record<string, unknown> = {};
    for (const allowHalfOpen of [false, true]) {
      const log: string[] = [];
      const received: Buffer[] = [];
      const server = env.serverNet.createServer({ allowHalfOpen: true }, (s: Socket) => {
        s.on('data', (d: Buffer) => received.push(d));
        s.on('end', () => s.end());
        s.end();
      });
      await listen(server, 7210, env.serverAddress);
      const c = env.clientNet.connect({ port: 7210, host: env.serverAddress, allowHalfOpen });
      recordEvents(log, 'client', c, SOCKET_EVENTS);
      const cClosed = closed(c);
      c.resume();
      await once(c, 'end');
      await wait(30);
      let cbErr: string | undefined = 'not called';
      const ret = c.write('late', (err?: Error | null) => {
        cbErr = (err as NodeJS.ErrnoException | null | undefined)?.code ?? String(err);
      });
      log.push(`write:${ret}`);
      await wait(50);
      if (allowHalfOpen) c.end();
      await cClosed;
      await wait(30);
      await shut(server);
      out[String(allowHalfOpen)] = { log, cbErr, received: Buffer.concat(received).toString() };
    }
    return out;
  },

  /** Bad ports throw at once (net.js validatePort). */
  async badPort(env: CompatEnv): Promise<unknown> {
    const server = env.serverNet.createServer();
    return {
      connectHigh: thrown(() => env.clientNet.connect({ port: 70000, host: env.serverAddress })),
      connectNegative: thrown(() => env.clientNet.connect({ port: -1, host: env.serverAddress })),
      connectText: thrown(() => env.clientNet.connect({ port: 'abc' as unknown as number, host: env.serverAddress })),
      listenHigh: thrown(() => server.listen(70000, env.serverAddress)),
      listenOptions: thrown(() => server.listen({ port: 65536, host: env.serverAddress })),
      listening: server.listening,
    };
  },

  /** close() on a server that never listened: 'close', and the callback's ERR_SERVER_NOT_RUNNING. */
  async closeNotRunning(env: CompatEnv): Promise<unknown> {
    const log: string[] = [];
    const server = env.serverNet.createServer();
    server.on('close', () => log.push('close'));
    server.close((err?: Error) => log.push(`cb:${(err as NodeJS.ErrnoException | undefined)?.code}:${err?.message}`));
    await wait(30);
    return log;
  },

  /** Addresses while connecting: undefined (net.js _getpeername with connecting), then set. */
  async addressesWhileConnecting(env: CompatEnv): Promise<unknown> {
    const server = env.serverNet.createServer((s: Socket) => s.end());
    await listen(server, 7211, env.serverAddress);
    const c = env.clientNet.connect({ port: 7211, host: env.serverAddress });
    const look = (): unknown => [c.connecting, c.remoteAddress, c.remotePort, c.remoteFamily, c.localAddress, c.localPort, c.pending, c.readyState];
    const before = look();
    await once(c, 'connect');
    const after = [c.connecting, c.remoteAddress === env.serverAddress, c.remotePort, c.localAddress === env.clientAddress, typeof c.localPort, c.pending, c.readyState];
    c.resume();
    await closed(c);
    await shut(server);
    return { before, after };
  },

  /** The lookup option: Node's signature, the 'lookup' event, ENOTFOUND from the lookup. */
  async lookup(env: CompatEnv): Promise<unknown> {
    const log: string[] = [];
    const server = env.serverNet.createServer((s: Socket) => s.end('hi'));
    await listen(server, 7212, env.serverAddress);
    const calls: unknown[] = [];
    type LookupCb = (err: Error | null, address?: unknown, family?: number) => void;
    const fixed = (host: string, options: Record<string, unknown>, cb: LookupCb): void => {
      calls.push({ host, all: options.all ?? false, family: options.family });
      setTimeout(() => {
        if (options.all) cb(null, [{ address: env.serverAddress, family: 4 }]);
        else cb(null, env.serverAddress, 4);
      }, 5);
    };
    for (const family of [undefined, 4]) {
      const c = env.clientNet.connect({ port: 7212, host: 'server.test', family, lookup: fixed as never });
      const label = `f${family ?? 0}`;
      recordEvents(log, label, c, SOCKET_EVENTS);
      c.on('lookup', (err: Error | null, address: unknown, fam: unknown, host: string) =>
        log.push(`${label}:lookup:${err ? (err as NodeJS.ErrnoException).code : 'ok'}:${address === env.serverAddress}:${String(fam)}:${host}`),
      );
      c.resume();
      await closed(c);
    }
    const failing = (host: string, _options: unknown, cb: LookupCb): void => {
      const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo', hostname: host });
      process.nextTick(cb, err);
    };
    const bad = env.clientNet.connect({ port: 7212, host: 'nowhere.test', family: 4, lookup: failing as never });
    recordEvents(log, 'bad', bad, SOCKET_EVENTS);
    bad.on('lookup', (err: Error | null, address: unknown, fam: unknown, host: string) =>
      log.push(`bad:lookup:${(err as NodeJS.ErrnoException | null)?.code}:${String(address)}:${String(fam)}:${host}`),
    );
    const [err] = (await once(bad, 'error')) as [Error];
    await closed(bad);
    await shut(server);
    return { log, calls, err: errInfo(err) };
  },

  /** listen() on a host name resolves it ('localhost': Node's 127.0.0.1; ours: the stack's address). */
  async listenHostName(env: CompatEnv): Promise<unknown> {
    const server = env.serverNet.createServer();
    server.listen(7213, 'localhost');
    await once(server, 'listening');
    const a = server.address() as AddressInfo;
    await shut(server);
    return { port: a.port, family: a.family, ours: a.address === (env.kind === 'node' ? '127.0.0.1' : env.serverAddress) };
  },
};
