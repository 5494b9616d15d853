// A host-side UDP client, run inside a test namespace with Node's own dgram (the kernel's UDP):
//
//   udp-echo-client.ts echo HOST PORT SIZE COUNT [SECONDS]
//     COUNT sequential round trips of SIZE-byte datagrams (each one waits for its echo, up to
//     1 s, before the next), stopping early after SECONDS. Prints one JSON line:
//     { sent, received, lost, corrupted, seconds, roundTripsPerSecond }.
//   udp-echo-client.ts refused HOST PORT
//     Sends from a connected socket to a closed port and prints the error code it gets
//     (the kernel turns the ICMP port unreachable into ECONNREFUSED), or "none".

import dgram from 'node:dgram';

function pattern(seq: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (seq * 31 + i * 7 + (i >> 8)) & 255;
  if (size >= 4) b.writeUInt32BE(seq, 0);
  return b;
}

async function echo(host: string, port: number, size: number, count: number, seconds: number): Promise<void> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.connect(port, host, resolve));
  let sent = 0;
  let received = 0;
  let corrupted = 0;
  let waiting: ((msg: Buffer | null) => void) | null = null;
  socket.on('message', (msg) => waiting?.(msg));
  socket.on('error', () => waiting?.(null));
  const start = performance.now();
  const deadline = start + seconds * 1000;
  for (let seq = 0; seq < count && performance.now() < deadline; seq++) {
    const expected = pattern(seq, size);
    const reply = await new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 1000);
      waiting = (msg) => {
        clearTimeout(timer);
        resolve(msg);
      };
      socket.send(expected);
      sent++;
    });
    waiting = null;
    if (reply === null) continue;
    if (reply.equals(expected)) received++;
    else corrupted++;
  }
  const elapsed = (performance.now() - start) / 1000;
  socket.close();
  const result = { sent, received, lost: sent - received - corrupted, corrupted, seconds: elapsed, roundTripsPerSecond: received / elapsed };
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function refused(host: string, port: number): Promise<void> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.connect(port, host, resolve));
  const code = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('none'), 3000);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? 'unknown');
    });
    socket.send('anyone there?');
  });
  socket.close();
  process.stdout.write(code + '\n');
}

const [mode, host = '10.0.0.2', port = '7', a = '64', b = '1000', c = '30'] = process.argv.slice(2);
if (mode === 'echo') await echo(host, Number(port), Number(a), Number(b), Number(c));
else if (mode === 'refused') await refused(host, Number(port));
else {
  process.stderr.write('usage: udp-echo-client.ts echo HOST PORT SIZE COUNT [SECONDS] | refused HOST PORT\n');
  process.exit(2);
}
