// stack.net (Node's net module on a stack), stack.httpAgent(), name resolution (the default
// resolver and the stack's lookup option) and the HTTP service's 400 closing with a FIN
// (issue 11 items 1, 2 and 4). Two stacks over a memory link in real time; no root.
import { once } from 'node:events';
import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLinkPair } from '../../src/link/memory.ts';
import { startServices, type StopService } from '../../src/services/index.ts';
import '../../src/services/all.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import type { LookupFunction } from '../../src/tcp/lookup.ts';
import { RealClock } from '../../src/util/clock.ts';

let a: Stack;
let b: Stack;
let stop: StopService;
const lookups: string[] = [];

test.before(async () => {
  const clock = new RealClock();
  const [la, lb] = createLinkPair(clock);
  // a's resolver knows one name.
  const lookup: LookupFunction = (host, options, cb) => {
    lookups.push(host);
    if (host !== 'b.test') return process.nextTick(cb, Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
    if (options.all) process.nextTick(cb, null, [{ address: '10.0.0.2', family: 4 }]);
    else process.nextTick(cb, null, '10.0.0.2', 4);
  };
  a = await createStack({ clock, link: la, ip: '10.0.0.1/24', seed: 1, lookup });
  b = await createStack({ clock, link: lb, ip: '10.0.0.2/24', seed: 2 });
  stop = await startServices(b, ['http']);
});

test.after(async () => {
  await stop();
  await a.close();
  await b.close();
});

test('stack.net has the shape of net: new Socket().connect(), instanceof, isIP', async () => {
  const net = b.net;
  assert.is(b.net, net, 'one module object per stack');
  assert.is(net.isIP('10.0.0.1'), 4);
  assert.ok(net.isIPv6('::1'));
  const server = net.createServer();
  assert.ok(server instanceof net.Server);
  let accepted: unknown = null;
  server.on('connection', (s) => {
    accepted = s;
    s.end('hi');
  });
  server.listen(7400);
  await once(server, 'listening');
  const socket = new a.net.Socket();
  assert.ok(socket instanceof a.net.Socket);
  socket.connect(7400, '10.0.0.2');
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  await once(socket, 'close');
  assert.is(Buffer.concat(chunks).toString(), 'hi');
  assert.ok(accepted instanceof net.Socket, 'accepted sockets are the module\'s Socket');
  await new Promise<void>((r) => server.close(() => r()));
});

test('sockets and servers made by stack.connect/createServer/createSocket are the modules\' instances, of that stack only', async () => {
  // The modules are made on first use: instances made before count as theirs (Symbol.hasInstance).
  const server = b.createServer((s) => s.end());
  const udp = b.createSocket('udp4');
  const client = a.connect(9, '10.0.0.2');
  client.on('error', () => {});
  assert.ok(server instanceof b.net.Server);
  assert.not.ok(server instanceof a.net.Server);
  assert.ok(client instanceof a.net.Socket);
  assert.not.ok(client instanceof b.net.Socket);
  assert.ok(udp instanceof b.dgram.Socket);
  assert.not.ok(udp instanceof a.dgram.Socket);
  assert.not.ok({} instanceof b.net.Socket);
  client.destroy();
  udp.close();
  server.close();
});

test('http.get through stack.httpAgent() reaches the stack\'s HTTP service (keep-alive too)', async () => {
  const agent = a.httpAgent({ keepAlive: true });
  for (let i = 0; i < 2; i++) {
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get('http://10.0.0.2/bytes/10', { agent }, (res) => {
          let text = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve(`${res.statusCode}:${text.length}`));
        })
        .on('error', reject);
    });
    assert.is(body, '200:10');
  }
  agent.destroy();
});

test('the stack\'s lookup option resolves names for connect and http; unknown: its error', async () => {
  const body = await new Promise<number>((resolve, reject) => {
    http.get('http://b.test/', { agent: a.httpAgent() }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
  assert.is(body, 200);
  assert.ok(lookups.includes('b.test'));
  const s = a.net.connect(80, 'c.test');
  const events: string[] = [];
  s.on('lookup', (err: NodeJS.ErrnoException | null, address: unknown, family: unknown, host: string) => events.push(`lookup:${err?.code}:${String(address)}:${String(family)}:${host}`));
  const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
  assert.is(err.code, 'ENOTFOUND');
  assert.equal(events, ['lookup:ENOTFOUND:undefined:undefined:c.test']);
});

test('default resolver: localhost is the stack itself, other names ENOTFOUND shaped like Node\'s', async () => {
  const server = b.net.createServer((s) => s.end());
  server.listen(7401, 'localhost');
  await once(server, 'listening');
  assert.equal(server.address(), { port: 7401, family: 'IPv4', address: '10.0.0.2' });
  const self = b.net.connect(7401, 'localhost');
  const seen: unknown[] = [];
  self.on('lookup', (err: unknown, address: unknown, family: unknown) => seen.push([err, address, family]));
  self.resume();
  await once(self, 'connect');
  assert.equal(seen, [[null, '10.0.0.2', 4]]);
  await once(self, 'close');
  const bad = b.net.connect(7401, 'nowhere.test');
  const [err] = (await once(bad, 'error')) as [NodeJS.ErrnoException & { hostname: string }];
  assert.is(err.code, 'ENOTFOUND');
  assert.is(err.syscall, 'getaddrinfo');
  assert.is(err.hostname, 'nowhere.test');
  assert.is(err.errno, -3008);
  assert.is(err.message, 'getaddrinfo ENOTFOUND nowhere.test');
  const failed = b.net.createServer();
  failed.listen(7402, 'nowhere.test');
  const [lerr] = (await once(failed, 'error')) as [NodeJS.ErrnoException];
  assert.is(lerr.code, 'ENOTFOUND');
  await new Promise<void>((r) => server.close(() => r()));
});

test('a malformed request gets its 400 and then a FIN, not a reset (data read into the stream is read)', async () => {
  const s = a.net.connect(80, '10.0.0.2');
  const chunks: Buffer[] = [];
  const events: string[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.on('end', () => events.push('end'));
  s.on('error', (e: NodeJS.ErrnoException) => events.push(`error:${e.code}`));
  // A bad request line and more after it, which the server never parses.
  s.write('NOT HTTP AT ALL\r\n\r\nand more bytes that stay unread\r\n');
  await once(s, 'close');
  assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 400 Bad Request/);
  assert.equal(events, ['end']);
  assert.is(a.counters().tcp!.drops['reset-received'] ?? 0, 0);
});

test.run();
