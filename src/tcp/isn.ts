// Initial sequence numbers (RFC 6528 3): ISN = M + F(localip, localport, remoteip,
// remoteport, secretkey), where M is a clock ticking every 4 microseconds and F a keyed hash.
// A new connection on the same 4-tuple thus starts above the old one's numbers, while an
// off-path attacker cannot guess them. The same secret keys the SYN cookies. F is
// SipHash-2-4, as in Linux (secure_tcp_seq): a keyed cryptographic hash, as RFC 6528 asks,
// cheap enough to run for every SYN.

import { randomBytes } from 'node:crypto';
import type { Clock } from '../util/clock.ts';
import { seededRandom } from '../util/random.ts';
import { siphash24 } from './siphash.ts';

export class IsnGenerator {
  readonly secret: Buffer;
  /** The secret as SipHash's 128-bit key (four little-endian 32-bit words). */
  private readonly key: Uint32Array;
  private readonly input = Buffer.alloc(16);

  /** With a seed, the secret (and so every ISN at a given time) is reproducible. */
  constructor(
    private readonly clock: Clock,
    seed?: number,
  ) {
    if (seed === undefined) {
      this.secret = randomBytes(16);
    } else {
      const random = seededRandom(seed ^ 0x15a1);
      this.secret = Buffer.alloc(16);
      for (let i = 0; i < 16; i++) this.secret[i] = Math.floor(random() * 256);
    }
    const s = this.secret;
    this.key = new Uint32Array([s.readUInt32LE(0), s.readUInt32LE(4), s.readUInt32LE(8), s.readUInt32LE(12)]);
  }

  /** F(): SipHash-2-4 of the 4-tuple (and `extra`, for SYN cookies) under the secret; 32 bits of it. */
  hash(localIp: number, localPort: number, remoteIp: number, remotePort: number, extra = 0): number {
    const b = this.input;
    b.writeUInt32BE(localIp >>> 0, 0);
    b.writeUInt32BE(remoteIp >>> 0, 4);
    b.writeUInt16BE(localPort, 8);
    b.writeUInt16BE(remotePort, 10);
    b.writeUInt32BE(extra >>> 0, 12);
    return siphash24(this.key, b, 0, 16);
  }

  /** M: a 4-microsecond clock (RFC 6528 3, RFC 9293 3.4.1). */
  clockTicks(): number {
    return Math.floor(this.clock.now() * 250) >>> 0;
  }

  next(localIp: number, localPort: number, remoteIp: number, remotePort: number): number {
    return (this.clockTicks() + this.hash(localIp, localPort, remoteIp, remotePort)) >>> 0;
  }
}
