// UDP parts of the classic services: echo (RFC 862, port 7) sends each datagram back to its
// sender; discard (RFC 863, port 9) drops what it receives.

import type { Stack } from '../stack.ts';
import type { UdpSocket } from '../udp/socket.ts';
import { registerService, type StopService } from './index.ts';

export const UDP_ECHO_PORT = 7;
export const UDP_DISCARD_PORT = 9;

/** Binds the socket; resolves with its stop function once listening, rejects if the bind fails. */
function listen(socket: UdpSocket, port: number): Promise<StopService> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind(port, () => {
      socket.off('error', onError);
      // From now on a failed send (say, no route back) is counted by the layers; the service goes on.
      socket.on('error', () => {});
      resolve(() => new Promise<void>((done) => (socket.isRunning ? socket.close(done) : done())));
    });
  });
}

export function startUdpEcho(stack: Stack, port = UDP_ECHO_PORT): Promise<StopService> {
  const socket = stack.createSocket('udp4');
  socket.on('message', (msg, rinfo) => socket.send(msg, rinfo.port, rinfo.address));
  return listen(socket, port);
}

export function startUdpDiscard(stack: Stack, port = UDP_DISCARD_PORT): Promise<StopService> {
  const socket = stack.createSocket('udp4');
  socket.on('message', () => {});
  return listen(socket, port);
}

registerService('echo', (stack) => startUdpEcho(stack));
registerService('discard', (stack) => startUdpDiscard(stack));
