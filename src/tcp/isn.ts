// Initial sequence numbers (RFC 6528 3): ISN = M + F(localip, localport, remoteip,
// remoteport, secretkey), where M is a clock ticking every 4 microseconds and F a keyed hash.
// A new connection on the same 4-tuple thus starts above the old one's numbers, while an
// off-path attacker cannot guess them. The same secret keys the SYN cookies.

import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../clock.ts';
import { seededRandom } from '../counters.ts';

export class IsnGenerator {
  readonly secret: Buffer;
  private readonly input = Buffer.alloc(12 + 32 + 4);

  /** With a seed, the secret (and so every ISN at a given time) is reproducible. */
  constructor(
    private readonly clock: Clock,
    seed?: number,
  ) {
    if (seed === undefined) {
      this.secret = randomBytes(32);
    } else {
      const random = seededRandom(seed ^ 0x15a1);
      this.secret = Buffer.alloc(32);
      for (let i = 0; i < 32; i++) this.secret[i] = Math.floor(random() * 256);
    }
  }

  /** F(): MD5 over the 4-tuple and the secret, as RFC 6528 suggests; 32 bits of it. */
  hash(localIp: number, localPort: number, remoteIp: number, remotePort: number, extra = 0): number {
    const b = this.input;
    b.writeUInt32BE(localIp >>> 0, 0);
    b.writeUInt32BE(remoteIp >>> 0, 4);
    b.writeUInt16BE(localPort, 8);
    b.writeUInt16BE(remotePort, 10);
    this.secret.copy(b, 12);
    b.writeUInt32BE(extra >>> 0, 44);
    return createHash('md5').update(b).digest().readUInt32BE(0);
  }

  /** M: a 4-microsecond clock (RFC 6528 3, RFC 9293 3.4.1). */
  clockTicks(): number {
    return Math.floor(this.clock.now() * 250) >>> 0;
  }

  next(localIp: number, localPort: number, remoteIp: number, remotePort: number): number {
    return (this.clockTicks() + this.hash(localIp, localPort, remoteIp, remotePort)) >>> 0;
  }
}
