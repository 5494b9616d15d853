// The TCP services' behaviour, driven through in-memory Duplex pairs (no TCP, no network):
// RFC 862/863/864 semantics, the HTTP endpoints and backpressure on the sending side.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RealClock } from '../../src/util/clock.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { createHttpServer } from '../../src/services/http.ts';
import { chargenConnection, discardConnection, echoConnection } from '../../src/services/tcp.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { duplexPair } from '../helpers/duplex-pair.ts';

const HWM = 16 * 1024;

function readAll(stream: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function readExactly(stream: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer): void => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        stream.off('data', onData);
        stream.pause();
        resolve(Buffer.concat(chunks).subarray(0, n));
      }
    };
    stream.on('data', onData);
  });
}

async function writeInChunks(stream: Duplex, data: Buffer, chunk: number): Promise<void> {
  for (let at = 0; at < data.length; at += chunk) {
    if (!stream.write(data.subarray(at, at + chunk))) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('echo returns every byte in order, then closes after the peer half-closes', async () => {
  const [client, server] = duplexPair(HWM);
  echoConnection(server);
  const data = randomBytes(1_000_003);
  const received = readAll(client);
  await writeInChunks(client, data, 7_919);
  assert.ok((await received).equals(data));
});

test('discard reads everything, sends nothing, and closes after the peer half-closes', async () => {
  const [client, server] = duplexPair(HWM);
  let discarded = 0;
  server.on('data', (c: Buffer) => (discarded += c.length));
  discardConnection(server);
  const received = readAll(client);
  await writeInChunks(client, randomBytes(500_000), 4_096);
  assert.is((await received).length, 0);
  assert.is(discarded, 500_000);
});

/** RFC 864's pattern written out independently: 72 printable characters per line, each line one further on. */
function expectedChargen(lines: number): string {
  const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
  let out = '';
  for (let k = 0; k < lines; k++) out += (printable + printable).slice(k % 95, (k % 95) + 72) + '\r\n';
  return out;
}

test('chargen sends the RFC 864 line pattern across write boundaries', async () => {
  const [client, server] = duplexPair(HWM);
  chargenConnection(server);
  // 2,000 lines span several 760-line blocks of the generator.
  const got = await readExactly(client, 2_000 * 74);
  assert.is(got.toString('latin1'), expectedChargen(2_000));
  client.end();
  client.resume();
  await new Promise((r) => client.once('end', r));
});

test('chargen with a byte limit (--chargen-bytes) sends exactly that much of the pattern, then FIN', async () => {
  for (const limit of [0, 1, 74 * 760 + 5, 300_001]) {
    const [client, server] = duplexPair(HWM);
    chargenConnection(server, limit);
    const got = await readAll(client);
    assert.is(got.length, limit);
    const lines = Math.ceil(limit / 74);
    assert.is(got.toString('latin1'), expectedChargen(lines).slice(0, limit));
  }
});

test('chargen respects backpressure: a reader that stops holds the generator at one buffer', async () => {
  const [client, server] = duplexPair(HWM);
  chargenConnection(server);
  client.pause();
  await tick(50);
  const buffered = server.writableLength + client.readableLength;
  // At most the reader's buffer, one pending write and the block write() refused.
  assert.ok(buffered <= HWM * 2 + 56_240 * 2, `buffered ${buffered}`);
  const before = buffered;
  await tick(50);
  assert.is(server.writableLength + client.readableLength, before, 'nothing more is produced while nobody reads');
  client.destroy();
  await tick(10);
  assert.ok(server.destroyed);
});

let stack: Stack;

test.before(async () => {
  const [link] = createLinkPair(new RealClock());
  stack = await createStack({ link, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02' });
});

test.after(async () => {
  await stack.close();
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request through Node's http client over a fresh Duplex pair into the service's http.Server. */
function request(method: string, path: string, body?: Buffer): Promise<Reply> {
  const server = createHttpServer(stack);
  const [clientEnd, serverEnd] = duplexPair(HWM);
  server.emit('connection', serverEnd);
  return new Promise((resolve, reject) => {
    const req = http.request({ method, path, host: '10.0.0.2', createConnection: () => clientEnd }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('GET /bytes/N answers N bytes where byte i is i mod 251', async () => {
  for (const n of [0, 1, 250, 251, 252, 64_256, 1_000_003]) {
    const r = await request('GET', `/bytes/${n}`);
    assert.is(r.status, 200);
    assert.is(r.headers['content-length'], String(n));
    assert.is(r.body.length, n);
    for (let i = 0; i < n; i++) if (r.body[i] !== i % 251) assert.unreachable(`byte ${i} of ${n} is ${r.body[i]}`);
  }
});

test('POST /sha256 answers the lowercase hex SHA-256 of the body', async () => {
  for (const body of [Buffer.alloc(0), Buffer.from('abc'), randomBytes(3_000_017)]) {
    const r = await request('POST', '/sha256', body);
    assert.is(r.status, 200);
    assert.is(r.body.toString(), createHash('sha256').update(body).digest('hex'));
  }
  // The well-known digest of "abc" (FIPS 180-2 example).
  const abc = await request('POST', '/sha256', Buffer.from('abc'));
  assert.is(abc.body.toString(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('GET /stats is the stack counters as JSON, with the process memory', async () => {
  const r = await request('GET', '/stats');
  assert.is(r.status, 200);
  assert.match(String(r.headers['content-type']), /application\/json/);
  const stats = JSON.parse(r.body.toString()) as Record<string, { rx: number; tx: number; drops: object }>;
  for (const layer of Object.keys(stack.counters())) {
    assert.type(stats[layer]!.rx, 'number');
    assert.type(stats[layer]!.tx, 'number');
  }
  // The gratuitous ARP sent at start-up shows in the ARP counters.
  assert.ok(stats.arp!.tx >= 1);
  const proc = stats.process as unknown as { rssBytes: number; heapUsedBytes: number };
  assert.ok(proc.rssBytes > 0 && proc.heapUsedBytes > 0);
});

test('GET / is an HTML page listing the counters', async () => {
  const r = await request('GET', '/');
  assert.is(r.status, 200);
  assert.match(String(r.headers['content-type']), /text\/html/);
  const page = r.body.toString();
  for (const layer of Object.keys(stack.counters())) assert.ok(page.includes(`<td>${layer}</td>`), layer);
});

test('unknown paths are 404, a wrong method 405', async () => {
  assert.is((await request('GET', '/nope')).status, 404);
  assert.is((await request('GET', '/bytes/abc')).status, 404);
  assert.is((await request('GET', '/bytes/')).status, 404);
  const post = await request('POST', '/', Buffer.from('x'));
  assert.is(post.status, 405);
  assert.is(post.headers.allow, 'GET, HEAD');
  assert.is((await request('GET', '/sha256')).status, 405);
});

test('HEAD /bytes/N announces the length without a body', async () => {
  const r = await request('HEAD', '/bytes/1073741824');
  assert.is(r.status, 200);
  assert.is(r.headers['content-length'], '1073741824');
  assert.is(r.body.length, 0);
});

test('GET /bytes/1GiB is streamed: a client that stops reading holds the server at a few buffers', async () => {
  const server = createHttpServer(stack);
  const [clientEnd, serverEnd] = duplexPair(HWM);
  server.emit('connection', serverEnd);
  clientEnd.write('GET /bytes/1073741824 HTTP/1.1\r\nhost: x\r\n\r\n');
  await tick(100);
  // Nobody reads clientEnd: the server must have stopped writing after a bounded amount.
  const held = serverEnd.writableLength + clientEnd.readableLength;
  assert.ok(held > 0 && held < 1024 * 1024, `held ${held}`);
  const heldBefore = held;
  await tick(50);
  assert.is(serverEnd.writableLength + clientEnd.readableLength, heldBefore);
  clientEnd.destroy();
});

test.run();
