// Initial sequence numbers (RFC 6528 3): ISN = M + F(localip, localport, remoteip,
// remoteport, secretkey), where M is a clock ticking every 4 microseconds and F a keyed hash.
// A new connection on the same 4-tuple thus starts above the old one's numbers, while an
// off-path attacker cannot guess them. F is SipHash-2-4, as in Linux (secure_tcp_seq): a
// keyed cryptographic hash, as RFC 6528 asks, cheap enough to run for every SYN. Each use
// has its own secret (KeyedHash), as Linux keeps net_secret for ISNs apart from
// syncookie_secret: knowing one gives nothing about the other.

import { randomBytes } from 'node:crypto';
import type { Clock } from '../util/clock.ts';
import { seededRandom } from '../util/random.ts';
import { siphash24 } from './siphash.ts';

/** SipHash-2-4 of four 32-bit words under a secret of its own (random, or from seed and salt). */
export class KeyedHash {
  readonly secret: Buffer;
  /** The secret as SipHash's 128-bit key (four little-endian 32-bit words). */
  private readonly key: Uint32Array;
  private readonly input = Buffer.alloc(16);
  private readonly out = new Uint32Array(2);
  /** The upper 32 bits of the last hash. */
  high = 0;

  /** With a seed, the secret is reproducible; `salt` tells the secrets of one seed apart. */
  constructor(seed: number | undefined, salt: number) {
    if (seed === undefined) {
      this.secret = randomBytes(16);
    } else {
      const random = seededRandom(seed ^ salt);
      this.secret = Buffer.alloc(16);
      for (let i = 0; i < 16; i++) this.secret[i] = Math.floor(random() * 256);
    }
    const s = this.secret;
    this.key = new Uint32Array([s.readUInt32LE(0), s.readUInt32LE(4), s.readUInt32LE(8), s.readUInt32LE(12)]);
  }

  /** 32 bits of the hash of (a, b, c, d). */
  hash(a: number, b: number, c: number, d: number): number {
    const buf = this.input;
    buf.writeUInt32BE(a >>> 0, 0);
    buf.writeUInt32BE(b >>> 0, 4);
    buf.writeUInt32BE(c >>> 0, 8);
    buf.writeUInt32BE(d >>> 0, 12);
    const low = siphash24(this.key, buf, 0, 16, this.out);
    this.high = this.out[1]!;
    return low;
  }
}

export class IsnGenerator {
  private readonly keyed: KeyedHash;

  /** With a seed, the secret (and so every ISN at a given time) is reproducible. */
  constructor(
    private readonly clock: Clock,
    seed?: number,
  ) {
    this.keyed = new KeyedHash(seed, 0x15a1);
  }

  get secret(): Buffer {
    return this.keyed.secret;
  }

  /** F(): SipHash-2-4 of the 4-tuple under the ISN secret; 32 bits of it. */
  hash(localIp: number, localPort: number, remoteIp: number, remotePort: number): number {
    return this.keyed.hash(localIp, remoteIp, ((localPort << 16) | remotePort) >>> 0, 0);
  }

  /** M: a 4-microsecond clock (RFC 6528 3, RFC 9293 3.4.1). */
  clockTicks(): number {
    return Math.floor(this.clock.now() * 250) >>> 0;
  }

  next(localIp: number, localPort: number, remoteIp: number, remotePort: number): number {
    return (this.clockTicks() + this.hash(localIp, localPort, remoteIp, remotePort)) >>> 0;
  }
}
