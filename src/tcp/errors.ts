// Errors shaped like Node's (lib/internal/errors.js): code, errno (negative, as libuv
// reports it), syscall, and for connect the address and port in the message.

import { constants } from 'node:os';

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
  code: TcpErrorCode;
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
}

/** Like Node's errnoException / exceptionWithHostPort. */
export function systemError(code: TcpErrorCode, syscall: string, address?: string, port?: number): SystemError {
  let message = `${syscall} ${code}`;
  if (syscall === 'listen') message = `${syscall} ${code}: ${DESCRIPTIONS[code]}`;
  if (address !== undefined) message += ` ${address}${port !== undefined && port > 0 ? `:${port}` : ''}`;
  const err = new Error(message) as SystemError;
  err.errno = -(constants.errno as Record<string, number>)[code]!;
  err.code = code;
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
}
