// A TCP socket with the shape of Node's net.Socket: a Duplex stream over one Connection.
// Backpressure runs both ways: a write is held until the send buffer takes it (so write()
// returns false when it is full and 'drain' follows when ACKs free it), and bytes the
// application has not read shrink the receive window we advertise.

import { addAbortSignal, Duplex } from 'node:stream';
import type { Timer } from '../util/clock.ts';
import { formatIpv4, parseIpv4 } from '../ipv4/address.ts';
import { LoopRef } from '../util/loop-hold.ts';
import { type ConnectOptions, lookupAndConnect, onReadableStreamEnd, parseConnectArgs, type SocketOptions } from './connect.ts';
import { OnreadDelivery } from './onread.ts';
import { reportToApplication } from './application-errors.ts';
import { orphan } from './closing.ts';
import type { Connection } from './connection.ts';
import type { ConnectionStats } from './counters.ts';
import { closedInfo, type TcpInfo, tcpInfo } from './info.ts';
import type { ConnectionUser } from './tcb.ts';
import { type SystemError, systemError } from '../util/errors.ts';
import type { TcpLayer } from './layer.ts';

export type { ConnectOptions, OnRead, SocketOptions } from './connect.ts';

/** Whoever keeps a list of the socket (its server), told when the socket is destroyed. */
export interface SocketOwner {
  socketDestroyed(socket: Socket): void;
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

/** net.js: a socket destroyed before it had a handle emits a bare 'close' on the next tick. */
function emitBareClose(socket: Socket): void {
  socket.emit('close');
}

function showLocal(socket: Socket): void {
  socket.showLocalAddress();
}

// What the application's listeners throw: see application-errors.ts.
export { reportToApplication } from './application-errors.ts';

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
  /** Whether this socket keeps the event loop alive (ref/unref); a handle from connect or accept on. */
  private readonly loopRef: LoopRef;
  private onread: OnreadDelivery | null = null;
  private localHidden = false;
  /** connect() or accept made what would be Node's handle. */
  private hadHandle = false;
  /** The server that accepted it (Node's socket.server; http.Server puts itself there too). */
  server: unknown = null;
  /** (Internal) the server whose count it is on (net.js socket._server), told of its destroy. */
  owner: SocketOwner | null = null;

  /** @internal Whether it belongs to this layer (the per-stack classes' instanceof). */
  isOn(layer: object): boolean {
    return this.layer === layer;
  }

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
    this.loopRef = new LoopRef(layer.loopHold);
    this.on('end', onReadableStreamEnd);
    if (options.onread !== null && typeof options.onread === 'object') this.onread = new OnreadDelivery(options.onread.buffer, options.onread.callback);
    // An aborted signal destroys the socket at once (net.js addAbortSignalNoValidate).
    if (options.signal) addAbortSignal(options.signal, this);
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
    this.hadHandle = true;
    this.loopRef.setActive(true);
    conn.setNoDelay(this.noDelayWanted);
    if (this.keepAliveWanted) conn.setKeepAlive(this.keepAliveWanted.enable, this.keepAliveWanted.delay || undefined);
    if (this.userTimeoutWanted >= 0) conn.setUserTimeout(this.userTimeoutWanted);
  }

  /**
   * Opens the connection (net.Socket.connect): connect(options[, listener]) or
   * connect(port[, host][, listener]). Bad arguments throw at once, as net.js
   * lookupAndConnect's validation; the rest (lookup, bind, connect) comes as events.
   */
  connect(options: ConnectOptions | number | string, hostOrListener?: string | (() => void), listener?: () => void): this {
    const { opts, port, cb } = parseConnectArgs(options, hostOrListener, listener);
    if (this.destroyed) return this; // aborted already (its signal): no connection
    if (opts.onread && !this.onread) this.onread = new OnreadDelivery(opts.onread.buffer, opts.onread.callback);
    if (cb) this.once('connect', cb);
    if (opts.timeout) this.setTimeout(opts.timeout);
    this.connecting = true;
    // What would be a handle in Node exists from here: a ref'd socket keeps the loop alive.
    this.hadHandle = true;
    this.loopRef.setActive(true);
    // Node has no local address before its connect() on the next tick: none in this one either.
    this.localHidden = true;
    process.nextTick(showLocal, this);
    lookupAndConnect(this, this.layer, opts.host || 'localhost', port, opts);
    return this;
  }

  /** (Internal) 'lookup', from the stack's receive path or a resolver's callback. */
  emitLookup(err: Error | null, address: string | undefined, family: number | undefined, host: string): void {
    try {
      this.emit('lookup', err, address, family, host);
    } catch (e) {
      reportToApplication(e);
    }
  }

  /** (Internal) the tick of connect() is over. */
  showLocalAddress(): void {
    this.localHidden = false;
  }

  /** (Internal) the peer's address as connect() is about to dial it. */
  notePeer(address: string, port: number): void {
    this.remoteAddressCache = address;
    this.remotePortCache = port;
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
    try {
      if (this.onread) {
        this.onread.deliver(this, data);
        this.scheduleWindowCheck();
      }
      // In flowing mode push() emits 'data' at once.
      else this.push(data);
    } catch (err) {
      reportToApplication(err);
    }
  }

  onEnd(): void {
    // Behind bytes an onread callback paused for, the FIN waits too (it is read after them).
    if (this.onread?.holding) {
      this.onread.endPending = true;
      return;
    }
    // 'end' itself comes on a later tick, but push(null) may emit 'readable' and the 'data'
    // of bytes still buffered at once.
    this.pushEnd();
  }

  /** With onread, resume() restarts a reading its callback paused (net.js Socket.resume). */
  override resume(): this {
    const o = this.onread;
    super.resume();
    if (o && o.resume(this) && o.endPending) {
      o.endPending = false;
      this.pushEnd();
    }
    this.scheduleWindowCheck();
    return this;
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
    if (this.onread?.holding) this.onread.endPending = true;
    else if (!this.readableEnded && this.readableLength === 0) this.pushEnd();
  }

  private pushEnd(): void {
    try {
      this.push(null);
      // net.js onStreamRead at EOF: push(null) then read(0), so that a stream nobody reads
      // (no 'data' listener, not flowing) still emits 'end' once its buffer is empty (a
      // paused stream only ends from a read). With bytes left unread it does not, as in Node.
      this.read(0);
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
    return this.readableLength + (this.onread?.queued ?? 0);
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

  /** (Internal) the close event, a turn after _destroy, as Node's net.Socket. */
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
    this.loopRef.setActive(false);
    if (conn) {
      conn.user = null;
      // Linux tcp_close resets when data is left in the kernel's receive queue (RFC 2525
      // 2.17). Node reads the kernel's queue into the stream's buffer until that holds its
      // highWaterMark, then stops: bytes buffered up to it are out of the kernel, those
      // beyond it would still be in it. Out-of-order bytes are the stack's own. destroy(err)
      // is a plain close() in Node (a FIN): only resetAndDestroy() resets regardless.
      if (this.readableLength > this.readableHighWaterMark || this.onread?.holding || !conn.reassembly.isEmpty || conn.state === 'SYN-SENT') {
        conn.abort();
      } else {
        // A graceful close goes on without the socket: buffered data, FIN, TIME-WAIT.
        orphan(conn);
      }
    }
    // An Error (and its stack trace) only when a write is waiting for it: most closes have none.
    if (this.pendingWrite || this.pendingFinal) this.failPending(err ?? systemError('EPIPE', 'write'));
    if (err) this.hadError = true;
    // Node's net.Socket._destroy takes the socket off its server's count here, before 'close'.
    const owner = this.owner;
    if (owner) owner.socketDestroyed(this);
    callback(err);
    if (!this.hadHandle) {
      process.nextTick(emitBareClose, this);
      return;
    }
    // Node's 'close' waits for the handle's close callback (a later phase of the loop), so
    // code that awaits 'error' (await once(s, 'error')) can still wait for 'close' after it.
    setImmediate(emitClose, this);
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
    // Node's socket timeout does not hold the event loop (net.js uses an unref'd timer).
    this.idleTimer.unref?.();
  }

  private clearIdleTimer(): void {
    this.idleTimer?.cancel();
    this.idleTimer = null;
  }

  /** Keeps the event loop alive while the socket is open (the default), as a libuv handle does. */
  ref(): this {
    this.loopRef.set(true);
    return this;
  }

  /** Lets the process exit with the socket open. */
  unref(): this {
    this.loopRef.set(false);
    return this;
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    if (this.localPortCache === undefined || this.localHidden) return {};
    return { address: this.localAddressCache, family: 'IPv4', port: this.localPortCache };
  }

  // Peer's address only once connected (net.js _getpeername returns {} while connecting).
  get remoteAddress(): string | undefined {
    return this.connecting ? undefined : this.remoteAddressCache;
  }
  get remotePort(): number | undefined {
    return this.connecting ? undefined : this.remotePortCache;
  }
  get remoteFamily(): string | undefined {
    return this.connecting || this.remoteAddressCache === undefined ? undefined : 'IPv4';
  }
  get localAddress(): string | undefined {
    return this.localPortCache === undefined || this.localHidden ? undefined : this.localAddressCache;
  }
  get localPort(): number | undefined {
    return this.localHidden ? undefined : this.localPortCache;
  }
  get localFamily(): string | undefined {
    return this.localPortCache === undefined || this.localHidden ? undefined : 'IPv4';
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

  /**
   * Linux's TCP_INFO for this socket (getsockopt(IPPROTO_TCP, TCP_INFO)): struct tcp_info's
   * field names and units (src/tcp/info.ts). Once the connection is gone: state CLOSED with
   * its counters.
   */
  info(): TcpInfo {
    return this.conn !== null ? tcpInfo(this.conn) : closedInfo(this.stats);
  }
}
