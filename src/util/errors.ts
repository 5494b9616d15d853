// Errors shaped like Node's own (lib/internal/errors.js), so code written for net and dgram
// handles ours unchanged: system errors carry code, errno (negative, as libuv reports it),
// syscall and, where Node adds them, address and port; argument and state errors carry
// Node's ERR_* codes and text.

import { constants } from 'node:os';

/** The system error codes TCP reports; listen's message adds their libuv description. */
export type TcpErrorCode = 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT' | 'EPIPE' | 'EADDRINUSE' | 'EADDRNOTAVAIL' | 'EHOSTUNREACH' | 'ENETUNREACH';

const DESCRIPTIONS: Record<TcpErrorCode, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  ETIMEDOUT: 'connection timed out',
  EPIPE: 'broken pipe',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available',
  EHOSTUNREACH: 'host is unreachable',
  ENETUNREACH: 'network is unreachable',
};

export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
}

/**
 * Like Node's ErrnoException / ExceptionWithHostPort: "bind EADDRINUSE 0.0.0.0:7"; for listen,
 * like UVExceptionWithHostPort: "listen EADDRINUSE: address already in use :::80". The port
 * shows in the message only when above 0. It is set on the error when non-zero, and for
 * listen whenever given (even 0, the port the caller asked for).
 */
export function systemError(code: string, syscall: string, address?: string, port?: number): SystemError {
  let message = `${syscall} ${code}`;
  if (syscall === 'listen') message += `: ${(DESCRIPTIONS as Record<string, string | undefined>)[code]}`;
  if (address !== undefined) message += port !== undefined && port > 0 ? ` ${address}:${port}` : ` ${address}`;
  const err = new Error(message) as SystemError;
  err.code = code;
  err.errno = -((constants.errno as Record<string, number>)[code] ?? 0);
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined && (port || syscall === 'listen')) err.port = port;
  return err;
}

/** The ERR_* codes dgram uses, with Node's messages. */
const MESSAGES = {
  ERR_SOCKET_ALREADY_BOUND: 'Socket is already bound',
  ERR_SOCKET_DGRAM_IS_CONNECTED: 'Already connected',
  ERR_SOCKET_DGRAM_NOT_CONNECTED: 'Not connected',
  ERR_SOCKET_DGRAM_NOT_RUNNING: 'Not running',
  ERR_SOCKET_BAD_TYPE: 'Bad socket type specified. Valid types are: udp4',
} as const;

export type NodeErrorCode =
  | keyof typeof MESSAGES
  | 'ERR_SOCKET_BAD_PORT'
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_OUT_OF_RANGE'
  // net's (lib/net.js)
  | 'ERR_MISSING_ARGS'
  | 'ERR_INVALID_IP_ADDRESS'
  | 'ERR_INVALID_ADDRESS_FAMILY'
  | 'ERR_SERVER_ALREADY_LISTEN'
  | 'ERR_SERVER_NOT_RUNNING';

export interface NodeError extends Error {
  code: NodeErrorCode;
}

export function nodeError(code: keyof typeof MESSAGES): NodeError {
  return withCode(new Error(MESSAGES[code]), code);
}

export function withCode<E extends Error>(err: E, code: NodeErrorCode): E & NodeError {
  const e = err as E & NodeError;
  e.code = code;
  return e;
}

/** Node's validatePort: an integer 0..65535 (1..65535 when zero is not allowed). */
export function validatePort(port: unknown, allowZero: boolean, name = 'Port'): number {
  const n = typeof port === 'string' && port.trim() !== '' ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    const shown = typeof port === 'number' ? `type number (${port})` : typeof port === 'string' ? `type string ('${port}')` : String(port);
    throw withCode(new RangeError(`${name} should be ${allowZero ? '>=' : '>'} 0 and < 65536. Received ${shown}.`), 'ERR_SOCKET_BAD_PORT');
  }
  return n;
}

export function invalidArgType(name: string, expected: string, actual: unknown): NodeError {
  return withCode(new TypeError(`The "${name}" argument must be ${expected}. Received ${typeof actual}`), 'ERR_INVALID_ARG_TYPE');
}
