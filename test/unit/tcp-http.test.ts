// Node's own http module over our sockets: http.Server fed with server.emit('connection'),
// and http.request through createConnection. Node's http uses real timers, so the stacks run
// on a RealClock over an in-memory link.

import { createHash } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Stack } from '../../src/stack.ts';
import { realTimeStacks } from '../helpers/real-pair.ts';


function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** An http server that answers the method, URL and SHA-256 of the request body. */
function hashingServer(): http.Server {
  return http.createServer((req, res) => {
    const h = createHash('sha256');
    req.on('data', (d: Buffer) => h.update(d));
    req.on('end', () => {
      if (req.url?.startsWith('/bytes/')) {
        const n = Number(req.url.slice(7));
        const body = Buffer.alloc(n);
        for (let i = 0; i < n; i++) body[i] = i % 251;
        res.end(body);
      } else res.end(`${req.method} ${req.url} ${h.digest('hex')}`);
    });
  });
}

function request(options: http.RequestOptions, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('http.Server serves our sockets, http.request uses them through createConnection', async () => {
  const { a, b } = await realTimeStacks();
  const httpServer = hashingServer();
  b.createServer((socket) => httpServer.emit('connection', socket)).listen(80);
  const body = Buffer.alloc(300_000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 13) & 255;
  const post = await request(
    { method: 'POST', path: '/sha256', createConnection: () => a.connect(80, '10.0.0.2') as unknown as Duplex } as http.RequestOptions,
    body,
  );
  assert.is(post.status, 200);
  assert.is(post.body.toString(), `POST /sha256 ${sha256(body)}`);

  const get = await request({ path: '/bytes/1000000', createConnection: () => a.connect(80, '10.0.0.2') } as http.RequestOptions);
  assert.is(get.status, 200);
  assert.is(get.body.length, 1_000_000);
  for (let i = 0; i < get.body.length; i += 9973) assert.is(get.body[i], i % 251);
  httpServer.close();
  await a.close();
  await b.close();
});

test('keep-alive: one connection carries several requests through an http.Agent', async () => {
  const { a, b } = await realTimeStacks();
  const httpServer = hashingServer();
  let connections = 0;
  b.createServer((socket) => {
    connections++;
    httpServer.emit('connection', socket);
  }).listen(8080);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  (agent as unknown as { createConnection: () => unknown }).createConnection = () => a.connect(8080, '10.0.0.2');
  for (let i = 0; i < 5; i++) {
    const r = await request({ path: `/r${i}`, agent });
    assert.is(r.body.toString(), `GET /r${i} ${sha256(Buffer.alloc(0))}`);
  }
  assert.is(connections, 1);
  agent.destroy();
  httpServer.close();
  await a.close();
  await b.close();
});

test.run();
