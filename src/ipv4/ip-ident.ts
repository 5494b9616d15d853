// IPv4 identification fields as Linux picks them (net/ipv4/route.c ip_idents_reserve,
// net/ipv4/ip_output.c __ip_select_ident). One global sequential counter lets anyone who
// can reach us read how many datagrams we send to others (the idle scan). Linux keeps 2048
// counters instead, and picks a datagram's by a keyed SipHash of (destination, source,
// protocol): traffic to one destination does not move the IDs another sees. A counter idle
// for t ms also jumps ahead by a random 0..t-1 when next used, so that its rate cannot be
// read either.

import { randomBytes } from 'node:crypto';
import type { Clock } from '../util/clock.ts';
import { seededRandom } from '../util/random.ts';
import { siphash24 } from '../util/siphash.ts';

/** Linux's IP_IDENTS_SZ (the table is larger on big machines; 2048 is its minimum). */
export const IP_IDENTS = 2048;

/** One of the table's counters: the next ID and when it was last used (ms). */
interface IdentCounter {
  next: number;
  stamp: number;
}

export class IpIdentGenerator {
  /**
   * The counters used so far and when each was last used (ms; Linux: jiffies), by bucket.
   * Linux fills one ip_idents table with random bytes at boot (ip_rt_init) for the whole
   * kernel; here a bucket's first value is a keyed hash of its index, so a stack holds only
   * the buckets it sent to (at most IP_IDENTS) and a fleet's devices no 24 KiB table each.
   */
  private readonly counters = new Map<number, IdentCounter>();
  private readonly key = new Uint32Array(4);
  private readonly startKey = new Uint32Array(4);
  private readonly input = Buffer.alloc(12);
  private readonly random: () => number;
  /** The last destination and protocol and their counter: a flow's datagrams hash and look up once. */
  private lastDst = -1;
  private lastProtocol = -1;
  private lastCounter: IdentCounter | null = null;

  /** With a seed, the keys, the counters' start and their jumps are reproducible. */
  constructor(
    private readonly clock: Clock,
    private readonly src: number,
    seed?: number,
  ) {
    if (seed === undefined) {
      const bytes = randomBytes(32);
      for (let i = 0; i < 4; i++) this.key[i] = bytes.readUInt32LE(4 * i);
      for (let i = 0; i < 4; i++) this.startKey[i] = bytes.readUInt32LE(16 + 4 * i);
      this.random = Math.random;
    } else {
      const random = seededRandom(seed ^ 0x1d1d);
      const word = (): number => Math.floor(random() * 0x100000000) >>> 0;
      for (let i = 0; i < 4; i++) this.key[i] = word();
      for (let i = 0; i < 4; i++) this.startKey[i] = word();
      this.random = random;
    }
  }

  /** Reserves `count` consecutive IDs (a TSO super-frame's segments) toward dst; returns the first. */
  reserve(dst: number, protocol: number, count = 1): number {
    const c = this.counter(dst, protocol);
    const now = Math.floor(this.clock.now());
    const idle = now - c.stamp;
    let jump = 0;
    if (idle > 0) {
      c.stamp = now;
      jump = Math.floor(this.random() * idle);
    }
    const id = (c.next + jump) >>> 0;
    c.next = (id + count) >>> 0;
    return id & 0xffff;
  }

  /** The counter of (dst, us, protocol)'s bucket, made at its first use. */
  private counter(dst: number, protocol: number): IdentCounter {
    if (dst === this.lastDst && protocol === this.lastProtocol && this.lastCounter !== null) return this.lastCounter;
    const b = this.input;
    b.writeUInt32LE(dst >>> 0, 0);
    b.writeUInt32LE(this.src >>> 0, 4);
    b.writeUInt32LE(protocol, 8);
    const bucket = siphash24(this.key, b, 0, 12) & (IP_IDENTS - 1);
    let c = this.counters.get(bucket);
    if (c === undefined) {
      // A bucket's first counter, as random as Linux's boot-time fill and never stored until used.
      b.writeUInt32LE(bucket, 0);
      c = { next: siphash24(this.startKey, b, 0, 4) >>> 0, stamp: 0 };
      this.counters.set(bucket, c);
    }
    this.lastDst = dst;
    this.lastProtocol = protocol;
    this.lastCounter = c;
    return c;
  }
}
