// UDP parts of the classic services: echo (RFC 862, port 7) sends each datagram back to its
// sender; discard (RFC 863, port 9) drops what it receives.
//
// A service that answers is a reflector unless it keeps to what inetd does: the services bind
// our unicast address, so that datagrams to a broadcast address never reach them (no
// Fraggle amplification), and echo does not answer a datagram from another built-in
// service's port or port 0 (inetd's check_loop), or two echo services one spoofs as the
// other's source would answer each other forever.

import type { UdpLayer } from '../udp/udp.ts';
import { registerService } from './index.ts';

export const UDP_ECHO_PORT = 7;
export const UDP_DISCARD_PORT = 9;

/**
 * The ports of inetd's built-in datagram services (echo, discard, daytime, chargen, time), ours
 * or another host's, and 0: a datagram from one of them is never answered (check_loop).
 */
export const UDP_LOOP_PORTS: readonly number[] = [0, 7, 9, 13, 19, 37];

/** RFC 862 over UDP: each datagram goes back to its sender, unless it comes from a loop port. */
function echoDatagram(udp: UdpLayer, buf: Buffer, off: number, len: number, src: number, srcPort: number): void {
  if (UDP_LOOP_PORTS.includes(srcPort)) return udp.counters.drop('udp-service-loop');
  // Sent at once, from the received frame: the payload is copied into the transmit buffer.
  // A failed send (say, no route back) is counted by the layers; the service goes on.
  udp.send([buf.subarray(off, off + len)], UDP_ECHO_PORT, src, srcPort, undefined);
}

/** RFC 863 over UDP: what arrives is dropped. */
function discardDatagram(): void {}

// The ports are served inside the stack (ServiceSet.udp, UdpServedPort): bound to our unicast
// address as it is, with no socket or queue per device.
registerService('echo', (_stack, _options, services) => services.udp(UDP_ECHO_PORT, echoDatagram));
registerService('discard', (_stack, _options, services) => services.udp(UDP_DISCARD_PORT, discardDatagram));
