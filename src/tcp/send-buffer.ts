// The send buffer (RFC 9293 3.8.6.2): bytes the application wrote that are not yet
// acknowledged. Its head is SND.UNA; bytes [0, SND.NXT - SND.UNA) are in flight and the rest
// wait to be sent. A ring that grows on demand up to a maximum, so idle connections stay small.

import { EMPTY_BUFFER as EMPTY } from '../util/bytes.ts';

export class SendBuffer {
  private ring: Buffer;
  private head = 0;
  /** Bytes held (acknowledged ones are removed at once). */
  length = 0;

  /**
   * Allocated on the first write, at the smallest power of two (of at least initialSize) that
   * holds it: idle connections (thousands of them) hold no buffer, and those that exchange
   * short messages a small one; a bulk writer's first write sizes it at once.
   */
  constructor(
    readonly maxSize: number,
    private readonly initialSize = 256,
  ) {
    this.ring = EMPTY;
  }

  get free(): number {
    return this.maxSize - this.length;
  }

  /** Bytes of memory the ring takes (0 before the first write and after release()). */
  get capacity(): number {
    return this.ring.length;
  }

  /**
   * Gives the ring back when it holds nothing: once our FIN is acknowledged nothing more can
   * be written, and a connection lingering in FIN-WAIT-2 or TIME-WAIT keeps no buffer.
   */
  release(): void {
    if (this.length !== 0) return;
    this.ring = EMPTY;
    this.head = 0;
  }

  /** Copies up to `free` bytes of src[off, off+len); returns how many were taken. */
  append(src: Uint8Array, off: number, len: number): number {
    const n = Math.min(len, this.free);
    if (n <= 0) return 0;
    if (this.length + n > this.ring.length) this.grow(this.length + n);
    const cap = this.ring.length;
    const tail = (this.head + this.length) % cap;
    const first = Math.min(n, cap - tail);
    this.ring.set(src.subarray(off, off + first), tail);
    if (first < n) this.ring.set(src.subarray(off + first, off + n), 0);
    this.length += n;
    return n;
  }

  /** Copies len bytes starting `offset` bytes after the head into dst at dstOff. */
  copyOut(offset: number, dst: Buffer, dstOff: number, len: number): void {
    if (len <= 0) return;
    const cap = this.ring.length;
    const start = (this.head + offset) % cap;
    const first = Math.min(len, cap - start);
    this.ring.copy(dst, dstOff, start, start + first);
    if (first < len) this.ring.copy(dst, dstOff + first, 0, len - first);
  }

  /** Drops n acknowledged bytes from the head. */
  consume(n: number): void {
    const k = Math.min(n, this.length);
    this.length -= k;
    this.head = this.length === 0 ? 0 : (this.head + k) % this.ring.length;
  }

  /** The ring's memory once it holds n bytes (what append grows it to). */
  capacityFor(n: number): number {
    if (n <= this.ring.length) return this.ring.length;
    let size = Math.max(this.ring.length * 2, Math.min(this.initialSize, this.maxSize));
    while (size < n) size *= 2;
    return Math.min(size, this.maxSize);
  }

  private grow(needed: number): void {
    const size = this.capacityFor(needed);
    const next = Buffer.allocUnsafe(size);
    this.copyOut(0, next, 0, this.length);
    this.ring = next;
    this.head = 0;
  }
}
