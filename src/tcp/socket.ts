// A TCP socket with the shape of Node's net.Socket: a Duplex stream over one Connection.
// Backpressure runs both ways: a write is held until the send buffer takes it (so write()
// returns false when it is full and 'drain' follows when ACKs free it), and bytes the
// application has not read shrink the receive window we advertise.

import { Duplex } from 'node:stream';
import type { Timer } from '../util/clock.ts';
import { formatIpv4, parseIpv4 } from '../ipv4/address.ts';
import { orphan } from './closing.ts';
import type { Connection } from './connection.ts';
import type { ConnectionStats } from './counters.ts';
import type { ConnectionUser } from './tcb.ts';
import { type SystemError, systemError } from '../util/errors.ts';
import type { TcpLayer } from './layer.ts';

export interface SocketOptions {
  /** Keep our side open after the peer's FIN (Node's default: false, end ours too). */
  allowHalfOpen?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
  highWaterMark?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
}

export interface ConnectOptions extends SocketOptions {
  port: number;
  host?: string;
  localPort?: number;
  timeout?: number;
}

type ReadyState = 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed';

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  callback: (err?: Error | null) => void;
}

// Callbacks for process.nextTick(fn, socket): shared, so a tick costs no closure per socket.
function checkWindowAfterRead(socket: Socket): void {
  socket.checkWindow();
}

function emitClose(socket: Socket): void {
  socket.emitCloseEvent();
}

// Exceptions from the application's listeners and callbacks.
//
// What Node 20 does (observed with real node:net and node:dgram sockets on 127.0.0.1): when a
// listener of a net.Socket's 'connect', 'data', 'drain' or 'timeout', a net.Server's
// 'connection' or a dgram socket's 'message' throws, the error goes to
// process.on('uncaughtException') (the very object thrown; with no such listener the process
// dies) in the same turn, and the socket is neither destroyed nor sent an 'error': the
// listeners after the thrower miss that one event, later events come as usual (later data,
// datagrams, drains, timeouts after new activity). 'end' and 'close' are emitted on a tick of
// their own, so their exceptions are uncaught there too; a throwing 'end' listener cuts the
// stream's own end handling short (no automatic end of our side, no 'close' until the
// application ends it), and a throwing 'drain' listener leaves the Writable one finished
// write short (no 'finish', so no automatic destroy after end()): the same stream code does
// both here as well. A throwing 'connect' listener also skips 'ready' (emitted in one go).
//
// Here these events come from inside the stack's receive path (a segment being processed),
// which must never see the exception: the segment's processing has to complete (its ACK,
// the TCB's state). So every call that can reach the application from there catches, and
// reportToApplication rethrows on process.nextTick: an uncaught exception with the original
// error, in the same turn of the event loop, once the stack is done with the frame (one
// nextTick later than Node, after any the listener queued itself). Unlike Node, whose
// queued writes wait on a 'connect' listener of their own, a write made while connecting
// still goes out when a 'connect' listener throws.

function rethrow(err: unknown): never {
  throw err;
}

/** Raises err as an uncaught exception of the application's, outside the stack. */
export function reportToApplication(err: unknown): void {
  process.nextTick(rethrow, err);
}

export class Socket extends Duplex implements ConnectionUser {
  connecting = false;
  bytesRead = 0;
  private bytesSent = 0;
  private conn: Connection | null = null;
  /** The connection's counters, kept after it is gone (tcpStats). */
  private stats: ConnectionStats | null = null;
  private pendingWrite: PendingWrite | null = null;
  private pendingFinal: ((err?: Error | null) => void) | null = null;
  private hadError = false;
  private localAddressCache = '';
  private localPortCache: number | undefined;
  private remoteAddressCache: string | undefined;
  private remotePortCache: number | undefined;
  // Idle timeout (socket.setTimeout), on the stack's clock.
  private idleMs = 0;
  private idleTimer: Timer | null = null;
  private lastActivity = 0;
  private noDelayWanted = false;
  private readCheckScheduled = false;
  private keepAliveWanted: { enable: boolean; delay: number } | null = null;
  private userTimeoutWanted = -1;

  constructor(
    private readonly layer: TcpLayer,
    options: SocketOptions = {},
  ) {
    super({
      // Without allowHalfOpen the stream ends our side when the peer's data ends (Node's net).
      allowHalfOpen: options.allowHalfOpen ?? false,
      emitClose: false,
      autoDestroy: true,
      decodeStrings: true,
      readableHighWaterMark: options.readableHighWaterMark ?? options.highWaterMark,
      writableHighWaterMark: options.writableHighWaterMark ?? options.highWaterMark,
    });
    if (options.noDelay) this.noDelayWanted = true;
    if (options.keepAlive) this.keepAliveWanted = { enable: true, delay: options.keepAliveInitialDelay ?? 0 };
  }

  /** Binds the socket to a connection (accepted, or being opened). */
  attach(conn: Connection): void {
    this.conn = conn;
    this.stats = conn.stats;
    conn.user = this;
    this.localAddressCache = formatIpv4(conn.localIp);
    this.localPortCache = conn.localPort;
    this.remoteAddressCache = formatIpv4(conn.remoteIp);
    this.remotePortCache = conn.remotePort;
    conn.setNoDelay(this.noDelayWanted);
    if (this.keepAliveWanted) conn.setKeepAlive(this.keepAliveWanted.enable, this.keepAliveWanted.delay || undefined);
    if (this.userTimeoutWanted >= 0) conn.setUserTimeout(this.userTimeoutWanted);
  }

  /** Opens the connection to options.host:options.port (net.Socket.connect). */
  connect(options: ConnectOptions | number, hostOrListener?: string | (() => void), listener?: () => void): this {
    const opts: ConnectOptions = typeof options === 'number' ? { port: options } : options;
    let cb = listener;
    if (typeof hostOrListener === 'function') cb = hostOrListener;
    else if (typeof hostOrListener === 'string') opts.host = hostOrListener;
    if (cb) this.once('connect', cb);
    if (opts.timeout) this.setTimeout(opts.timeout);
    const host = opts.host ?? 'localhost';
    const remoteIp = host === 'localhost' ? this.layer.ip : parseIpv4(host);
    const port = Number(opts.port);
    this.connecting = true;
    if (remoteIp === null || !Number.isInteger(port) || port <= 0 || port > 65535) {
      const err = new Error(`invalid address: ${host}:${opts.port}`) as Error & { code: string };
      err.code = remoteIp === null ? 'ENOTFOUND' : 'ERR_SOCKET_BAD_PORT';
      process.nextTick(() => this.destroy(err));
      return this;
    }
    this.remoteAddressCache = formatIpv4(remoteIp);
    this.remotePortCache = port;
    if (this.layer.ipv4.nextHop(remoteIp) === null && !this.layer.ipv4.isLocal(remoteIp)) {
      process.nextTick(() => this.destroy(systemError('ENETUNREACH', 'connect', formatIpv4(remoteIp), port)));
      return this;
    }
    const conn = this.layer.connect(remoteIp, port, opts.localPort);
    if (typeof conn === 'string') {
      process.nextTick(() => this.destroy(systemError(conn, 'connect', formatIpv4(remoteIp), port)));
      return this;
    }
    this.attach(conn);
    conn.openActive();
    return this;
  }

  // --- ConnectionUser -------------------------------------------------------------------

  // These run inside the stack's receive path: nothing the application throws may leave them
  // (see reportToApplication).

  onConnect(): void {
    this.connecting = false;
    this.touch();
    try {
      this.emit('connect');
      this.emit('ready');
    } catch (err) {
      reportToApplication(err);
    }
    this.flushPendingWrite();
    if (this.pendingFinal && !this.pendingWrite) {
      const cb = this.pendingFinal;
      this.pendingFinal = null;
      this.conn?.close();
      this.callBack(cb);
    }
  }

  onData(data: Buffer): void {
    this.bytesRead += data.length;
    this.touch();
    // In flowing mode push() emits 'data' at once.
    try {
      this.push(data);
    } catch (err) {
      reportToApplication(err);
    }
  }

  onEnd(): void {
    // 'end' itself comes on a later tick, but push(null) may emit 'readable' and the 'data'
    // of bytes still buffered at once.
    this.pushEnd();
  }

  onDrain(): void {
    this.touch();
    this.flushPendingWrite();
  }

  onClose(err: SystemError | null): void {
    this.conn = null;
    if (err) {
      this.hadError = true;
      this.failPending(err);
      this.destroy(err);
      return;
    }
    // Closed cleanly (both FINs exchanged, or TIME-WAIT over): anything still waiting to be
    // sent cannot go any more.
    if (this.pendingWrite || this.pendingFinal) this.failPending(systemError('EPIPE', 'write'));
    if (!this.readableEnded && this.readableLength === 0) this.pushEnd();
  }

  private pushEnd(): void {
    try {
      this.push(null);
    } catch (err) {
      reportToApplication(err);
    }
  }

  /** Calls a stream callback from the stack: it may run the application's ('drain', a write's callback). */
  private callBack(cb: (err?: Error | null) => void, err?: Error): void {
    try {
      cb(err);
    } catch (e) {
      reportToApplication(e);
    }
  }

  unreadBytes(): number {
    return this.readableLength;
  }

  // --- Duplex ---------------------------------------------------------------------------

  override _read(): void {
    this.scheduleWindowCheck();
  }

  /**
   * Every read (paused or flowing) takes bytes out of the stream's buffer, which frees
   * receive window: look at it once the read is done.
   */
  override read(size?: number): any {
    const chunk = super.read(size);
    if (this.conn && chunk !== null) this.scheduleWindowCheck();
    return chunk;
  }

  /** (Internal) the read that scheduled it is done: a grown window may be worth announcing. */
  checkWindow(): void {
    this.readCheckScheduled = false;
    this.conn?.onAppRead();
  }

  /** (Internal) the close event, a tick after _destroy, as Node's net.Socket. */
  emitCloseEvent(): void {
    this.emit('close', this.hadError);
  }

  private scheduleWindowCheck(): void {
    if (this.readCheckScheduled) return;
    this.readCheckScheduled = true;
    process.nextTick(checkWindowAfterRead, this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.pendingWrite = { chunk, offset: 0, callback };
    if (this.connecting) return; // sent once connected
    this.flushPendingWrite();
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.connecting || this.pendingWrite) {
      this.pendingFinal = callback;
      return;
    }
    this.conn?.close();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.clearIdleTimer();
    const conn = this.conn;
    this.conn = null;
    this.connecting = false;
    if (conn) {
      conn.user = null;
      if (err || this.readableLength > 0 || !conn.reassembly.isEmpty || conn.state === 'SYN-SENT') {
        // Unread data or an error: reset, as a kernel closing such a socket does (RFC 2525 2.17).
        conn.abort();
      } else {
        // A graceful close goes on without the socket: buffered data, FIN, TIME-WAIT.
        orphan(conn);
      }
    }
    // An Error (and its stack trace) only when a write is waiting for it: most closes have none.
    if (this.pendingWrite || this.pendingFinal) this.failPending(err ?? systemError('EPIPE', 'write'));
    if (err) this.hadError = true;
    callback(err);
    process.nextTick(emitClose, this);
  }

  /** Node's resetAndDestroy: close with a reset. */
  resetAndDestroy(): this {
    if (this.conn) {
      const conn = this.conn;
      this.conn = null;
      conn.user = null;
      conn.abort();
    }
    return this.destroy();
  }

  /** Ends our side, then destroys once the writes are done (Node's destroySoon). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  private flushPendingWrite(): void {
    const p = this.pendingWrite;
    const conn = this.conn;
    if (!p) return;
    if (!conn || !this.canSend(conn)) {
      this.failPending(systemError('EPIPE', 'write'));
      return;
    }
    const n = conn.send(p.chunk, p.offset, p.chunk.length - p.offset);
    p.offset += n;
    this.bytesSent += n;
    if (p.offset < p.chunk.length) return; // the rest waits for ACKs (onDrain)
    this.pendingWrite = null;
    this.touch();
    // The stream's write callback: from onDrain it emits 'drain' and calls the application's
    // write callback at once.
    this.callBack(p.callback);
    if (this.pendingFinal && !this.pendingWrite) {
      const cb = this.pendingFinal;
      this.pendingFinal = null;
      conn.close();
      this.callBack(cb);
    }
  }

  private canSend(conn: Connection): boolean {
    const s = conn.state;
    return s === 'ESTABLISHED' || s === 'CLOSE-WAIT' || s === 'SYN-SENT' || s === 'SYN-RECEIVED';
  }

  private failPending(err: Error): void {
    const p = this.pendingWrite;
    const f = this.pendingFinal;
    this.pendingWrite = null;
    this.pendingFinal = null;
    // Failed writes call the application's callbacks at once.
    if (p) this.callBack(p.callback, err);
    if (f) this.callBack(f, err);
  }

  // --- net.Socket API -------------------------------------------------------------------

  setNoDelay(noDelay = true): this {
    this.noDelayWanted = noDelay;
    this.conn?.setNoDelay(noDelay);
    return this;
  }

  /**
   * TCP_USER_TIMEOUT (RFC 5482; Node has no call for it): sent data unacknowledged, or a
   * zero window unanswered, for ms fails the connection with ETIMEDOUT. 0 turns it off.
   */
  setUserTimeout(ms: number): this {
    this.userTimeoutWanted = ms;
    this.conn?.setUserTimeout(ms);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.keepAliveWanted = { enable, delay: initialDelay };
    this.conn?.setKeepAlive(enable, initialDelay > 0 ? initialDelay : undefined);
    return this;
  }

  /** Emits 'timeout' after ms of inactivity (0 disables), timed on the stack's clock. */
  setTimeout(ms: number, callback?: () => void): this {
    this.idleMs = ms;
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this.clearIdleTimer();
    if (ms > 0) {
      this.lastActivity = this.layer.clock.now();
      this.armIdleTimer();
    }
    return this;
  }

  get timeout(): number | undefined {
    return this.idleMs || undefined;
  }

  private touch(): void {
    if (this.idleMs === 0) return;
    this.lastActivity = this.layer.clock.now();
    if (!this.idleTimer) this.armIdleTimer();
  }

  private armIdleTimer(): void {
    const due = this.lastActivity + this.idleMs - this.layer.clock.now();
    const armedFor = this.lastActivity;
    this.idleTimer = this.layer.clock.setTimer(Math.max(0, due), () => {
      this.idleTimer = null;
      if (this.idleMs === 0 || this.destroyed) return;
      // Armed for armedFor + idleMs: only activity since then puts the timeout off. (Comparing
      // the clock with lastActivity + idleMs instead could re-arm for a remainder too small to
      // move a large clock value, at the same instant, forever.)
      if (this.lastActivity !== armedFor) this.armIdleTimer();
      else {
        // A stack timer (the virtual clock runs the stack's timers in one loop).
        try {
          this.emit('timeout');
        } catch (err) {
          reportToApplication(err);
        }
      }
    });
  }

  private clearIdleTimer(): void {
    this.idleTimer?.cancel();
    this.idleTimer = null;
  }

  /** The socket holds no handle of its own: the stack's device keeps the process alive. */
  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    if (this.localPortCache === undefined) return {};
    return { address: this.localAddressCache, family: 'IPv4', port: this.localPortCache };
  }

  get remoteAddress(): string | undefined {
    return this.remoteAddressCache;
  }
  get remotePort(): number | undefined {
    return this.remotePortCache;
  }
  get remoteFamily(): string | undefined {
    return this.remoteAddressCache === undefined ? undefined : 'IPv4';
  }
  get localAddress(): string | undefined {
    return this.localPortCache === undefined ? undefined : this.localAddressCache;
  }
  get localPort(): number | undefined {
    return this.localPortCache;
  }
  get localFamily(): string | undefined {
    return this.localPortCache === undefined ? undefined : 'IPv4';
  }

  /** Bytes accepted for sending, including those still queued in the stream (as Node). */
  get bytesWritten(): number {
    return this.bytesSent + this.writableLength - (this.pendingWrite ? this.pendingWrite.offset : 0);
  }

  get pending(): boolean {
    return !this.conn || this.connecting;
  }

  get readyState(): ReadyState {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable && !this.writable) return 'readOnly';
    if (!this.readable && this.writable) return 'writeOnly';
    return 'closed';
  }

  /** The connection's TCP state, for diagnostics and tests. */
  get tcpState(): string {
    return this.conn?.state ?? 'CLOSED';
  }

  /** The underlying connection (tests and diagnostics). */
  get connection(): Connection | null {
    return this.conn;
  }

  /**
   * This connection's TCP counters (retransmissions, timeouts, tail loss probes, D-SACKs,
   * segments and bytes in and out), also after it closed; null before it had one.
   */
  tcpStats(): ConnectionStats | null {
    return this.stats === null ? null : { ...this.stats };
  }
}
