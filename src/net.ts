// stack.net: an object shaped like Node's net module whose sockets and servers are the
// stack's, so code written against `net` takes a stack by injection (net.createServer,
// net.connect, new net.Socket().connect(...), instanceof net.Socket, net.isIP...).
// stack.httpAgent(): an http.Agent whose connections are the stack's sockets.

import http from 'node:http';
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { Server as TcpServer, type ServerOptions } from './tcp/server.ts';
import { type ConnectOptions, Socket as TcpSocket, type SocketOptions } from './tcp/socket.ts';
import type { TcpLayer } from './tcp/layer.ts';

type ConnectArgs = [options: ConnectOptions | number | string, host?: string | (() => void), listener?: () => void];

export interface NetModule {
  Socket: new (options?: SocketOptions) => TcpSocket;
  Server: new (options?: ServerOptions | ((socket: TcpSocket) => void), listener?: (socket: TcpSocket) => void) => TcpServer;
  createServer(options?: ServerOptions | ((socket: TcpSocket) => void), listener?: (socket: TcpSocket) => void): TcpServer;
  connect(...args: ConnectArgs): TcpSocket;
  createConnection(...args: ConnectArgs): TcpSocket;
  isIP: typeof isIP;
  isIPv4: typeof isIPv4;
  isIPv6: typeof isIPv6;
}

/** net.createServer(options?, listener?) on one TCP layer, without a module of its own. */
export function createServerOn(layer: TcpLayer, options?: ServerOptions | ((socket: TcpSocket) => void), listener?: (socket: TcpSocket) => void): TcpServer {
  return typeof options === 'function' ? new TcpServer(layer, {}, options) : new TcpServer(layer, options ?? {}, listener);
}

/** net.connect(...) on one TCP layer: new Socket(options) (its signal, onread, allowHalfOpen...), then connect. */
export function connectOn(layer: TcpLayer, ...args: ConnectArgs): TcpSocket {
  const [options] = args;
  return new TcpSocket(layer, options !== null && typeof options === 'object' ? options : {}).connect(...args);
}

/**
 * The net module of one stack's TCP layer. Its classes are the stack's own, made when the
 * module is first asked for; sockets and servers the stack made before are instances of
 * them too (Symbol.hasInstance), so a fleet's stacks need no module until code asks.
 */
export function createNetModule(layer: TcpLayer): NetModule {
  class Socket extends TcpSocket {
    constructor(options: SocketOptions = {}) {
      super(layer, options);
    }
    static override [Symbol.hasInstance](x: unknown): boolean {
      return x instanceof TcpSocket && x.isOn(layer);
    }
  }
  class Server extends TcpServer {
    constructor(options?: ServerOptions | ((socket: TcpSocket) => void), listener?: (socket: TcpSocket) => void) {
      if (typeof options === 'function') super(layer, {}, options);
      else super(layer, options ?? {}, listener);
    }
    static override [Symbol.hasInstance](x: unknown): boolean {
      return x instanceof TcpServer && x.isOn(layer);
    }
  }
  const connect = (...args: ConnectArgs): TcpSocket => connectOn(layer, ...args);
  return {
    Socket,
    Server,
    createServer: (options, listener) => new Server(options, listener),
    connect,
    createConnection: connect,
    isIP,
    isIPv4,
    isIPv6,
  };
}

/** An http.Agent (keep-alive, pooling and all) whose connections go through `net`. */
export function createHttpAgent(net: NetModule, options?: http.AgentOptions): http.Agent {
  class StackAgent extends http.Agent {
    // http.Agent.createSocket calls createConnection(options, oncreate) and takes a socket returned.
    override createConnection(opts: http.ClientRequestArgs): TcpSocket {
      return net.createConnection(opts as ConnectOptions);
    }
  }
  return new StackAgent(options);
}
