// A UDP socket with the shape of Node's dgram.Socket: bind, send, connect, 'message' events,
// errors with Node's codes. Socket calls take effect at once; events and callbacks come on
// the next tick, as Node's do, so a listener added right after a call still hears of it.

import { EventEmitter } from 'node:events';
import { formatIpv4, isMulticast, parseIpv4 } from '../ipv4/address.ts';
import type { Ipv4Layer, SendError } from '../ipv4/ipv4.ts';
import { invalidArgType, nodeError, systemError, validatePort } from '../util/errors.ts';
import { badBufferSize, bufferSizeError, missingArgs } from './dgram-errors.ts';
import { type MulticastContext, SocketMemberships } from './memberships.ts';

export type { MulticastContext } from './memberships.ts';
import { type BufferLimits, SocketBuffers } from './socket-buffers.ts';
import { type Message, sendArguments, validateAddresses } from './message.ts';

export type { BufferLimits } from './socket-buffers.ts';

export type SocketType = 'udp4';

export interface SocketOptions {
  type: SocketType;
  /** SO_REUSEADDR: several sockets may bind the same port if all of them ask for it. */
  reuseAddr?: boolean;
  /** SO_RCVBUF / SO_SNDBUF, set when the socket is bound (Node's afterBind). */
  recvBufferSize?: number;
  sendBufferSize?: number;
  /** Aborting it closes the socket (Node 20). */
  signal?: AbortSignal;
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
  /** The interface's group memberships (IGMP), and Linux's per-socket bounds on them. */
  readonly multicast: MulticastContext;
  readonly buffers: BufferLimits;
  /** A new socket: the layer knows it (to close it with the stack). */
  adopt(socket: UdpSocket): void;
  /**
   * A bound socket holds (ref) or lets go of (unref) the event loop, as a libuv handle that
   * receives; released on close.
   */
  refHandle(owner: object): void;
  unrefHandle(owner: object): void;
  releaseHandle(owner: object): void;
  /** Frames are being received in a batch: datagrams wait in the socket until its end. */
  readonly inReceiveBatch: boolean;
  /** The socket has datagrams queued: drain it at the end of the batch. */
  queued(socket: UdpSocket): void;
  /** Takes `port` (0: an ephemeral one) for the socket. Returns the port, or the errno. */
  bindPort(socket: UdpSocket, port: number, reuseAddr: boolean): number | 'EADDRINUSE';
  releasePort(socket: UdpSocket, port: number): void;
  /** The socket is closed: the layer lets go of it. */
  forget(socket: UdpSocket): void;
  /** Sends the concatenation of `chunks` from srcPort to dst:dstPort. Returns null or the errno. */
  send(chunks: readonly Uint8Array[], srcPort: number, dst: number, dstPort: number, ttl: number | undefined, multicastLoop: boolean): SendError | 'EACCES' | null;
}



type SendCallback = (error: Error | null, bytes: number) => void;

export class UdpSocket extends EventEmitter {
  readonly type: SocketType = 'udp4';
  readonly reuseAddr: boolean;
  /** Local address bound (0: any; a group address receives only that group). */
  boundAddress = 0;
  localPort = 0;
  remote = 0;
  remotePort = 0;
  private bound = false;
  /** bind() called, neither bound nor failed yet (Node's BIND_STATE_BINDING). */
  private binding = false;
  /**
   * A port taken without bind(): libuv binds a socket on its first membership call
   * (uv__udp_maybe_deferred_bind, with SO_REUSEADDR); Node's bind() then fails with EINVAL.
   */
  private implicitlyBound = false;
  /** connect() was called; 'connect' (and `connected`) come on the next tick, as Node's lookup. */
  private connecting = false;
  private connected = false;
  private running = true;
  private broadcast = false;
  private ttl: number | undefined;
  /** IP_MULTICAST_TTL (Linux default 1) and IP_MULTICAST_LOOP (default on). */
  private multicastTtl = 1;
  private multicastLoop = true;
  private readonly memberships: SocketMemberships;
  private readonly buffers: SocketBuffers;
  private readonly askedSizes: { recv?: number; send?: number };
  private refd = true;

  /** @internal Whether it belongs to this layer (the per-stack classes' instanceof). */
  isOn(layer: object): boolean {
    return this.layer === layer;
  }

  constructor(
    private readonly layer: UdpSocketContext,
    type: SocketType | SocketOptions,
    listener?: (msg: Buffer, rinfo: RemoteInfo) => void,
  ) {
    super();
    const t = typeof type === 'string' ? type : type?.type;
    if (t !== 'udp4') throw nodeError('ERR_SOCKET_BAD_TYPE');
    const options = typeof type === 'object' ? type : undefined;
    this.reuseAddr = options?.reuseAddr === true;
    this.askedSizes = { recv: options?.recvBufferSize, send: options?.sendBufferSize };
    this.memberships = new SocketMemberships(layer.multicast, layer.ipv4.ip);
    this.buffers = new SocketBuffers(layer.buffers);
    if (listener) this.on('message', listener);
    layer.adopt(this);
    const signal = options?.signal;
    if (signal !== undefined) {
      // Node 20's createSocket: an aborted signal closes the socket (at once if already so).
      const onAbort = (): void => {
        if (this.running) this.close();
      };
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Has the socket a peer in the port table's eyes (connected, or connect() called)? */
  get hasPeer(): boolean {
    return this.connected || this.connecting;
  }

  /** Has the socket a descriptor (bound, or by a membership call)? Else options give EBADF. */
  private get hasDescriptor(): boolean {
    return this.bound || this.implicitlyBound;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Is a datagram from src:srcPort to dst for this socket (port already matched)? */
  accepts(dst: number, src: number, srcPort: number): boolean {
    if (this.boundAddress !== 0 && this.boundAddress !== dst) return false;
    return !(this.connected || this.connecting) || (this.remote === src && this.remotePort === srcPort);
  }

  /** Does this socket take a datagram to a group from src (SocketMemberships.allows)? */
  allowsGroup(group: number, src: number): boolean {
    return this.memberships.allows(group, src);
  }

  /**
   * bind(port?, address?, callback?) or bind({ port, address, exclusive }, callback?).
   * Port 0 or none: an ephemeral port. 'listening' follows; a taken port gives an 'error'
   * event with EADDRINUSE, as in Node.
   */
  bind(port?: number | BindOptions | (() => void), address?: string | (() => void), callback?: () => void): this {
    this.healthCheck();
    if (this.bound || this.binding) throw nodeError('ERR_SOCKET_ALREADY_BOUND');
    // lib/dgram.js marks the socket BINDING before it checks the arguments: after a bad port
    // has thrown, the socket stays so (bind again: ERR_SOCKET_ALREADY_BOUND) until an error.
    this.binding = true;
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
    // Node 20's bind does not validate the port: the binding takes it as a uint32 and the
    // sockaddr keeps 16 bits (70000 binds 4464, -1 binds 65535, 'abc' an ephemeral port).
    const portNumber = (Number(wantPort) >>> 0) & 0xffff;
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
    if (addr === null) return this.bindFailed(systemError('ENOTFOUND', 'getaddrinfo', addrText));
    // Only our own address, or any (a broadcast or a group address, as Linux's inet_bind allows).
    if (addr !== 0 && addr !== this.layer.ipv4.ip && !this.layer.ipv4.isBroadcast(addr) && !isMulticast(addr))
      return this.bindFailed(systemError('EADDRNOTAVAIL', 'bind', addrText, portNumber));
    // The descriptor is bound already (by a membership call): bind(2) says EINVAL.
    if (this.implicitlyBound) return this.bindFailed(systemError('EINVAL', 'bind', addrText, portNumber));
    const got = this.layer.bindPort(this, portNumber, this.reuseAddr);
    if (got === 'EADDRINUSE') return this.bindFailed(systemError('EADDRINUSE', 'bind', addrText, portNumber));
    this.bound = true;
    this.binding = false;
    this.boundAddress = addr;
    this.localPort = got;
    this.syncHandle();
    // Node applies the createSocket buffer sizes once bound (lib/dgram.js afterBind).
    if (this.askedSizes.recv) this.setRecvBufferSize(this.askedSizes.recv);
    if (this.askedSizes.send) this.setSendBufferSize(this.askedSizes.send);
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
    const { chunks, port, address, callback } = sendArguments(this.connected, msg, rest);
    const dstPort = this.connected ? this.remotePort : (port as number);
    const cb = callback as SendCallback | undefined;
    this.healthCheck();
    // While binding, Node queues the datagram for a 'listening' that, here, never comes.
    if (!this.bound && !this.binding) this.bind({ port: 0, exclusive: true });
    if (!this.bound) return;
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
    // Linux sends to a group with IP_MULTICAST_TTL, not IP_TTL (ip_make_skb: mc_ttl).
    const ttl = isMulticast(dst) ? this.multicastTtl : this.ttl;
    const error = this.layer.ipv4.isBroadcast(dst) && !this.broadcast ? 'EACCES' : this.layer.send(chunks, this.localPort, dst, dstPort, ttl, this.multicastLoop);
    // lib/dgram.js doSend: a send error goes to the callback alone; without one it is not
    // emitted ("dgram_legacy.js compatibility"), as Node 20 does (checked on Node).
    if (error) {
      // Node calls back with the error alone (process.nextTick(callback, ex)).
      if (cb) process.nextTick(cb as (err: Error) => void, systemError(error, 'send', addrText, dstPort));
      return;
    }
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
    if (this.connected || this.connecting) throw nodeError('ERR_SOCKET_DGRAM_IS_CONNECTED');
    if (callback) this.once('connect', callback);
    if (!this.bound && !this.binding) this.bind({ port: 0, exclusive: true });
    if (!this.bound) return;
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
    // Node connects after its lookup: remoteAddress() says "not connected" until 'connect'.
    this.connecting = true;
    this.remote = dst;
    this.remotePort = portNumber;
    this.later(() => {
      if (!this.connecting) return;
      this.connecting = false;
      this.connected = true;
      this.emit('connect');
    });
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
    if (!this.hasDescriptor) throw systemError('EBADF', 'getsockname');
    return { address: formatIpv4(this.boundAddress), family: 'IPv4', port: this.localPort };
  }

  close(callback?: () => void): this {
    if (typeof callback === 'function') this.on('close', callback);
    this.healthCheck();
    this.running = false;
    if (this.hasDescriptor) this.layer.releasePort(this, this.localPort);
    this.bound = false;
    this.implicitlyBound = false;
    this.connected = false;
    this.connecting = false;
    // Closing drops the socket's memberships (Linux ip_mc_drop_socket) and its queue.
    this.memberships.leaveAll();
    this.buffers.clear();
    this.layer.forget(this);
    this.layer.releaseHandle(this);
    return this.later(() => this.emit('close'));
  }

  setBroadcast(flag: boolean): void {
    this.healthCheck();
    this.needDescriptor('setBroadcast');
    this.broadcast = flag;
  }

  /** Node: validateNumber, then the handle's setTTL (an int32: 1.5 is 1); 1..255 else EINVAL. */
  setTTL(ttl: number): number {
    if (typeof ttl !== 'number') throw invalidArgType('ttl', 'of type number', ttl);
    this.healthCheck();
    this.needDescriptor('setTTL');
    const n = ttl | 0;
    if (n < 1 || n > 255) throw systemError('EINVAL', 'setTTL');
    this.ttl = n;
    return ttl;
  }

  // --- multicast (Linux IP_ADD_MEMBERSHIP and friends, net/ipv4/igmp.c) ---

  /** IP_MULTICAST_TTL: 0..255 (Linux; -1 and the rest EINVAL through libuv). */
  setMulticastTTL(ttl: number): number {
    if (typeof ttl !== 'number') throw invalidArgType('ttl', 'of type number', ttl);
    this.healthCheck();
    this.needDescriptor('setMulticastTTL');
    const n = ttl | 0;
    if (n < 0 || n > 255) throw systemError('EINVAL', 'setMulticastTTL');
    this.multicastTtl = n;
    return ttl;
  }

  /** IP_MULTICAST_LOOP: our own sends to a group reach this host's members too. */
  setMulticastLoopback(flag: boolean): boolean {
    this.healthCheck();
    this.needDescriptor('setMulticastLoopback');
    this.multicastLoop = Boolean(flag);
    return flag;
  }

  /** IP_MULTICAST_IF: our address or 0.0.0.0 (the default); any other EADDRNOTAVAIL (ip_dev_find). */
  setMulticastInterface(interfaceAddress: string): void {
    this.healthCheck();
    if (typeof interfaceAddress !== 'string') throw invalidArgType('interfaceAddress', 'of type string', interfaceAddress);
    this.needDescriptor('setMulticastInterface');
    const addr = parseIpv4(interfaceAddress);
    if (addr === null) throw systemError('EINVAL', 'setMulticastInterface');
    if (addr !== 0 && addr !== this.layer.ipv4.ip) throw systemError('EADDRNOTAVAIL', 'setMulticastInterface');
  }

  /** Joins a group for any source (IP_ADD_MEMBERSHIP). */
  addMembership(multicastAddress: string, interfaceAddress?: string): void {
    this.healthCheck();
    if (!multicastAddress) throw missingArgs('multicastAddress');
    this.takeDescriptor();
    this.memberships.join(multicastAddress, interfaceAddress);
  }

  /** Leaves a group, whatever its source list (IP_DROP_MEMBERSHIP). */
  dropMembership(multicastAddress: string, interfaceAddress?: string): void {
    this.healthCheck();
    if (!multicastAddress) throw missingArgs('multicastAddress');
    this.takeDescriptor();
    this.memberships.drop(multicastAddress, interfaceAddress);
  }

  /** Joins a group from one source: IGMPv3 INCLUDE mode (MCAST_JOIN_SOURCE_GROUP). */
  addSourceSpecificMembership(sourceAddress: string, groupAddress: string, interfaceAddress?: string): void {
    this.healthCheck();
    validateAddresses(sourceAddress, groupAddress);
    this.takeDescriptor();
    this.memberships.joinSource(sourceAddress, groupAddress, interfaceAddress);
  }

  dropSourceSpecificMembership(sourceAddress: string, groupAddress: string, interfaceAddress?: string): void {
    this.healthCheck();
    validateAddresses(sourceAddress, groupAddress);
    this.takeDescriptor();
    this.memberships.dropSource(sourceAddress, groupAddress, interfaceAddress);
  }

  /** uv__udp_maybe_deferred_bind: the first membership call binds an unbound socket (port 0, SO_REUSEADDR). */
  private takeDescriptor(): void {
    if (this.hasDescriptor) return;
    const got = this.layer.bindPort(this, 0, true);
    if (got === 'EADDRINUSE') throw systemError('EADDRINUSE', 'bind');
    this.implicitlyBound = true;
    this.localPort = got;
    this.syncHandle();
  }

  private needDescriptor(syscall: string): void {
    if (!this.hasDescriptor) throw systemError('EBADF', syscall);
  }

  // --- buffers and queues ---

  setRecvBufferSize(size: number): void {
    this.bufferSize(size, true);
  }
  setSendBufferSize(size: number): void {
    this.bufferSize(size, false);
  }
  getRecvBufferSize(): number {
    return this.bufferSize(0, true);
  }
  getSendBufferSize(): number {
    return this.bufferSize(0, false);
  }

  /** Sends complete at once (there is no send queue): always 0, as Node's with nothing pending. */
  getSendQueueSize(): number {
    this.healthCheck();
    return 0;
  }
  getSendQueueCount(): number {
    this.healthCheck();
    return 0;
  }

  /** Node's bufferSize (lib/dgram.js): size 0 reads, else sets (SocketBuffers.set). */
  private bufferSize(size: number, recv: boolean): number {
    this.healthCheck();
    if (size >>> 0 !== size) throw badBufferSize();
    if (!this.hasDescriptor) throw bufferSizeError(recv);
    if (size === 0) return recv ? this.buffers.rcvbuf : this.buffers.sndbuf;
    this.buffers.set(size, recv);
    return size;
  }

  /** The socket keeps the process alive (default), as Node's handle.ref(). */
  ref(): this {
    this.refd = true;
    this.syncHandle();
    return this;
  }

  /** A stack whose sockets are all unref'd lets the process exit, as Node's handle.unref(). */
  unref(): this {
    this.refd = false;
    this.syncHandle();
    return this;
  }

  /** Only a socket with a descriptor counts, as only an active libuv handle holds the loop. */
  private syncHandle(): void {
    if (!this.running || !this.hasDescriptor) return;
    if (this.refd) this.layer.refHandle(this);
    else this.layer.unrefHandle(this);
  }

  /**
   * Called by the layer with a datagram's data at buf[off, off+len). Within a receive batch
   * it waits in the socket's queue, bounded by the receive buffer (SocketBuffers.admits);
   * returns false when dropped for that (the layer counts it).
   */
  deliver(buf: Buffer, off: number, len: number, src: number, srcPort: number): boolean {
    const queueing = this.layer.inReceiveBatch;
    if (queueing && !this.buffers.admits(len)) return false;
    // The one copy of the payload: into the Buffer the application keeps.
    const msg = Buffer.allocUnsafe(len);
    buf.copy(msg, 0, off, off + len);
    if (!queueing) {
      this.emitFromStack('message', msg, { address: formatIpv4(src), family: 'IPv4', port: srcPort, size: len });
      return true;
    }
    if (this.buffers.push(msg, src, srcPort)) this.layer.queued(this);
    return true;
  }

  /** The batch ended: the application reads what waited (the receive buffer empties). */
  drain(): void {
    this.buffers.drain(this.emitQueued, this.stillRunning);
  }

  private readonly emitQueued = (msg: Buffer, src: number, srcPort: number): void =>
    this.emitFromStack('message', msg, { address: formatIpv4(src), family: 'IPv4', port: srcPort, size: msg.length });
  private readonly stillRunning = (): boolean => this.running;

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

  /** A lookup error: to the callback, else an 'error' event (lib/dgram.js afterDns). */
  private failSend(cb: SendCallback | undefined, err: Error): void {
    if (cb) process.nextTick(cb as (err: Error) => void, err);
    else this.later(() => this.emit('error', err));
  }

  private healthCheck(): void {
    if (!this.running) throw nodeError('ERR_SOCKET_DGRAM_NOT_RUNNING');
  }

  /** Node's bind error: the socket is unbound again, then 'error'. */
  private bindFailed(err: Error): this {
    return this.later(() => {
      this.binding = false;
      this.emit('error', err);
    });
  }

  private later(fn: () => void): this {
    process.nextTick(fn);
    return this;
  }
}
