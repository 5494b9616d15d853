// What dgram's send takes (a Buffer, TypedArray, DataView, string, or a list of them) turned
// into the chunks of one datagram, and argument checks shared by the socket's methods; with
// Node's errors (lib/dgram.js sliceBuffer, fixBufferList).

import { invalidArgType } from '../util/errors.ts';

export type Message = string | ArrayBufferView | readonly (string | ArrayBufferView)[];

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

