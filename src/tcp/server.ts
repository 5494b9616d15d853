// A TCP server with the shape of Node's net.Server: listen(), close(), address() and the
// 'listening', 'connection', 'close' and 'error' events.

import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { formatIpv4, parseIpv4 } from '../ipv4/address.ts';
import { orphan } from './closing.ts';
import type { Connection } from './connection.ts';
import { systemError, validatePort, withCode } from '../util/errors.ts';
import { LoopRef } from '../util/loop-hold.ts';
import { reportToApplication, Socket, type SocketOptions, type SocketOwner } from './socket.ts';
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
  port?: number | string;
  host?: string;
  backlog?: number;
}

/** Node's default backlog for listen(). */
const DEFAULT_BACKLOG = 511;

function emitClose(server: Server): void {
  server.emit('close');
}

export class Server extends EventEmitter implements SocketOwner {
  private listener: Listener | null = null;
  private host = '0.0.0.0';
  private readonly sockets = new Set<Socket>();
  /** A listen() waiting for its host name's lookup. */
  private resolving = false;
  /** Whether the server keeps the event loop alive (ref/unref) while it listens. */
  private readonly loopRef: LoopRef;
  /**
   * Past this many open connections a new one is closed (FIN, not reset) and 'drop' emitted,
   * as Node 20's net.js onconnection; 0 or unset: no limit (its `self.maxConnections &&`).
   */
  maxConnections: number | undefined;

  /** @internal Whether it belongs to this layer (the per-stack classes' instanceof). */
  isOn(layer: object): boolean {
    return this.layer === layer;
  }

  constructor(
    protected readonly layer: TcpLayer,
    private readonly options: ServerOptions = {},
    connectionListener?: (socket: Socket) => void,
  ) {
    super();
    if (connectionListener) this.on('connection', connectionListener);
    this.loopRef = new LoopRef(layer.loopHold);
  }

  get listening(): boolean {
    return this.listener !== null;
  }

  listen(...args: unknown[]): this {
    let port: unknown = 0;
    let host: string | undefined;
    let backlog = DEFAULT_BACKLOG;
    let cb: (() => void) | undefined;
    if (typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
    const first = args[0];
    if (first !== null && typeof first === 'object') {
      const o = first as ListenOptions;
      port = o.port ?? 0;
      host = o.host;
      if (o.backlog !== undefined) backlog = o.backlog;
    } else {
      if (first !== undefined) port = first;
      if (typeof args[1] === 'string') {
        host = args[1];
        if (typeof args[2] === 'number') backlog = args[2];
      } else if (typeof args[1] === 'number') backlog = args[1];
    }
    // net.js Server.prototype.listen: a second listen() before close() throws.
    if (this.listener || this.resolving)
      throw withCode(new Error('Listen method has been called more than once without closing.'), 'ERR_SERVER_ALREADY_LISTEN');
    const portNumber = validatePort(port, true, 'options.port');
    if (cb) this.once('listening', cb);
    if (host === undefined || host === '0.0.0.0' || host === '::') {
      this.listenOn('0.0.0.0', portNumber, backlog);
      return this;
    }
    if (isIP(host)) {
      this.listenOn(host, portNumber, backlog);
      return this;
    }
    // A host name: looked up first (net.js lookupAndListen), with the stack's resolver.
    this.resolving = true;
    this.layer.lookup(host, {}, (err, address) => {
      this.resolving = false;
      if (err || typeof address !== 'string') this.emit('error', err ?? systemError('ENOTFOUND', 'getaddrinfo', host));
      else this.listenOn(address, portNumber, backlog);
    });
    return this;
  }

  private listenOn(host: string, port: number, backlog: number): void {
    // Linux's bind: only an address of this host, or any (inet_bind, EADDRNOTAVAIL).
    if (host !== '0.0.0.0' && parseIpv4(host) !== this.layer.ip) {
      process.nextTick(() => this.emit('error', systemError('EADDRNOTAVAIL', 'listen', host, port)));
      return;
    }
    if (port === 0) port = this.layer.ephemeralPort(0, 0) ?? 0;
    const result = this.layer.listen(port, backlog, (conn) => this.onAccept(conn));
    if (result === 'EADDRINUSE') {
      process.nextTick(() => this.emit('error', systemError('EADDRINUSE', 'listen', host === '0.0.0.0' ? '::' : host, port)));
      return;
    }
    this.host = host;
    this.listener = result;
    this.loopRef.setActive(true);
    process.nextTick(() => this.emit('listening'));
  }

  private onAccept(conn: Connection): void {
    if (this.maxConnections && this.sockets.size >= this.maxConnections) {
      // net.js onconnection: the handle is closed (a FIN) and 'drop' tells of it.
      const data = {
        localAddress: formatIpv4(conn.localIp),
        localPort: conn.localPort,
        localFamily: 'IPv4',
        remoteAddress: formatIpv4(conn.remoteIp),
        remotePort: conn.remotePort,
        remoteFamily: 'IPv4',
      };
      orphan(conn);
      try {
        this.emit('drop', data);
      } catch (err) {
        reportToApplication(err);
      }
      return;
    }
    const o = this.options;
    const socket = this.makeSocket({
      allowHalfOpen: o.allowHalfOpen,
      noDelay: o.noDelay,
      keepAlive: o.keepAlive,
      keepAliveInitialDelay: o.keepAliveInitialDelay,
      highWaterMark: o.highWaterMark,
    });
    socket.attach(conn);
    socket.server = this;
    socket.owner = this;
    if (o.pauseOnConnect) socket.pause();
    this.sockets.add(socket);
    // Called from the TCP layer as the handshake's last ACK is processed: what the
    // application's listener throws is its own, as in Node (see reportToApplication).
    try {
      this.emit('connection', socket);
    } catch (err) {
      reportToApplication(err);
    }
  }

  /** The accepted sockets' class (stack.net's Server makes its own Socket class's). */
  protected makeSocket(options: SocketOptions): Socket {
    return new Socket(this.layer, options);
  }

  /** (Internal) an accepted socket was destroyed: off the count, as Node's _destroy does. */
  socketDestroyed(socket: Socket): void {
    if (this.sockets.delete(socket)) this.emitCloseIfDrained();
  }

  /**
   * Stops accepting at once; 'close' follows once every accepted socket is destroyed. Not
   * running: 'close' still comes, and cb gets ERR_SERVER_NOT_RUNNING (net.js Server.close).
   */
  close(cb?: (err?: Error) => void): this {
    if (typeof cb === 'function') {
      if (!this.listener) this.once('close', () => cb(withCode(new Error('Server is not running.'), 'ERR_SERVER_NOT_RUNNING')));
      else this.once('close', () => cb());
    }
    if (this.listener) {
      this.layer.unlisten(this.listener);
      this.listener = null;
      this.loopRef.setActive(false);
    }
    this.emitCloseIfDrained();
    return this;
  }

  /** net.js _emitCloseIfDrained. */
  private emitCloseIfDrained(): void {
    if (this.listener || this.sockets.size > 0) return;
    process.nextTick(emitClose, this);
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

  /** Keeps the event loop alive while listening (the default). */
  ref(): this {
    this.loopRef.set(true);
    return this;
  }

  unref(): this {
    this.loopRef.set(false);
    return this;
  }
}
