// A compatibility scenario in the form test/helpers/node-reference.ts runs: an echo, and
// the events of both ends in order.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { type CompatEnv, recordEvents } from '../helpers/node-reference.ts';

const SOCKET_EVENTS = ['connect', 'ready', 'end', 'finish', 'close', 'error'] as const;

export const scenarios = {
  async echo(env: CompatEnv): Promise<unknown> {
    const log: string[] = [];
    const server = env.serverNet.createServer((s: Socket) => {
      recordEvents(log, 'server', s, SOCKET_EVENTS);
      s.pipe(s);
    });
    server.listen(7100, env.serverAddress);
    await once(server, 'listening');
    const client = env.clientNet.connect({ port: 7100, host: env.serverAddress });
    recordEvents(log, 'client', client, SOCKET_EVENTS);
    const chunks: Buffer[] = [];
    client.on('data', (d: Buffer) => chunks.push(d));
    client.end('hello');
    await once(client, 'close');
    await new Promise<void>((r) => server.close(() => r()));
    return { log: log.filter((e) => e.startsWith('client')), echoed: Buffer.concat(chunks).toString() };
  },
};
