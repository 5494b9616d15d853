// A module object shaped like Node's dgram, bound to one stack: code written against
// `import dgram from 'node:dgram'` takes `stack.dgram` by injection.

import type { RemoteInfo, SocketOptions, SocketType } from './udp/socket.ts';
import { UdpSocket } from './udp/socket.ts';
import type { UdpLayer } from './udp/udp.ts';

export type MessageListener = (msg: Buffer, rinfo: RemoteInfo) => void;

export interface DgramModule {
  /** dgram.createSocket(type | options, listener?). */
  createSocket(type: SocketType | SocketOptions, listener?: MessageListener): UdpSocket;
  /** dgram.Socket: `new Socket(type, listener)` makes a socket of this stack. */
  readonly Socket: new (type: SocketType | SocketOptions, listener?: MessageListener) => UdpSocket;
}

export function dgramModule(udp: UdpLayer): DgramModule {
  class Socket extends UdpSocket {
    constructor(type: SocketType | SocketOptions, listener?: MessageListener) {
      super(udp, type, listener);
    }
    // Sockets stack.createSocket made before this module was asked for are its too.
    static override [Symbol.hasInstance](x: unknown): boolean {
      return x instanceof UdpSocket && x.isOn(udp);
    }
  }
  return {
    createSocket: (type, listener) => new Socket(type, listener),
    Socket,
  };
}
