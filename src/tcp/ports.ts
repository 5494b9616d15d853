// Ephemeral ports (RFC 6056), as Linux's __inet_hash_connect: algorithm 4, "double-hash port
// selection". A keyed hash of (local address, remote address, remote port) picks the offset
// where the search starts, so that an off-path attacker cannot guess the port of a
// connection to a given destination, while connections to the same destination take
// successive ports (no early reuse of a 4-tuple). A table of perturbations, indexed by the
// hash's low bits, moves that start on by what each search used plus a little randomness.
// The search tries ports of one parity first, then the other (Linux leaves the other parity
// for bind()). All of it is seeded: the same seed gives the same ports.

import { randomBytes } from 'node:crypto';
import { seededRandom } from '../util/random.ts';
import { KeyedHash } from './isn.ts';

/** Linux's default ip_local_port_range. */
export const EPHEMERAL_FIRST = 32768;
export const EPHEMERAL_LAST = 60999;
/** Linux's INET_TABLE_PERTURB_SIZE (2^16 since 5.18, against device tracking). */
const PERTURB_SIZE = 1 << 16;

export class PortSelector {
  /** Linux uses net_secret for secure_ipv4_port_ephemeral; a secret of its own here. */
  private readonly keyed: KeyedHash;
  private readonly random: () => number;
  /**
   * The perturbations of the buckets used so far. Linux fills one 256 KiB table_perturb with
   * random words at the first connect (get_random_slow_once) for the whole kernel; here each
   * bucket's first value is a keyed hash of its index, so a stack holds only the buckets its
   * connections used (at most PERTURB_SIZE, as Linux's table) and a fleet of 10,000 devices
   * does not hold 10,000 tables.
   */
  private readonly perturb = new Map<number, number>();
  private readonly initial: KeyedHash;

  constructor(seed: number | undefined) {
    this.keyed = new KeyedHash(seed, 0x9047);
    this.initial = new KeyedHash(seed, 0x9049);
    this.random = seededRandom(seed === undefined ? randomBytes(4).readUInt32LE(0) : seed ^ 0x9048);
  }

  /** A port for localIp to remoteIp:remotePort for which `free` is true, or null. */
  select(localIp: number, remoteIp: number, remotePort: number, free: (port: number) => boolean): number | null {
    const low = this.keyed.hash(localIp, remoteIp, remotePort, 0);
    const index = low & (PERTURB_SIZE - 1);
    const remaining = EPHEMERAL_LAST + 1 - EPHEMERAL_FIRST;
    const step = 2;
    // The first pass tries ports of even offset, the second the odd ones.
    const high = this.keyed.high;
    const perturbation = this.perturb.get(index) ?? this.initial.hash(index, 0, 0, 0);
    let offset = ((perturbation + high) >>> 0) % remaining & ~1;
    for (let pass = 0; pass < 2; pass++, offset++) {
      let port = EPHEMERAL_FIRST + offset;
      for (let i = 0; i < remaining; i += step, port += step) {
        if (port > EPHEMERAL_LAST) port -= remaining;
        if (!free(port)) continue;
        // A little randomness for the next search from this bucket: most when the ports are
        // free (i small), none under contention (i = max(i, random(8) * step)).
        const used = Math.max(i, Math.floor(this.random() * 8) * step);
        this.perturb.set(index, (perturbation + used + step) >>> 0);
        return port;
      }
    }
    return null;
  }
}
