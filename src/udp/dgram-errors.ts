// The dgram-only errors of Node 20 (lib/internal/errors.js), with Node's names and texts.

import { constants } from 'node:os';
import type { NodeError } from '../util/errors.ts';

type Code = 'ERR_SOCKET_BAD_BUFFER_SIZE' | 'ERR_SOCKET_BUFFER_SIZE' | 'ERR_MISSING_ARGS';

function coded<E extends Error>(err: E, code: Code): E & NodeError {
  (err as unknown as { code: string }).code = code;
  return err as E & NodeError;
}

/** setRecvBufferSize('x'), (-1), (1.5): TypeError. */
export function badBufferSize(): NodeError {
  return coded(new TypeError('Buffer size must be a positive integer'), 'ERR_SOCKET_BAD_BUFFER_SIZE');
}

/**
 * A buffer size asked of a socket with no descriptor yet (not bound): Node's SystemError
 * ERR_SOCKET_BUFFER_SIZE around libuv's EBADF.
 */
export function bufferSizeError(recv: boolean): NodeError {
  const syscall = recv ? 'uv_recv_buffer_size' : 'uv_send_buffer_size';
  const err = coded(new Error(`Could not get or set buffer size: ${syscall} returned EBADF (bad file descriptor)`), 'ERR_SOCKET_BUFFER_SIZE');
  err.name = 'SystemError';
  const errno = -constants.errno.EBADF;
  Object.assign(err, { errno, syscall, info: { errno, code: 'EBADF', message: 'bad file descriptor', syscall } });
  return err;
}

export function missingArgs(name: string): NodeError {
  return coded(new TypeError(`The "${name}" argument must be specified`), 'ERR_MISSING_ARGS');
}
