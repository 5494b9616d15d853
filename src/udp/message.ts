// What dgram's send takes (a Buffer, TypedArray, DataView, string, or a list of them) turned
// into the chunks of one datagram, and argument checks shared by the socket's methods; with
// Node's errors (lib/dgram.js sliceBuffer, fixBufferList).

import { invalidArgType, nodeError, validatePort } from '../util/errors.ts';

export type Message = string | ArrayBufferView | readonly (string | ArrayBufferView)[];

export interface SendArguments {
  chunks: Uint8Array[];
  /** The destination port, validated (unconnected sends only). */
  port: unknown;
  address: string | undefined | null;
  callback: ((...args: never[]) => unknown) | undefined;
}

/**
 * send(msg, [offset, length,] port, address?, callback?), or, connected,
 * send(msg, [offset, length,] callback?): the argument shuffling of Node 20's
 * lib/dgram.js Socket.prototype.send, with its errors.
 */
export function sendArguments(connected: boolean, msg: Message, rest: unknown[]): SendArguments {
  let [offset, length, port, address, callback] = rest as [unknown, unknown, unknown, unknown, unknown];
  let data: Message = msg;
  if (!connected) {
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
  if (!connected) port = validatePort(port, false);
  if (typeof address === 'function') {
    // send(msg, port, callback) or send(msg, offset, length, port, callback): after the
    // shuffle the callback is in `address` (lib/dgram.js does the same).
    callback = address;
    address = undefined;
  } else if (address !== undefined && address !== null && typeof address !== 'string') {
    throw invalidArgType('address', 'of type string', address);
  }
  return { chunks, port, address: address as string | undefined | null, callback: typeof callback === 'function' ? (callback as () => unknown) : undefined };
}

export function validateAddresses(sourceAddress: unknown, groupAddress: unknown): void {
  if (typeof sourceAddress !== 'string') throw invalidArgType('sourceAddress', 'of type string', sourceAddress);
  if (typeof groupAddress !== 'string') throw invalidArgType('groupAddress', 'of type string', groupAddress);
}

export function sliceMessage(msg: Message, offset: unknown, length: unknown): Message {
  const buf = typeof msg === 'string' ? Buffer.from(msg) : msg;
  if (Array.isArray(buf) || !(ArrayBuffer.isView(buf) || typeof buf === 'string')) throw invalidArgType('buffer', 'of type Buffer, TypedArray, DataView or string', msg);
  const view = buf as ArrayBufferView;
  const start = offset === undefined ? 0 : Number(offset) >>> 0;
  const end = length === undefined ? view.byteLength : start + (Number(length) >>> 0);
  return new Uint8Array(view.buffer, view.byteOffset + start, Math.max(0, Math.min(end, view.byteLength) - start));
}

export function toChunks(msg: Message): Uint8Array[] {
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

