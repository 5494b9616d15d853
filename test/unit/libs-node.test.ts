// The library examples (examples/*.ts) as tests: Node's tls (TLS 1.3) and https both ways,
// http2 in cleartext and over TLS with ALPN, a ws WebSocket echo and undici's fetch through an
// Agent whose connect returns stack sockets, over two stacks on an in-memory link on real
// time. Every byte is compared by SHA-256; each run must end with nothing left in the
// connection table once TIME-WAIT (100 ms here) ends, every connection closed by the FIN
// handshake (it leaves LAST-ACK or TIME-WAIT for CLOSED) but those a test names. (A reset
// after both FINs is no abort: on real time a spurious retransmission in LAST-ACK can draw
// TIME-WAIT's ACK after the other end is gone, whose reset then ends TIME-WAIT, as on Linux.)

import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { selfSignedCert, sha256 } from '../../examples/common.ts';
import { http2Echo } from '../../examples/http2.ts';
import { httpsPost } from '../../examples/https.ts';
import { tlsEcho } from '../../examples/tls.ts';
import { exampleServer, patternBody, stackAgent, undiciFetch } from '../../examples/undici-fetch.ts';
import { webSocketEcho } from '../../examples/websocket.ts';
import type { Stack } from '../../src/stack.ts';
import { run } from '../helpers/netns.ts';
import { realTimeStacks } from '../helpers/real-pair.ts';
import { tsArgs } from '../helpers/tcp-ns.ts';

const credentials = selfSignedCert();

/** Connections a run may end otherwise than by the FIN handshake, per stack (none unless said). */
type AbortsAllowed = { a?: number; b?: number };

/** Records each connection of `stack` that reaches CLOSED from a state other than LAST-ACK and TIME-WAIT. */
function recordAborts(stack: Stack): string[] {
  const aborts: string[] = [];
  stack.setProbe({
    tcpState: (_conn, from, to, event) => {
      if (to === 'CLOSED' && from !== 'LAST-ACK' && from !== 'TIME-WAIT') aborts.push(`${from}: ${event.name}`);
    },
  });
  return aborts;
}

/** Runs fn on two fresh stacks (a 10.0.0.1, b 10.0.0.2), then checks that every connection closed. */
async function onTwoStacks(fn: (a: Stack, b: Stack) => Promise<void>, abortsAllowed: AbortsAllowed = {}, timeoutMs = 20_000): Promise<void> {
  const { a, b } = await realTimeStacks();
  const aborts = { a: recordAborts(a), b: recordAborts(b) };
  const timer = setTimeout(() => assert.unreachable(`timed out after ${timeoutMs} ms`), timeoutMs);
  try {
    await fn(a, b);
    const deadline = Date.now() + 5_000;
    while (a.tcp.size + b.tcp.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.is(a.tcp.size + b.tcp.size, 0, 'every connection closed (TIME-WAIT over)');
    for (const name of ['a', 'b'] as const)
      assert.ok(aborts[name].length <= (abortsAllowed[name] ?? 0), `${name}: connections aborted: ${aborts[name].join(', ')}`);
  } finally {
    clearTimeout(timer);
    await a.close();
    await b.close();
  }
}

for (const [from, to] of [['a', 'b'], ['b', 'a']] as const) {
  test(`tls: a TLS 1.3 echo, client on ${from}, server on ${to}`, () =>
    onTwoStacks(async (a, b) => {
      const stacks = { a, b };
      const payload = randomBytes(512 * 1024 + 7);
      const r = await tlsEcho(stacks[from], stacks[to], payload, credentials);
      assert.is(r.protocol, 'TLSv1.3');
      assert.is(r.echoed.length, payload.length);
      assert.is(sha256(r.echoed), sha256(payload));
      assert.is(r.clientHadError, false);
    }));

  // With 'Connection: close' each side sends its close_notify and closes without reading the
  // other's: a close_notify that finds its socket closed is answered with a reset, as Linux
  // does (tcp_rcv_state_process, TCPAbortOnData); the other end takes the reset. One
  // connection, so at most one abort a side; each side's TLS socket closes without error.
  test(`https: POST echoed through createConnection, client on ${from}, server on ${to}`, () =>
    onTwoStacks(async (a, b) => {
      const stacks = { a, b };
      const payload = randomBytes(300_001);
      const r = await httpsPost(stacks[from], stacks[to], payload, credentials);
      assert.is(r.status, 200);
      assert.is(r.protocol, 'TLSv1.3');
      assert.is(r.serverSha256, sha256(payload));
      assert.is(sha256(r.body), sha256(payload));
      assert.is(r.clientHadError, false);
    }, { a: 1, b: 1 }));
}

for (const secure of [false, true])
  test(`http2 ${secure ? 'over TLS, ALPN h2' : 'cleartext (h2c)'}: three streams on one connection`, () =>
    onTwoStacks(async (a, b) => {
      const payloads = [randomBytes(200_000), randomBytes(1), Buffer.alloc(0), randomBytes(70_000)];
      const r = await http2Echo(a, b, payloads, secure, credentials);
      assert.is(r.alpnProtocol, secure ? 'h2' : 'h2c');
      assert.is(r.streams.length, payloads.length);
      r.streams.forEach((s, i) => {
        assert.is(s.status, 200);
        assert.is(s.serverSha256, sha256(payloads[i]!));
        assert.is(sha256(s.body), sha256(payloads[i]!));
      });
      assert.ok(r.closedClean, 'session closed without an error');
    }));

test('ws: a WebSocket echo through handleUpgrade and createConnection, closed with 1000', () =>
  onTwoStacks(async (a, b) => {
    const messages = [randomBytes(1), randomBytes(125), randomBytes(126), randomBytes(65_536), randomBytes(2_000_000)];
    const r = await webSocketEcho(a, b, messages);
    assert.equal(
      r.echoed.map((m) => sha256(m)),
      messages.map((m) => sha256(m)),
    );
    assert.is(r.clientCloseCode, 1000);
    assert.is(r.serverCloseCode, 1000);
  }));

test("undici: fetch through an Agent whose connect returns stack sockets (kept-alive connections)", () =>
  onTwoStacks(async (a, b) => {
    const payload = randomBytes(1_000_003);
    const r = await undiciFetch(a, b, payload, 2_000_000);
    assert.is(r.postStatus, 200);
    assert.is(r.posted, sha256(payload));
    assert.is(r.getStatus, 200);
    assert.is(sha256(r.got), sha256(patternBody(2_000_000)));
    // Agent.close() ends each connection with socket.destroy(ClientDestroyedError). Node's
    // net closes such a socket with a FIN (close(2) of a socket with nothing unread); the
    // stack's destroy(err) resets it (issue 11 item 1, src/tcp/socket.ts): undici opens two.
  }, { a: 2, b: 2 }));

// Node's global fetch (its own undici, 6 in Node 20) takes undici 7's Agent too; should a
// Node version stop, this says so (the example uses undici's fetch, which it does not depend on).
test("undici: Node's global fetch with the same Agent", () =>
  onTwoStacks(async (a, b) => {
    const httpServer = exampleServer();
    const listener = b.createServer((socket) => httpServer.emit('connection', socket)).listen(80);
    const dispatcher = stackAgent(a);
    try {
      const r = await fetch('http://10.0.0.2/bytes/300000', { dispatcher } as unknown as RequestInit); // typed for Node's own undici
      assert.is(r.status, 200);
      assert.is(sha256(Buffer.from(await r.arrayBuffer())), sha256(patternBody(300_000)));
    } finally {
      await dispatcher.close();
      await new Promise((resolve) => listener.close(resolve));
    }
  }, { a: 1, b: 1 })); // dispatcher.close(): destroy(err), as above

// The README's commands: each example runs by itself (two in-memory stacks, no root, no
// socket of the machine's), says ok for each check and exits on its own.
for (const [example, oks] of [['tls', 2], ['https', 2], ['http2', 2], ['websocket', 1], ['undici-fetch', 1]] as const)
  test(`examples/${example}.ts runs as a program`, async () => {
    const r = await run(process.execPath, tsArgs(`examples/${example}.ts`), 30_000);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.is(r.stdout.match(/ ok$/gm)?.length, oks, r.stdout);
  });

test.run();
