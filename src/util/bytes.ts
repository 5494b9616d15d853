// Copying bytes on hot paths. Node 20's Buffer.copy (and buf.set(x.subarray(...))) makes a new
// Uint8Array view of the source range whenever it does not start at 0: one allocation per
// call. For the short copies of a frame's headers and small payloads a plain loop is cheaper
// and allocates nothing; long copies go to Buffer.copy, whose memcpy then dominates.

const LOOP_MAX = 128;

/** Copies len bytes from src[srcOff..] to dst[dstOff..] (the ranges must not overlap). */
export function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, len: number): void {
  if (len <= LOOP_MAX) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i]!;
    return;
  }
  dst.set(src.subarray(srcOff, srcOff + len), dstOff);
}

/** The one empty Buffer a view holds before its first frame: Buffer.alloc(0) makes a new ArrayBuffer each call. */
export const EMPTY_BUFFER: Buffer = Buffer.alloc(0);
