// Issue 10 item 7: the HTTP service's Node timeouts (headersTimeout, requestTimeout,
// keepAliveTimeout) are active although its http.Server never listens on a port. Node's
// http timers run on real time, so the stacks run on a RealClock over an in-memory link, with
// timeouts of a few hundred milliseconds: the test is bounded to about two seconds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseArgs } from '../../src/cli.ts';
import { startServices } from '../../src/services/index.ts';
import '../../src/services/all.ts';
import type { Stack } from '../../src/stack.ts';
import type { Socket } from '../../src/tcp/socket.ts';
import { realTimeStacks } from '../helpers/real-pair.ts';


/** Connects to port 80, sends `text`, and resolves with what came back and when the server closed. */
function slowClient(a: Stack, text: string): Promise<{ reply: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let reply = '';
    const socket: Socket = a.connect(80, '10.0.0.2', () => socket.write(text));
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    socket.on('error', reject);
    socket.on('end', () => {
      socket.end();
      resolve({ reply, closedAfterMs: performance.now() - started });
    });
    setTimeout(() => reject(new Error('never cut off')), 5000).unref();
  });
}

test('item 7: a client that sends half a request line is cut off after the configured headers timeout', async () => {
  const { a, b } = await realTimeStacks();
  const stop = await startServices(b, ['http'], { http: { headersTimeoutMs: 300, requestTimeoutMs: 600, checkIntervalMs: 50 } });
  try {
    const r = await slowClient(a, 'GET /by');
    assert.ok(r.closedAfterMs >= 290 && r.closedAfterMs < 1500, `cut off after ${r.closedAfterMs} ms`);
    assert.match(r.reply, /^HTTP\/1\.1 408 /);
    assert.is(b.counters().http!.drops['http-request-timeout'], 1);
    // A client that completes its request in time is served as before.
    const ok = await slowClient(a, 'GET /bytes/3 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.match(ok.reply, /^HTTP\/1\.1 200 /);
  } finally {
    await stop();
    await a.close();
    await b.close();
  }
});

test('item 7: an idle keep-alive connection is closed after the keep-alive timeout', async () => {
  const { a, b } = await realTimeStacks();
  const stop = await startServices(b, ['http'], { http: { keepAliveTimeoutMs: 200 } });
  try {
    const r = await slowClient(a, 'GET /bytes/3 HTTP/1.1\r\nhost: x\r\n\r\n');
    assert.match(r.reply, /^HTTP\/1\.1 200 /);
    assert.ok(r.closedAfterMs >= 190 && r.closedAfterMs < 1500, `closed after ${r.closedAfterMs} ms`);
  } finally {
    await stop();
    await a.close();
    await b.close();
  }
});

test('item 7: the timeouts are CLI options (ms), Node\'s defaults when not given', () => {
  const o = parseArgs(['--http-headers-timeout', '2000', '--http-request-timeout=0', '--http-keep-alive-timeout', '1000']);
  assert.ok(o !== 'help');
  assert.is(o.httpHeadersTimeout, 2000);
  assert.is(o.httpRequestTimeout, 0);
  assert.is(o.httpKeepAliveTimeout, 1000);
  const d = parseArgs([]);
  assert.ok(d !== 'help');
  assert.is(d.httpHeadersTimeout, undefined);
  assert.throws(() => parseArgs(['--http-headers-timeout', '0']), /--http-headers-timeout/);
  assert.throws(() => parseArgs(['--http-keep-alive-timeout=x']), /--http-keep-alive-timeout/);
});

test.run();
