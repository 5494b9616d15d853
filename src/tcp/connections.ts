// The connection table as `ss -tani` shows it: every listener (LISTEN), every connection in
// any state, and every TIME-WAIT entry, each with its queues and its tcp_info (info.ts).
// Stack.connections() returns it; the HTTP service serves it at /connections.

import { formatIpv4 } from '../ipv4/address.ts';
import { listenerInfo, type TcpInfo, tcpInfo, timeWaitInfo } from './info.ts';
import type { TcpLayer } from './layer.ts';
import type { TcpState } from './state.ts';

/** One line of `ss -tni`. */
export interface ConnectionEntry {
  /** `LOCALIP:PORT>REMOTEIP:PORT` (the trace's ConnId); a listener's remote end is 0.0.0.0:0. */
  conn: string;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: TcpState;
  /** ss's Recv-Q: bytes received and not read by the application (a listener: connections waiting for accept). */
  receiveQueue: number;
  /** ss's Send-Q: bytes written and not acknowledged (a listener: its backlog). */
  sendQueue: number;
  info: TcpInfo;
}

function entry(localIp: number, localPort: number, remoteIp: number, remotePort: number, info: TcpInfo, receiveQueue: number, sendQueue: number): ConnectionEntry {
  const localAddress = formatIpv4(localIp);
  const remoteAddress = formatIpv4(remoteIp);
  return {
    conn: `${localAddress}:${localPort}>${remoteAddress}:${remotePort}`,
    localAddress,
    localPort,
    remoteAddress,
    remotePort,
    state: info.state,
    receiveQueue,
    sendQueue,
    info,
  };
}

/** Listeners first by port, then connections and TIME-WAIT entries by local port, remote address and port. */
export function listConnections(tcp: TcpLayer): ConnectionEntry[] {
  const listeners: ConnectionEntry[] = [];
  for (const l of [...tcp.listeners.values()].sort((a, b) => a.port - b.port)) {
    // The stack hands an established connection to its server at once: none waits for accept.
    listeners.push(entry(tcp.ip, l.port, 0, 0, listenerInfo(l.synBacklog, 0), 0, l.synBacklog));
  }
  const others: ConnectionEntry[] = [];
  for (const c of tcp.all()) {
    const unread = c.user !== null ? c.user.unreadBytes() : 0;
    others.push(entry(c.localIp, c.localPort, c.remoteIp, c.remotePort, tcpInfo(c), unread, c.sendBuffer.length));
  }
  for (const tw of tcp.allTimeWait()) others.push(entry(tw.localIp, tw.localPort, tw.remoteIp, tw.remotePort, timeWaitInfo(tw), 0, 0));
  others.sort((a, b) => a.localPort - b.localPort || (a.remoteAddress < b.remoteAddress ? -1 : a.remoteAddress > b.remoteAddress ? 1 : 0) || a.remotePort - b.remotePort);
  return [...listeners, ...others];
}
