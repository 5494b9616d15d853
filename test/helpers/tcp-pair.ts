// Two stacks joined by an in-memory link (optionally with faults, or with netem's shapes),
// in virtual time.

import { VirtualClock } from '../../src/util/clock.ts';
import { LinkDecorator } from '../../src/link/decorator.ts';
import { FaultyLink, type FaultOptions } from '../../src/link/faults.ts';
import type { Link } from '../../src/link/link.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { NetemLink, type NetemShape } from '../../src/link/netem.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import type { TcpConfig } from '../../src/tcp/config.ts';

export interface StackPair {
  clock: VirtualClock;
  a: Stack;
  b: Stack;
  faultsA: FaultyLink | null;
  faultsB: FaultyLink | null;
  /** The NetemLink shaping what a (b) sends, with options.netem. */
  netemA: NetemLink | null;
  netemB: NetemLink | null;
}

/** ARP passes netem by (as a tc filter on IP only), for the reason sparingArp gives. */
const notArp = (buf: Buffer, off: number, len: number): boolean => len < 14 || buf.readUInt16BE(off + 12) !== 0x0806;

/**
 * Sends IPv4 through the fault injector and ARP around it. ARP has no checksum: on a real
 * Ethernet the frame check sequence drops a damaged ARP frame, while here a flipped bit in a
 * reply would poison the neighbour cache, which tests nothing about TCP.
 */
function sparingArp(inner: Link, faulty: FaultyLink): Link {
  return new (class extends LinkDecorator {
    override send(buf: Buffer, off: number, len: number): void {
      if (!notArp(buf, off, len)) inner.send(buf, off, len);
      else faulty.send(buf, off, len);
    }
  })(faulty);
}

export async function stackPair(
  options: {
    faults?: Omit<FaultOptions, 'seed'> & { seed: number };
    /** Each end shapes what it sends (a: frames from a to b), seeded by seed and seed + 1. */
    netem?: { seed: number; a?: NetemShape; b?: NetemShape };
    tcp?: Partial<TcpConfig>;
    mtu?: number;
    latencyMs?: number;
    /** The virtual clock to run on (a subclass that counts its timers, say); default a new one. */
    clock?: VirtualClock;
  } = {},
): Promise<StackPair> {
  const clock = options.clock ?? new VirtualClock();
  const [la, lb] = createLinkPair(clock, { mtu: options.mtu ?? 1500, latencyMs: options.latencyMs ?? 1 });
  let linkA: Link = la;
  let linkB: Link = lb;
  let faultsA: FaultyLink | null = null;
  let faultsB: FaultyLink | null = null;
  let netemA: NetemLink | null = null;
  let netemB: NetemLink | null = null;
  if (options.netem) {
    if (options.faults) throw new Error('stackPair: faults or netem, not both');
    const { seed, a: shapeA, b: shapeB } = options.netem;
    if (shapeA) linkA = netemA = new NetemLink(la, clock, { seed, tx: shapeA, filter: notArp });
    if (shapeB) linkB = netemB = new NetemLink(lb, clock, { seed: seed + 1, tx: shapeB, filter: notArp });
  }
  if (options.faults) {
    // Each end perturbs what it sends: every frame meets the faults once. (Perturbing both
    // ends' receive too would flip two bits in some frames, and two opposite flips at the
    // same bit position cancel in the Internet checksum: no checksum can catch everything.)
    faultsA = new FaultyLink(la, clock, { ...options.faults, seed: options.faults.seed, direction: 'tx' });
    faultsB = new FaultyLink(lb, clock, { ...options.faults, seed: options.faults.seed + 1, direction: 'tx' });
    linkA = sparingArp(la, faultsA);
    linkB = sparingArp(lb, faultsB);
  }
  const common = { clock, mtu: options.mtu, tcp: options.tcp };
  const a = await createStack({ ...common, link: linkA, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const b = await createStack({ ...common, link: linkB, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  // Let the gratuitous ARPs land, so that both caches are warm.
  clock.advance(10);
  return { clock, a, b, faultsA, faultsB, netemA, netemB };
}
