// fetch from the undici package over tapstack: an undici Agent whose `connect` returns a
// stack connection, passed to undici's fetch as its dispatcher. (Node's global fetch bundles
// its own undici, whose dispatcher interface need not match this version's: use undici's.)
// The server is an http.Server fed with the stack's connections.
//
//   npx tsx examples/undici-fetch.ts
//
// prints the status of a POST and a GET and whether the bodies are intact.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Socket } from 'node:net';
import { Agent, fetch } from 'undici';
import type { Stack } from '../src/index.ts';
import { isMain, readAll, sha256, twoStacks } from './common.ts';

/** An undici Agent whose every connection is a TCP connection of `stack`. */
export function stackAgent(stack: Stack): Agent {
  return new Agent({
    connect: (options, callback) => {
      const socket = stack.connect(Number(options.port || 80), options.hostname);
      socket.once('connect', () => callback(null, socket as unknown as Socket));
      socket.once('error', (err) => callback(err, null));
    },
  });
}

/** Answers POST /sha256 with the body's SHA-256, GET /bytes/N with N random-looking bytes. */
export function exampleServer(): http.Server {
  return http.createServer(async (req, res) => {
    const body = await readAll(req);
    if (req.method === 'POST') res.end(sha256(body));
    else res.end(patternBody(Number(req.url?.split('/')[2] ?? 0)));
  });
}

/** Byte i is i mod 251. */
export function patternBody(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i % 251;
  return b;
}

export interface UndiciFetchResult {
  postStatus: number;
  /** The SHA-256 the server computed of the POSTed body. */
  posted: string;
  getStatus: number;
  got: Buffer;
}

/** POSTs `payload` and GETs `getBytes` bytes with undici's fetch from `client` to a server on `server`. */
export async function undiciFetch(client: Stack, server: Stack, payload: Buffer, getBytes: number): Promise<UndiciFetchResult> {
  const httpServer = exampleServer();
  const listener = server.createServer((socket) => httpServer.emit('connection', socket)).listen(80);
  const dispatcher = stackAgent(client);
  try {
    const post = await fetch(`http://${server.address}/sha256`, { method: 'POST', body: payload, dispatcher });
    const posted = await post.text();
    const get = await fetch(`http://${server.address}/bytes/${getBytes}`, { dispatcher });
    const got = Buffer.from(await get.arrayBuffer());
    return { postStatus: post.status, posted, getStatus: get.status, got };
  } finally {
    await dispatcher.close(); // ends the kept-alive connection
    await new Promise((resolve) => listener.close(resolve));
  }
}

if (isMain(import.meta.url)) {
  const { a, b, close } = await twoStacks();
  const payload = randomBytes(500_000);
  const r = await undiciFetch(a, b, payload, 1_000_000);
  const ok = r.postStatus === 200 && r.posted === sha256(payload) && r.getStatus === 200 && sha256(r.got) === sha256(patternBody(1_000_000));
  console.log(`POST http://${b.address}/sha256 ${r.postStatus} sha256=${r.posted}, GET ${r.getStatus} ${r.got.length} bytes ${ok ? 'ok' : 'MISMATCH'}`);
  if (!ok) process.exitCode = 1;
  await close();
}
