// Host-side TCP clients on the kernel's own sockets (Node's net), run inside a test
// namespace against the stack. The same modes and RESULT line as /work/shared/peers' C
// tcpcli, so tests and benchmarks read either. Every mode is bounded in count and time.
//
//   tcpcli.ts conc HOST PORT N [HOLD_MS]  N simultaneous connections, each echoes its own
//                                     message; with HOLD_MS, all stay open that long after
//                                     the echoes (a line "HELD N" says when), then close
//   tcpcli.ts push HOST PORT BYTES    write BYTES, half-close, wait for the server's FIN -> MB/s
//   tcpcli.ts pull HOST PORT          read until the server's FIN -> MB/s
//   tcpcli.ts rr   HOST PORT N SIZE   N sequential SIZE-byte echo round trips
//   tcpcli.ts cr   HOST PORT N        N sequential connect / half-close / EOF / close
//
// Prints one line "RESULT mode=... key=value ..."; exits 2 on the time limit (TCPCLI_TIMEOUT s).

import net from 'node:net';

const started = performance.now();
const seconds = (): number => (performance.now() - started) / 1000;
const limitSeconds = Number(process.env.TCPCLI_TIMEOUT ?? 120);
setTimeout(() => {
  process.stdout.write('RESULT error=timeout\n');
  process.exit(2);
}, limitSeconds * 1000).unref();

function result(fields: Record<string, string | number>): void {
  process.stdout.write(`RESULT ${Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(' ')}\n`);
}

function connect(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Reads until the peer's FIN; resolves with the byte count. */
function readToEnd(socket: net.Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let total = 0;
    socket.on('data', (d: Buffer) => (total += d.length));
    socket.once('end', () => resolve(total));
    socket.once('error', reject);
  });
}

/** Each connection sends a message naming itself and must get exactly that back. */
async function conc(host: string, port: number, n: number, holdMs: number): Promise<void> {
  const t0 = seconds();
  const opened = await Promise.allSettled(Array.from({ length: n }, () => connect(host, port)));
  const sockets = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const connectFailures = opened.filter((r) => r.status === 'rejected');
  if (connectFailures.length > 0) process.stderr.write(`conc connect: ${String((connectFailures[0] as PromiseRejectedResult).reason)}\n`);
  const t1 = seconds();
  // Every socket is open at this point: all n connections exist at the same time.
  const echoes = sockets.map(
    (socket, i) =>
      new Promise<boolean>((resolve) => {
        const message = Buffer.from(`connection ${String(i).padStart(6, '0')} of ${n}\n`);
        let got = Buffer.alloc(0);
        socket.on('data', (d: Buffer) => {
          got = Buffer.concat([got, d]);
          if (got.length >= message.length) resolve(got.equals(message));
        });
        socket.once('error', () => resolve(false));
        socket.once('end', () => resolve(got.equals(message)));
        socket.write(message);
      }),
  );
  const outcomes = await Promise.all(echoes);
  const t2 = seconds();
  if (holdMs > 0) {
    // Every connection is still open: the caller may look at the server meanwhile.
    process.stdout.write(`HELD ${sockets.filter((s) => !s.destroyed).length}\n`);
    await new Promise((resolve) => setTimeout(resolve, holdMs));
  }
  const closing = seconds();
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          socket.once('close', () => resolve());
          socket.end();
          socket.resume();
        }),
    ),
  );
  const t3 = seconds();
  const echoed = outcomes.filter(Boolean).length;
  result({
    mode: 'conc',
    n,
    opened: sockets.length,
    connect_fail: connectFailures.length,
    echoed,
    bad: sockets.length - echoed,
    connect_secs: (t1 - t0).toFixed(3),
    echo_secs: (t2 - t1).toFixed(3),
    close_secs: (t3 - closing).toFixed(3),
  });
}

async function push(host: string, port: number, bytes: number): Promise<void> {
  const block = Buffer.alloc(256 * 1024);
  const socket = await connect(host, port);
  const t0 = seconds();
  const serverDone = readToEnd(socket);
  for (let left = bytes; left > 0; ) {
    const n = Math.min(left, block.length);
    left -= n;
    if (!socket.write(n === block.length ? block : block.subarray(0, n))) await new Promise((r) => socket.once('drain', r));
  }
  socket.end();
  await serverDone;
  const secs = seconds() - t0;
  socket.destroy();
  result({ mode: 'push', bytes, secs: secs.toFixed(4), MBps: (bytes / secs / 1e6).toFixed(1) });
}

async function pull(host: string, port: number): Promise<void> {
  const t0 = seconds();
  const socket = await connect(host, port);
  const bytes = await readToEnd(socket);
  const secs = seconds() - t0;
  socket.destroy();
  result({ mode: 'pull', bytes, secs: secs.toFixed(4), MBps: (bytes / secs / 1e6).toFixed(1) });
}

async function rr(host: string, port: number, n: number, size: number): Promise<void> {
  const socket = await connect(host, port);
  const message = Buffer.alloc(size, 'x');
  let pending: ((d: Buffer) => void) | null = null;
  socket.on('data', (d: Buffer) => pending?.(d));
  const t0 = seconds();
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      let got = 0;
      pending = (d) => {
        got += d.length;
        if (got >= size) resolve();
      };
      socket.once('error', reject);
      socket.write(message);
    });
    socket.removeAllListeners('error');
  }
  const secs = seconds() - t0;
  socket.destroy();
  result({ mode: 'rr', n, size, secs: secs.toFixed(4), rtps: Math.round(n / secs), avg_us: ((secs / n) * 1e6).toFixed(1) });
}

async function cr(host: string, port: number, n: number): Promise<void> {
  let fails = 0;
  const t0 = seconds();
  for (let i = 0; i < n; i++) {
    try {
      const socket = await connect(host, port);
      const done = readToEnd(socket);
      socket.end();
      await done;
      socket.destroy();
    } catch {
      fails++;
    }
  }
  const secs = seconds() - t0;
  result({ mode: 'cr', n, fails, secs: secs.toFixed(4), cps: Math.round((n - fails) / secs) });
}

async function main(): Promise<void> {
  const [mode, host, portText, ...rest] = process.argv.slice(2);
  const port = Number(portText);
  const num = (i: number): number => Number(rest[i]);
  if (!host || !Number.isInteger(port)) throw new Error('usage: tcpcli.ts conc|push|pull|rr|cr HOST PORT ...');
  if (mode === 'conc') return conc(host, port, num(0), rest[1] === undefined ? 0 : num(1));
  if (mode === 'push') return push(host, port, num(0));
  if (mode === 'pull') return pull(host, port);
  if (mode === 'rr') return rr(host, port, num(0), num(1));
  if (mode === 'cr') return cr(host, port, num(0));
  throw new Error(`unknown mode ${mode}`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`tcpcli: ${err.message}\n`);
    process.exit(1);
  },
);
