// Node's http2 over tapstack, both cleartext (h2c, prior knowledge) and over TLS with ALPN
// 'h2'. The servers never listen themselves: the stack's connections are handed to them with
// emit('connection'); http2.connect gets a stack connection (or TLS over one) from
// createConnection. Several streams share the one connection.
//
//   npx tsx examples/http2.ts
//
// prints, for each mode, the ALPN protocol and whether each stream's body came back intact.

import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import tls from 'node:tls';
import type { Stack } from '../src/index.ts';
import { isMain, readAll, selfSignedCert, SERVER_NAME, sha256, twoStacks } from './common.ts';

export interface Http2Result {
  /** The session's ALPN protocol: 'h2c' in cleartext, 'h2' over TLS. */
  alpnProtocol: string | undefined;
  /** Per stream: status, the server's x-sha256 of what it received, the body sent back. */
  streams: { status: number; serverSha256: string; body: Buffer }[];
  /** The session closed without an error (after session.close()). */
  closedClean: boolean;
}

/** Answers each stream with the SHA-256 of its body (header) and the body itself. */
function echoStream(stream: http2.ServerHttp2Stream): void {
  void readAll(stream).then((body) => {
    stream.respond({ ':status': 200, 'x-sha256': sha256(body) });
    stream.end(body);
  });
}

/** POSTs each payload as its own stream over one HTTP/2 connection from `client` to `server`. */
export async function http2Echo(client: Stack, server: Stack, payloads: Buffer[], secure: boolean, credentials = selfSignedCert()): Promise<Http2Result> {
  const h2server = secure ? http2.createSecureServer({ ...credentials, minVersion: 'TLSv1.3' }) : http2.createServer();
  h2server.on('stream', echoStream);
  const port = secure ? 8443 : 8080;
  // allowHalfOpen: the HTTP/2 session (and TLS) end the connection themselves (see examples/tls.ts).
  const listener = server.createServer({ allowHalfOpen: true }, (socket) => h2server.emit('connection', socket)).listen(port);
  try {
    const session = http2.connect(`${secure ? 'https' : 'http'}://${server.address}:${port}`, {
      createConnection: () => {
        const socket = client.connect({ port, host: server.address, allowHalfOpen: true });
        return secure ? tls.connect({ socket, servername: SERVER_NAME, ca: credentials.cert, ALPNProtocols: ['h2'] }) : socket;
      },
    });
    const closed = new Promise<boolean>((resolve) => {
      let failed = false;
      session.once('error', () => (failed = true)).once('close', () => resolve(!failed));
    });
    await new Promise<void>((resolve, reject) => session.once('connect', () => resolve()).once('error', reject));
    const streams = await Promise.all(
      payloads.map(async (payload) => {
        const req = session.request({ ':method': 'POST', ':path': '/echo' });
        req.end(payload);
        const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => req.once('response', resolve));
        return { status: Number(headers[':status']), serverSha256: String(headers['x-sha256']), body: await readAll(req) };
      }),
    );
    const alpnProtocol = session.alpnProtocol;
    session.close();
    return { alpnProtocol, streams, closedClean: await closed };
  } finally {
    await new Promise((resolve) => listener.close(resolve));
  }
}

if (isMain(import.meta.url)) {
  const { a, b, close } = await twoStacks();
  const payloads = [randomBytes(100_000), randomBytes(1), randomBytes(250_000)];
  for (const secure of [false, true]) {
    const r = await http2Echo(a, b, payloads, secure);
    const ok = r.closedClean && r.streams.every((s, i) => s.status === 200 && s.serverSha256 === sha256(payloads[i]!) && sha256(s.body) === sha256(payloads[i]!));
    console.log(`${secure ? 'TLS' : 'cleartext'}: alpn=${r.alpnProtocol} ${r.streams.length} streams, ${r.streams.map((s) => s.body.length).join('+')} bytes ${ok ? 'ok' : 'MISMATCH'}`);
    if (!ok) process.exitCode = 1;
  }
  await close();
}
