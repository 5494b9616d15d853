// UDP parts of the classic services: echo (RFC 862, port 7) sends each datagram back to its
// sender; discard (RFC 863, port 9) drops what it receives.
//
// A service that answers is a reflector unless it keeps to what inetd does: the services bind
// our unicast address, so that datagrams to a broadcast address never reach them (no
// Fraggle amplification), and echo does not answer a datagram from another built-in
// service's port or port 0 (inetd's check_loop), or two echo services one spoofs as the
// other's source would answer each other forever.

import type { Stack } from '../stack.ts';
import type { UdpSocket } from '../udp/socket.ts';
import { registerService, type StopService } from './index.ts';

export const UDP_ECHO_PORT = 7;
export const UDP_DISCARD_PORT = 9;

/**
 * The ports of inetd's built-in datagram services (echo, discard, daytime, chargen, time), ours
 * or another host's, and 0: a datagram from one of them is never answered (check_loop).
 */
export const UDP_LOOP_PORTS: readonly number[] = [0, 7, 9, 13, 19, 37];

/** Binds the socket; resolves with its stop function once listening, rejects if the bind fails. */
function listen(stack: Stack, socket: UdpSocket, port: number): Promise<StopService> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind(port, stack.address, () => {
      socket.off('error', onError);
      // From now on a failed send (say, no route back) is counted by the layers; the service goes on.
      socket.on('error', () => {});
      resolve(() => new Promise<void>((done) => (socket.isRunning ? socket.close(done) : done())));
    });
  });
}

export function startUdpEcho(stack: Stack, port = UDP_ECHO_PORT): Promise<StopService> {
  const socket = stack.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    if (UDP_LOOP_PORTS.includes(rinfo.port)) return stack.udp.counters.drop('udp-service-loop');
    socket.send(msg, rinfo.port, rinfo.address);
  });
  return listen(stack, socket, port);
}

export function startUdpDiscard(stack: Stack, port = UDP_DISCARD_PORT): Promise<StopService> {
  const socket = stack.createSocket('udp4');
  socket.on('message', () => {});
  return listen(stack, socket, port);
}

registerService('echo', (stack) => startUdpEcho(stack));
registerService('discard', (stack) => startUdpDiscard(stack));
