// Node's tls over tapstack: a TLS 1.3 echo server on one stack and a client on the other.
// tls.createServer never listens itself: each connection the stack accepts is handed to it
// with emit('connection'); the client wraps a stack connection with tls.connect({ socket }).
//
//   npx tsx examples/tls.ts
//
// prints, for each direction, the bytes echoed, their SHA-256 and the protocol negotiated.

import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import type { Stack } from '../src/index.ts';
import { isMain, readAll, selfSignedCert, SERVER_NAME, sha256, twoStacks } from './common.ts';

export interface TlsEchoResult {
  echoed: Buffer;
  protocol: string | null;
  /** 'close' of the client's TLS socket: false when it closed without an error. */
  clientHadError: boolean;
}

/** Sends `payload` to a TLS echo server on `server` from `client` and reads it back. */
export async function tlsEcho(client: Stack, server: Stack, payload: Buffer, credentials = selfSignedCert()): Promise<TlsEchoResult> {
  const tlsServer = tls.createServer({ ...credentials, minVersion: 'TLSv1.3' }, (socket) => socket.pipe(socket));
  // allowHalfOpen: the TLS socket decides when to end, after its close_notify and its last
  // records. Over a net.Socket Node's TLS reads the kernel handle directly and the socket never
  // ends itself; a stack socket is a stream, so it must not end on the peer's FIN by itself.
  const listener = server.createServer({ allowHalfOpen: true }, (socket) => tlsServer.emit('connection', socket)).listen(4433);
  try {
    const socket = tls.connect({
      socket: client.connect({ port: 4433, host: server.address, allowHalfOpen: true }),
      servername: SERVER_NAME,
      ca: credentials.cert, // trust our own certificate only
      minVersion: 'TLSv1.3',
    });
    const closed = new Promise<boolean>((resolve) => socket.once('close', resolve));
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const protocol = socket.getProtocol();
    socket.end(payload);
    const echoed = await readAll(socket);
    return { echoed, protocol, clientHadError: await closed };
  } finally {
    await new Promise((resolve) => listener.close(resolve));
  }
}

if (isMain(import.meta.url)) {
  const { a, b, close } = await twoStacks();
  const payload = randomBytes(256 * 1024);
  for (const [client, server] of [[a, b], [b, a]] as const) {
    const r = await tlsEcho(client, server, payload);
    const ok = sha256(r.echoed) === sha256(payload) && !r.clientHadError;
    console.log(`${client.address} -> ${server.address}: ${r.protocol} echoed ${r.echoed.length} bytes sha256=${sha256(r.echoed)} ${ok ? 'ok' : 'MISMATCH'}`);
    if (!ok) process.exitCode = 1;
  }
  await close();
}
