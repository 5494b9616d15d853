// Node's https over tapstack: an https.Server on one stack answers a POST with the SHA-256 of
// its body and the body itself; https.request on the other stack reaches it through
// createConnection, which wraps a stack connection in TLS.
//
//   npx tsx examples/https.ts
//
// prints, for each direction, the status, the protocol and whether the body came back intact.

import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Stack } from '../src/index.ts';
import { isMain, readAll, selfSignedCert, SERVER_NAME, sha256, twoStacks } from './common.ts';

export interface HttpsPostResult {
  status: number;
  /** The server's x-sha256 header: the SHA-256 of the body it received. */
  serverSha256: string | undefined;
  body: Buffer;
  protocol: string | null;
  /** 'close' of the client's TLS socket: false when it closed without an error. */
  clientHadError: boolean;
}

/** POSTs `payload` over HTTPS from `client` to a server on `server`. */
export async function httpsPost(client: Stack, server: Stack, payload: Buffer, credentials = selfSignedCert()): Promise<HttpsPostResult> {
  const httpsServer = https.createServer({ ...credentials, minVersion: 'TLSv1.3' }, async (req, res) => {
    const body = await readAll(req);
    res.writeHead(200, { 'x-sha256': sha256(body), 'content-length': body.length });
    res.end(body);
  });
  // allowHalfOpen: the TLS socket ends the connection itself (see examples/tls.ts).
  const listener = server.createServer({ allowHalfOpen: true }, (socket) => httpsServer.emit('connection', socket)).listen(443);
  try {
    let tlsSocket: tls.TLSSocket | undefined;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = https.request(
        {
          method: 'POST',
          host: server.address,
          path: '/echo',
          headers: { 'content-length': payload.length },
          createConnection: () => {
            const socket = client.connect({ port: 443, host: server.address, allowHalfOpen: true });
            tlsSocket = tls.connect({ socket, servername: SERVER_NAME, ca: credentials.cert });
            return tlsSocket;
          },
        },
        resolve,
      );
      req.on('error', reject);
      req.end(payload);
    });
    const closed = new Promise<boolean>((resolve) => tlsSocket!.once('close', resolve));
    const body = await readAll(response);
    return {
      status: response.statusCode ?? 0,
      serverSha256: response.headers['x-sha256'] as string | undefined,
      body,
      protocol: tlsSocket!.getProtocol(),
      clientHadError: await closed,
    };
  } finally {
    await new Promise((resolve) => listener.close(resolve));
  }
}

if (isMain(import.meta.url)) {
  const { a, b, close } = await twoStacks();
  const payload = randomBytes(300_000);
  for (const [client, server] of [[a, b], [b, a]] as const) {
    const r = await httpsPost(client, server, payload);
    const ok = r.status === 200 && r.serverSha256 === sha256(payload) && sha256(r.body) === sha256(payload) && !r.clientHadError;
    console.log(`${client.address} -> https://${server.address}/echo: ${r.status} ${r.protocol} ${r.body.length} bytes sha256=${sha256(r.body)} ${ok ? 'ok' : 'MISMATCH'}`);
    if (!ok) process.exitCode = 1;
  }
  await close();
}
