// Received payloads, copied out of the device's buffer (which the next frame overwrites) into
// memory the application will own. Large payloads (a 64 KB super-frame) are carved from a
// shared slab rather than given an ArrayBuffer each: one backing store per SLAB_SIZE bytes
// instead of one per segment keeps the garbage collector's work small on the bulk path,
// with no second copy. A chunk the application keeps holds its whole slab, so only chunks of
// at least SLAB_SIZE / 8 come from it: a kept chunk pins at most 8 times its length, as
// Linux bounds an skb's truesize against its length (tcp_collapse copies small data out of
// large buffers). Smaller payloads get memory of their own (those under 4 KB from Node's pool).
import { EMPTY_BUFFER } from '../util/bytes.ts';

const SLAB_SIZE = 256 * 1024;
export const SLAB_MIN_PAYLOAD = SLAB_SIZE / 8;

export class PayloadSlab {
  private slab: Buffer = EMPTY_BUFFER;
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
