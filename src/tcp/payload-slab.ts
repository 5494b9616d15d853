// Received payloads, copied out of the device's buffer (which the next frame overwrites) into
// memory the application will own. Payloads of at least SLAB_MIN_PAYLOAD bytes are carved
// from a shared slab rather than given an ArrayBuffer each (smaller ones come from Node's own
// Buffer pool): one backing store per SLAB_SIZE bytes instead of one per segment keeps the
// garbage collector's work per 64 KB super-frame small. A chunk the application keeps holds
// its slab, as Node's pool does.

const SLAB_MIN_PAYLOAD = 4096;
const SLAB_SIZE = 1024 * 1024;

export class PayloadSlab {
  private slab: Buffer = Buffer.alloc(0);
  private used = 0;

  /** A copy of buf[off, off+len). */
  copy(buf: Buffer, off: number, len: number): Buffer {
    let data: Buffer;
    if (len < SLAB_MIN_PAYLOAD) {
      data = Buffer.allocUnsafe(len);
    } else {
      if (this.used + len > this.slab.length) {
        this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, len));
        this.used = 0;
      }
      data = this.slab.subarray(this.used, this.used + len);
      // The next chunk starts 8-byte aligned, as Node's pool aligns its slices.
      this.used = (this.used + len + 7) & ~7;
    }
    buf.copy(data, 0, off, off + len);
    return data;
  }
}
