// The steps of net.Socket.connect before the SYN, as Node 20's lib/net.js takes them:
// argument checks that throw at once (lookupAndConnect's validation), name resolution
// through the lookup contract with its 'lookup' events, and the write-after-FIN rule.

import dns from 'node:dns';
import { isIP } from 'node:net';
import { Duplex } from 'node:stream';
import { systemError, validatePort, withCode } from '../util/errors.ts';
import { parseIpv4 } from '../ipv4/address.ts';
import type { TcpLayer } from './layer.ts';
import type { LookupAddress, LookupFunction, LookupOptions } from './lookup.ts';
import type { Connection } from './connection.ts';

export interface SocketOptions {
  /** Keep our side open after the peer's FIN (Node's default: false, end ours too). */
  allowHalfOpen?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
  highWaterMark?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
  /** Destroys the socket with an AbortError when aborted (net.js addAbortSignalNoValidate). */
  signal?: AbortSignal;
  /** Data goes to this callback, in this buffer, instead of 'data' events (Node's onread). */
  onread?: OnRead;
}

export interface OnRead {
  buffer: Uint8Array | (() => Uint8Array);
  callback(bytesRead: number, buffer: Uint8Array): boolean | void;
}

export interface ConnectOptions extends SocketOptions {
  port: number | string;
  host?: string;
  localAddress?: string;
  localPort?: number;
  /** 4 or 6 ('IPv4', 'IPv6'): the family asked of lookup; ignored for an address literal, as in Node. */
  family?: number | string;
  hints?: number;
  /** Node's lookup contract (dns.lookup's signature); default the stack's resolver. */
  lookup?: LookupFunction;
  /** false: lookup gets the one-address form when no family is given (Node 20's default is true). */
  autoSelectFamily?: boolean;
  timeout?: number;
}

/** What these steps need of the socket (socket.ts; no import back). */
interface ConnectingSocket extends Duplex {
  connecting: boolean;
  allowHalfOpen: boolean;
  notePeer(address: string, port: number): void;
  attach(conn: Connection): void;
  emitLookup(err: Error | null, address: string | undefined, family: number | undefined, host: string): void;
}

/** connect(options[, cb]) or connect(port[, host][, cb]), checked as net.js does (throws). */
export function parseConnectArgs(
  options: ConnectOptions | number | string,
  hostOrListener?: string | (() => void),
  listener?: () => void,
): { opts: ConnectOptions; port: number; cb: (() => void) | undefined } {
  const opts: ConnectOptions = options !== null && typeof options === 'object' ? { ...options } : { port: options };
  let cb = listener;
  if (typeof hostOrListener === 'function') cb = hostOrListener;
  else if (typeof hostOrListener === 'string' && typeof options !== 'object') opts.host = hostOrListener;
  if (opts.port === undefined) throw withCode(new TypeError('The "options" or "port" or "path" argument must be specified'), 'ERR_MISSING_ARGS');
  if (typeof opts.port !== 'number' && typeof opts.port !== 'string')
    throw withCode(new TypeError(`The "options.port" property must be one of type number or string. Received ${typeof opts.port}`), 'ERR_INVALID_ARG_TYPE');
  const port = validatePort(opts.port, true);
  if (opts.localAddress && !isIP(opts.localAddress)) throw withCode(new TypeError(`Invalid IP address: ${opts.localAddress}`), 'ERR_INVALID_IP_ADDRESS');
  if (opts.lookup != null && typeof opts.lookup !== 'function')
    throw withCode(new TypeError(`The "options.lookup" property must be of type function. Received ${typeof opts.lookup}`), 'ERR_INVALID_ARG_TYPE');
  return { opts, port, cb };
}

function socketToDnsFamily(family: unknown): number | undefined {
  if (family === 'IPv4') return 4;
  if (family === 'IPv6') return 6;
  return typeof family === 'number' ? family : undefined;
}

function destroyWith(socket: ConnectingSocket, err: Error): void {
  socket.destroy(err);
}

/** net.js lookupAndConnect: an address literal goes straight on; a name is looked up first. */
export function lookupAndConnect(socket: ConnectingSocket, layer: TcpLayer, host: string, port: number, opts: ConnectOptions): void {
  if (isIP(host)) {
    // No lookup, and family is not looked at. Node connects on the next tick; the SYN goes
    // now here (what a tick would show, the local address, is hidden until then).
    internalConnect(socket, layer, host, port, opts);
    return;
  }
  const lookup = opts.lookup ?? layer.lookup;
  const family = socketToDnsFamily(opts.family);
  const dnsopts: LookupOptions = { family, hints: opts.hints || 0 };
  if (family !== 4 && family !== 6 && dnsopts.hints === 0) dnsopts.hints = dns.ADDRCONFIG;
  // Node 20 (autoSelectFamily on by default) asks for every address unless a family or a
  // local address narrows it; either answer shape is taken.
  if (family !== 4 && family !== 6 && !opts.localAddress && opts.autoSelectFamily !== false) dnsopts.all = true;
  lookup(host, dnsopts, (err, address, addressType) => onLookup(socket, layer, host, port, opts, err, address, addressType));
}

function onLookup(socket: ConnectingSocket, layer: TcpLayer, host: string, port: number, opts: ConnectOptions, err: Error | null, address?: string | LookupAddress[], addressType?: number): void {
  const list: LookupAddress[] = Array.isArray(address) ? address : address !== undefined ? [{ address, family: addressType ?? 0 }] : [];
  if (err || list.length === 0) {
    socket.emitLookup(err, undefined, undefined, host);
    if (socket.connecting) process.nextTick(destroyWith, socket, err ?? systemError('ENOTFOUND', 'getaddrinfo', host));
    return;
  }
  // net.js emits 'lookup' once per address, before connecting.
  for (const a of list) {
    socket.emitLookup(null, a.address, a.family, host);
    if (!socket.connecting) return;
  }
  const v4 = list.find((a) => a.family === 4 && isIP(a.address) === 4);
  if (v4) {
    // Only the first IPv4 address is tried (Node's autoSelectFamily would try the rest).
    internalConnect(socket, layer, v4.address, port, opts);
    return;
  }
  const first = list[0]!;
  let fail: Error;
  if (!isIP(first.address)) fail = withCode(new TypeError(`Invalid IP address: ${first.address}`), 'ERR_INVALID_IP_ADDRESS');
  else if (first.family !== 4 && first.family !== 6)
    fail = withCode(new TypeError(`Invalid address family: ${String(first.family)} ${host}:${port}`), 'ERR_INVALID_ADDRESS_FAMILY');
  // IPv6 only: the stack has no IPv6 route.
  else fail = systemError('ENETUNREACH', 'connect', first.address, port);
  process.nextTick(destroyWith, socket, fail);
}

/** net.js internalConnect: bind (localAddress, localPort), then the SYN. */
function internalConnect(socket: ConnectingSocket, layer: TcpLayer, address: string, port: number, opts: ConnectOptions): void {
  const remoteIp = parseIpv4(address);
  socket.notePeer(address, port);
  // IPv6: no route (what Linux's connect says with no IPv6 route).
  if (remoteIp === null) return void socket.destroy(systemError('ENETUNREACH', 'connect', address, port));
  const local = opts.localAddress;
  // Linux's bind: only an address of this host (inet_bind, EADDRNOTAVAIL otherwise).
  if (local && local !== '0.0.0.0' && parseIpv4(local) !== layer.ip) return void socket.destroy(systemError('EADDRNOTAVAIL', 'bind', local, opts.localPort));
  if (layer.ipv4.nextHop(remoteIp) === null && !layer.ipv4.isLocal(remoteIp)) return void socket.destroy(systemError('ENETUNREACH', 'connect', address, port));
  const conn = layer.connect(remoteIp, port, opts.localPort);
  if (typeof conn === 'string') {
    const bind = conn === 'EADDRINUSE' && opts.localPort;
    socket.destroy(bind ? systemError(conn, 'bind', local || '0.0.0.0', opts.localPort) : systemError(conn, 'connect', address, port));
    return;
  }
  socket.attach(conn);
  conn.openActive();
}

/** 'end' of a socket without allowHalfOpen: our side ends too, later writes are EPIPE (net.js onReadableStreamEnd). */
export function onReadableStreamEnd(this: ConnectingSocket): void {
  if (!this.allowHalfOpen) this.write = writeAfterFIN;
}

/** net.js writeAfterFIN: writing once the stream ended our side after the peer's FIN. */
function writeAfterFIN(this: ConnectingSocket, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  if (!this.writableEnded) return Duplex.prototype.write.call(this, chunk, encoding as BufferEncoding, cb as () => void);
  const callback = typeof encoding === 'function' ? encoding : cb;
  const err = new Error('This socket has been ended by the other party') as Error & { code: string };
  err.code = 'EPIPE';
  if (typeof callback === 'function') process.nextTick(callback as (e: Error) => void, err);
  this.destroy(err);
  return false;
}
