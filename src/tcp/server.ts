// A TCP server with the shape of Node's net.Server: listen(), close(), address() and the
// 'listening', 'connection', 'close' and 'error' events.

import { EventEmitter } from 'node:events';
import { formatIpv4, parseIpv4 } from '../ipv4/address.ts';
import type { Connection } from './connection.ts';
import { systemError } from '../util/errors.ts';
import { reportToApplication, Socket } from './socket.ts';
import type { Listener, TcpLayer } from './layer.ts';

export interface ServerOptions {
  allowHalfOpen?: boolean;
  /** Accepted sockets start paused (Node's pauseOnConnect). */
  pauseOnConnect?: boolean;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  highWaterMark?: number;
}

export interface ListenOptions {
  port?: number;
  host?: string;
  backlog?: number;
}

/** Node's default backlog for listen(). */
const DEFAULT_BACKLOG = 511;

export class Server extends EventEmitter {
  private listener: Listener | null = null;
  private host = '0.0.0.0';
  private readonly sockets = new Set<Socket>();
  private closing = false;
  /** 'close' listener of every accepted socket (the emitter calls it with `this` = the socket). */
  private readonly forgetSocket: (this: Socket) => void;
  /** Refuse (reset) new connections above this count, like Node's server.maxConnections. */
  maxConnections: number | undefined;

  constructor(
    private readonly layer: TcpLayer,
    private readonly options: ServerOptions = {},
    connectionListener?: (socket: Socket) => void,
  ) {
    super();
    if (connectionListener) this.on('connection', connectionListener);
    const server = this;
    this.forgetSocket = function (this: Socket): void {
      server.sockets.delete(this);
      server.maybeEmitClose();
    };
  }

  get listening(): boolean {
    return this.listener !== null;
  }

  listen(...args: unknown[]): this {
    let port = 0;
    let host: string | undefined;
    let backlog = DEFAULT_BACKLOG;
    let cb: (() => void) | undefined;
    if (typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
    const first = args[0];
    if (first !== null && typeof first === 'object') {
      const o = first as ListenOptions;
      port = Number(o.port ?? 0);
      host = o.host;
      if (o.backlog !== undefined) backlog = o.backlog;
    } else {
      if (first !== undefined) port = Number(first);
      if (typeof args[1] === 'string') {
        host = args[1];
        if (typeof args[2] === 'number') backlog = args[2];
      } else if (typeof args[1] === 'number') backlog = args[1];
    }
    if (cb) this.once('listening', cb);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      const err = new RangeError(`options.port should be >= 0 and < 65536. Received ${String(port)}.`) as RangeError & { code: string };
      err.code = 'ERR_SOCKET_BAD_PORT';
      throw err;
    }
    if (host !== undefined && host !== 'localhost' && host !== '0.0.0.0' && host !== '::') {
      const ip = parseIpv4(host);
      if (ip === null || ip !== this.layer.ip) {
        process.nextTick(() => this.emit('error', systemError('EADDRNOTAVAIL', 'listen', host, port)));
        return this;
      }
      this.host = host;
    } else if (host === 'localhost') {
      this.host = formatIpv4(this.layer.ip);
    }
    if (port === 0) port = this.layer.ephemeralPort(0, 0) ?? 0;
    const result = this.layer.listen(port, backlog, (conn) => this.onAccept(conn));
    if (result === 'EADDRINUSE') {
      process.nextTick(() => this.emit('error', systemError('EADDRINUSE', 'listen', this.host === '0.0.0.0' ? '::' : this.host, port)));
      return this;
    }
    this.listener = result;
    this.closing = false;
    process.nextTick(() => this.emit('listening'));
    return this;
  }

  private onAccept(conn: Connection): void {
    if (this.maxConnections !== undefined && this.sockets.size >= this.maxConnections) {
      conn.abort();
      return;
    }
    const o = this.options;
    const socket = new Socket(this.layer, {
      allowHalfOpen: o.allowHalfOpen,
      noDelay: o.noDelay,
      keepAlive: o.keepAlive,
      keepAliveInitialDelay: o.keepAliveInitialDelay,
      highWaterMark: o.highWaterMark,
    });
    socket.attach(conn);
    if (o.pauseOnConnect) socket.pause();
    this.sockets.add(socket);
    // 'close' comes once: on() with the server's one listener, no closure or once-wrapper per socket.
    socket.on('close', this.forgetSocket);
    // Called from the TCP layer as the handshake's last ACK is processed: what the
    // application's listener throws is its own, as in Node (see reportToApplication).
    try {
      this.emit('connection', socket);
    } catch (err) {
      reportToApplication(err);
    }
  }


  /** Stops accepting; 'close' follows once every accepted socket has closed (as Node). */
  close(cb?: (err?: Error) => void): this {
    if (!this.listener) {
      if (cb) {
        const err = new Error('Server is not running.') as Error & { code: string };
        err.code = 'ERR_SERVER_NOT_RUNNING';
        process.nextTick(() => cb(err));
      }
      return this;
    }
    if (cb) this.once('close', () => cb());
    this.layer.unlisten(this.listener);
    this.listener = null;
    this.closing = true;
    this.maybeEmitClose();
    return this;
  }

  private maybeEmitClose(): void {
    if (!this.closing || this.sockets.size > 0) return;
    this.closing = false;
    process.nextTick(() => this.emit('close'));
  }

  address(): { port: number; family: string; address: string } | null {
    if (!this.listener) return null;
    return { port: this.listener.port, family: 'IPv4', address: this.host };
  }

  getConnections(cb: (err: Error | null, count: number) => void): this {
    const n = this.sockets.size;
    process.nextTick(() => cb(null, n));
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }
}
