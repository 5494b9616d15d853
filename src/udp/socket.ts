// A UDP socket with the shape of Node's dgram.Socket: bind, send, connect, 'message' events,
// errors with Node's codes. Socket calls take effect at once; events and callbacks come on
// the next tick, as Node's do, so a listener added right after a call still hears of it.

import { EventEmitter } from 'node:events';
import { formatIpv4, parseIpv4 } from '../ipv4/address.ts';
import type { Ipv4Layer, SendError } from '../ipv4/ipv4.ts';
import { invalidArgType, nodeError, systemError, validatePort } from '../util/errors.ts';

export type SocketType = 'udp4';

export interface SocketOptions {
  type: SocketType;
  /** SO_REUSEADDR: several sockets may bind the same port if all of them ask for it. */
  reuseAddr?: boolean;
}

export interface RemoteInfo {
  address: string;
  family: 'IPv4';
  port: number;
  size: number;
}

export interface AddressInfo {
  address: string;
  family: 'IPv4';
  port: number;
}

export interface BindOptions {
  port?: number;
  address?: string;
  exclusive?: boolean;
}

/**
 * What a socket needs from its layer: the port table, the transmit path and the IPv4 layer's
 * addressing. UdpLayer implements it; the socket sees no more, and this file does not import
 * udp.ts (which imports this one).
 */
export interface UdpSocketContext {
  readonly ipv4: Pick<Ipv4Layer, 'ip' | 'isBroadcast' | 'isLocal' | 'nextHop'>;
  /** Takes `port` (0: an ephemeral one) for the socket. Returns the port, or the errno. */
  bindPort(socket: UdpSocket, port: number, reuseAddr: boolean): number | 'EADDRINUSE';
  releasePort(socket: UdpSocket, port: number): void;
  /** The socket is closed: the layer lets go of it. */
  forget(socket: UdpSocket): void;
  /** Sends the concatenation of `chunks` from srcPort to dst:dstPort. Returns null or the errno. */
  send(chunks: readonly Uint8Array[], srcPort: number, dst: number, dstPort: number, ttl: number | undefined): SendError | 'EACCES' | null;
}

type SendCallback = (error: Error | null, bytes: number) => void;
type Message = string | ArrayBufferView | readonly (string | ArrayBufferView)[];

export class UdpSocket extends EventEmitter {
  readonly type: SocketType = 'udp4';
  readonly reuseAddr: boolean;
  /** Local address bound (0: any). */
  boundAddress = 0;
  localPort = 0;
  remote = 0;
  remotePort = 0;
  private bound = false;
  private connected = false;
  private running = true;
  private broadcast = false;
  private ttl: number | undefined;

  constructor(
    private readonly layer: UdpSocketContext,
    type: SocketType | SocketOptions,
  ) {
    super();
    const t = typeof type === 'string' ? type : type?.type;
    if (t !== 'udp4') throw nodeError('ERR_SOCKET_BAD_TYPE');
    this.reuseAddr = typeof type === 'object' && type.reuseAddr === true;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Is a datagram from src:srcPort to dst for this socket (port already matched)? */
  accepts(dst: number, src: number, srcPort: number): boolean {
    if (this.boundAddress !== 0 && this.boundAddress !== dst) return false;
    return !this.connected || (this.remote === src && this.remotePort === srcPort);
  }

  /**
   * bind(port?, address?, callback?) or bind({ port, address, exclusive }, callback?).
   * Port 0 or none: an ephemeral port. 'listening' follows; a taken port gives an 'error'
   * event with EADDRINUSE, as in Node.
   */
  bind(port?: number | BindOptions | (() => void), address?: string | (() => void), callback?: () => void): this {
    this.healthCheck();
    if (this.bound) throw nodeError('ERR_SOCKET_ALREADY_BOUND');
    const args = [port, address, callback];
    const last = args.filter((a) => a !== undefined).pop();
    const cb = typeof last === 'function' ? (last as () => void) : undefined;
    let wantPort: unknown;
    let wantAddress: unknown;
    if (port !== null && typeof port === 'object') {
      wantPort = port.port ?? 0;
      wantAddress = port.address;
    } else {
      wantPort = typeof port === 'function' || port === undefined ? 0 : port;
      wantAddress = typeof address === 'function' ? undefined : address;
    }
    const portNumber = validatePort(wantPort, true);
    if (cb) {
      const onListening = (): void => {
        this.off('error', onError);
        cb.call(this);
      };
      const onError = (): void => {
        this.off('listening', onListening);
      };
      this.once('listening', onListening);
      this.once('error', onError);
    }
    const addrText = wantAddress === undefined || wantAddress === '' ? '0.0.0.0' : wantAddress;
    if (typeof addrText !== 'string') throw invalidArgType('address', 'of type string', addrText);
    const addr = parseIpv4(addrText);
    if (addr === null) return this.later(() => this.emit('error', systemError('ENOTFOUND', 'getaddrinfo', addrText)));
    // Only our own address, or any (a broadcast address, as Linux allows, too).
    if (addr !== 0 && addr !== this.layer.ipv4.ip && !this.layer.ipv4.isBroadcast(addr))
      return this.later(() => this.emit('error', systemError('EADDRNOTAVAIL', 'bind', addrText, portNumber)));
    const got = this.layer.bindPort(this, portNumber, this.reuseAddr);
    if (got === 'EADDRINUSE') return this.later(() => this.emit('error', systemError('EADDRINUSE', 'bind', addrText, portNumber)));
    this.bound = true;
    this.boundAddress = addr;
    this.localPort = got;
    return this.later(() => this.emit('listening'));
  }

  /**
   * send(msg, [offset, length,] port, address?, callback?), or, once connected,
   * send(msg, [offset, length,] callback?). msg: Buffer, TypedArray, DataView, string, or an
   * array of them (sent as one datagram). An unbound socket is bound to an ephemeral port.
   */
  send(msg: Message, port: number, address?: string, callback?: SendCallback): void;
  send(msg: Message, port: number, callback?: SendCallback): void;
  send(msg: Message, offset: number, length: number, port: number, address?: string, callback?: SendCallback): void;
  send(msg: Message, offset: number, length: number, port: number, callback?: SendCallback): void;
  send(msg: Message, offset: number, length: number, callback?: SendCallback): void;
  send(msg: Message, callback?: SendCallback): void;
  send(msg: Message, ...rest: unknown[]): void {
    let [offset, length, port, address, callback] = rest as [unknown, unknown, unknown, unknown, unknown];
    let data: Message = msg;
    // The argument shuffling of Node's lib/dgram.js Socket.prototype.send.
    if (!this.connected) {
      if (address || (port && typeof port !== 'function')) {
        data = sliceMessage(msg, offset, length);
      } else {
        callback = port;
        port = offset;
        address = length;
      }
    } else {
      if (typeof length === 'number') {
        data = sliceMessage(msg, offset, length);
        if (typeof port === 'function') {
          callback = port;
          port = null;
        }
      } else {
        callback = offset;
      }
      if (port || address) throw nodeError('ERR_SOCKET_DGRAM_IS_CONNECTED');
    }
    const chunks = toChunks(data);
    let dstPort = this.remotePort;
    if (!this.connected) dstPort = validatePort(port, false);
    const cb = typeof callback === 'function' ? (callback as SendCallback) : undefined;
    if (typeof address === 'function') {
      // send(msg, port, callback) after the shuffle above
    } else if (address !== undefined && address !== null && typeof address !== 'string') {
      throw invalidArgType('address', 'of type string', address);
    }
    this.healthCheck();
    if (!this.bound) this.bind({ port: 0, exclusive: true });
    if (!this.bound) return; // no ephemeral port: the bind reports EADDRINUSE
    let dst = this.remote;
    let addrText = formatIpv4(dst);
    if (!this.connected) {
      addrText = typeof address === 'string' && address !== '' ? address : 'localhost';
      const resolved = this.resolve(addrText);
      if (resolved === null) return this.failSend(cb, systemError('ENOTFOUND', 'getaddrinfo', addrText));
      dst = resolved;
    }
    let size = 0;
    for (const c of chunks) size += c.byteLength;
    const error = this.layer.ipv4.isBroadcast(dst) && !this.broadcast ? 'EACCES' : this.layer.send(chunks, this.localPort, dst, dstPort, this.ttl);
    if (error) return this.failSend(cb, systemError(error, 'send', addrText, dstPort));
    if (cb) process.nextTick(() => cb(null, size));
  }

  /** Associates the socket with one peer: sends go there, and only its datagrams arrive. */
  connect(port: number, address?: string | ((err?: Error) => void), callback?: (err?: Error) => void): void {
    const portNumber = validatePort(port, false);
    if (typeof address === 'function') {
      callback = address;
      address = '';
    }
    const addrText = address === undefined || address === '' ? 'localhost' : address;
    if (typeof addrText !== 'string') throw invalidArgType('address', 'of type string', addrText);
    this.healthCheck();
    if (this.connected) throw nodeError('ERR_SOCKET_DGRAM_IS_CONNECTED');
    if (callback) this.once('connect', callback);
    if (!this.bound) this.bind({ port: 0, exclusive: true });
    const dst = this.resolve(addrText);
    let error = dst === null ? systemError('ENOTFOUND', 'getaddrinfo', addrText) : null;
    // Linux looks up a route on connect (ip4_datagram_connect).
    if (dst !== null && !this.layer.ipv4.isLocal(dst) && this.layer.ipv4.nextHop(dst) === null)
      error = systemError('ENETUNREACH', 'connect', addrText, portNumber);
    if (error || dst === null) {
      const err = error!;
      this.later(() => {
        if (callback) {
          this.off('connect', callback);
          callback.call(this, err);
        } else this.emit('error', err);
      });
      return;
    }
    this.connected = true;
    this.remote = dst;
    this.remotePort = portNumber;
    this.later(() => this.emit('connect'));
  }

  disconnect(): void {
    this.healthCheck();
    if (!this.connected) throw nodeError('ERR_SOCKET_DGRAM_NOT_CONNECTED');
    this.connected = false;
    this.remote = 0;
    this.remotePort = 0;
  }

  remoteAddress(): AddressInfo {
    this.healthCheck();
    if (!this.connected) throw nodeError('ERR_SOCKET_DGRAM_NOT_CONNECTED');
    return { address: formatIpv4(this.remote), family: 'IPv4', port: this.remotePort };
  }

  address(): AddressInfo {
    this.healthCheck();
    // Node's unbound socket has no descriptor yet: getsockname fails with EBADF.
    if (!this.bound) throw systemError('EBADF', 'getsockname');
    return { address: formatIpv4(this.boundAddress), family: 'IPv4', port: this.localPort };
  }

  close(callback?: () => void): this {
    if (typeof callback === 'function') this.on('close', callback);
    this.healthCheck();
    this.running = false;
    if (this.bound) this.layer.releasePort(this, this.localPort);
    this.bound = false;
    this.connected = false;
    this.layer.forget(this);
    return this.later(() => this.emit('close'));
  }

  setBroadcast(flag: boolean): void {
    this.healthCheck();
    this.broadcast = flag;
  }

  setTTL(ttl: number): number {
    if (typeof ttl !== 'number') throw invalidArgType('ttl', 'of type number', ttl);
    this.healthCheck();
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw systemError('EINVAL', 'setTTL');
    this.ttl = ttl;
    return ttl;
  }

  /** The stack does not keep the process alive by itself: these only keep Node's shape. */
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  /** Called by the layer with a datagram's data at buf[off, off+len). */
  deliver(buf: Buffer, off: number, len: number, src: number, srcPort: number): void {
    // The one copy of the payload: into the Buffer the application keeps.
    const msg = Buffer.allocUnsafe(len);
    buf.copy(msg, 0, off, off + len);
    this.emitFromStack('message', msg, { address: formatIpv4(src), family: 'IPv4', port: srcPort, size: len });
  }

  /** An ICMP error for this connected socket, as recvmsg would report it in Node. */
  reportError(code: string): void {
    this.emitFromStack('error', systemError(code, 'recvmsg'));
  }

  /**
   * Emits from inside the receive path. An exception in a listener is the application's:
   * it is rethrown outside the stack (uncaught, as in Node) instead of being counted as a
   * bad frame. Node 20's dgram (observed on 127.0.0.1): the original error reaches
   * process 'uncaughtException' in the same turn, the listeners after the thrower miss that
   * datagram, the socket stays open and the next datagrams arrive as usual.
   */
  private emitFromStack(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  private resolve(text: string): number | null {
    if (text === 'localhost') return this.layer.ipv4.ip;
    const addr = parseIpv4(text);
    // Linux takes 0.0.0.0 as "this host".
    return addr === 0 ? this.layer.ipv4.ip : addr;
  }

  private failSend(cb: SendCallback | undefined, err: Error): void {
    if (cb) process.nextTick(() => cb(err, 0));
    else this.later(() => this.emit('error', err));
  }

  private healthCheck(): void {
    if (!this.running) throw nodeError('ERR_SOCKET_DGRAM_NOT_RUNNING');
  }

  private later(fn: () => void): this {
    process.nextTick(fn);
    return this;
  }
}

function sliceMessage(msg: Message, offset: unknown, length: unknown): Message {
  const buf = typeof msg === 'string' ? Buffer.from(msg) : msg;
  if (Array.isArray(buf) || !(ArrayBuffer.isView(buf) || typeof buf === 'string')) throw invalidArgType('buffer', 'of type Buffer, TypedArray, DataView or string', msg);
  const view = buf as ArrayBufferView;
  const start = offset === undefined ? 0 : Number(offset) >>> 0;
  const end = length === undefined ? view.byteLength : start + (Number(length) >>> 0);
  return new Uint8Array(view.buffer, view.byteOffset + start, Math.max(0, Math.min(end, view.byteLength) - start));
}

function toChunks(msg: Message): Uint8Array[] {
  const list = Array.isArray(msg) ? msg : [msg];
  const out: Uint8Array[] = [];
  for (const item of list as (string | ArrayBufferView)[]) {
    if (typeof item === 'string') out.push(Buffer.from(item));
    else if (item instanceof Uint8Array) out.push(item);
    else if (ArrayBuffer.isView(item)) out.push(new Uint8Array(item.buffer, item.byteOffset, item.byteLength));
    else throw invalidArgType('buffer', 'of type Buffer, TypedArray, DataView or string', item);
  }
  return out;
}

