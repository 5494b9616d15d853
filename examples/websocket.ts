// A WebSocket echo with the ws package over tapstack. The server is an http.Server fed with
// the stack's connections (emit('connection')) whose 'upgrade' goes to a WebSocketServer
// ({ noServer: true }); the client's WebSocket gets its stack connection from createConnection.
//
//   npx tsx examples/websocket.ts
//
// prints how many messages came back and whether each is the one sent.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { createConnection } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { Stack } from '../src/index.ts';
import { isMain, sha256, twoStacks } from './common.ts';

export interface WebSocketEchoResult {
  /** The messages the server echoed, in order. */
  echoed: Buffer[];
  /** The close code each side saw (1000: normal closure). */
  clientCloseCode: number;
  serverCloseCode: number;
}

/** Sends each message from `client` to a WebSocket echo server on `server`, then closes with 1000. */
export async function webSocketEcho(client: Stack, server: Stack, messages: Buffer[]): Promise<WebSocketEchoResult> {
  const wss = new WebSocketServer({ noServer: true });
  const serverClosed = new Promise<number>((resolve) => {
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      ws.on('close', resolve);
    });
  });
  const httpServer = http.createServer((_req, res) => res.writeHead(426).end());
  httpServer.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)));
  const listener = server.createServer((socket) => httpServer.emit('connection', socket)).listen(8080);
  try {
    const ws = new WebSocket(`ws://${server.address}:8080/echo`, {
      // ws types this as net.createConnection; a stack socket has the members ws uses.
      createConnection: (() => client.connect(8080, server.address)) as unknown as typeof createConnection,
    });
    const echoed: Buffer[] = [];
    const clientClosed = new Promise<number>((resolve, reject) => {
      ws.on('message', (data: Buffer) => {
        echoed.push(data);
        if (echoed.length === messages.length) ws.close(1000, 'done');
      });
      ws.once('error', reject);
      ws.once('close', resolve);
    });
    await new Promise<void>((resolve, reject) => ws.once('open', resolve).once('error', reject));
    for (const m of messages) ws.send(m);
    return { echoed, clientCloseCode: await clientClosed, serverCloseCode: await serverClosed };
  } finally {
    wss.close();
    await new Promise((resolve) => listener.close(resolve));
  }
}

if (isMain(import.meta.url)) {
  const { a, b, close } = await twoStacks();
  const messages = [randomBytes(10), randomBytes(70_000), randomBytes(1_000_000)];
  const r = await webSocketEcho(a, b, messages);
  const ok = r.echoed.length === messages.length && r.echoed.every((m, i) => sha256(m) === sha256(messages[i]!)) && r.clientCloseCode === 1000;
  console.log(`ws://${b.address}:8080/echo: ${r.echoed.length} messages echoed (${r.echoed.map((m) => m.length).join('+')} bytes), close ${r.clientCloseCode}/${r.serverCloseCode} ${ok ? 'ok' : 'MISMATCH'}`);
  if (!ok) process.exitCode = 1;
  await close();
}
