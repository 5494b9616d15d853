// The services as the CLI starts them, on one stack, used through the TCP of a second stack
// over an in-memory link (real time: Node's http keeps its own timers). No root needed.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RealClock } from '../../src/util/clock.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { SERVICE_NAMES, startServices, type StopService } from '../../src/services/index.ts';
import '../../src/services/all.ts';
import { createStack, type Stack } from '../../src/stack.ts';

let client: Stack;
let server: Stack;
let stopServices: StopService;

test.before(async () => {
  const clock = new RealClock();
  const [a, b] = createLinkPair(clock);
  client = await createStack({ link: a, clock, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  server = await createStack({ link: b, clock, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  stopServices = await startServices(server, SERVICE_NAMES);
});

test.after(async () => {
  await stopServices();
  await client.close();
  await server.close();
});

function open(port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = client.connect({ host: '10.0.0.2', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function readAll(socket: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

test('echo (7) returns 1 MB in order and closes after our FIN', async () => {
  const socket = await open(7);
  const data = randomBytes(1_000_000);
  const back = readAll(socket);
  socket.end(data);
  assert.ok((await back).equals(data));
});

test('discard (9) answers nothing and closes after our FIN', async () => {
  const socket = await open(9);
  const back = readAll(socket);
  socket.end(randomBytes(300_000));
  assert.is((await back).length, 0);
});

test('chargen (19) streams the pattern until we go away', async () => {
  const socket = await open(19);
  const got = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= 74 * 200) resolve(Buffer.concat(chunks));
    });
  });
  socket.destroy();
  const lines = got.toString('latin1').split('\r\n');
  assert.is(lines[0], ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg');
  assert.is(lines[95], lines[0]);
  assert.is(lines[1], lines[0]!.slice(1) + 'h');
});

function get(path: string, method = 'GET', body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { method, path, host: '10.0.0.2', createConnection: () => client.connect({ host: '10.0.0.2', port: 80 }) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('HTTP (80) through Node http on both ends: /bytes, /sha256, /stats', async () => {
  const bytes = await get('/bytes/2000000');
  assert.is(bytes.status, 200);
  assert.is(bytes.body.length, 2_000_000);
  for (let i = 0; i < bytes.body.length; i++) if (bytes.body[i] !== i % 251) assert.unreachable(`byte ${i}`);
  const body = randomBytes(1_500_000);
  const sha = await get('/sha256', 'POST', body);
  assert.is(sha.body.toString(), createHash('sha256').update(body).digest('hex'));
  const stats = JSON.parse((await get('/stats')).body.toString()) as Record<string, { rx: number }>;
  assert.ok(stats.ipv4!.rx > 1_000);
});

test('a port without a service is refused (ECONNREFUSED)', async () => {
  const err = await open(81).then(
    () => null,
    (e: NodeJS.ErrnoException) => e,
  );
  assert.is(err?.code, 'ECONNREFUSED');
});

test.run();
