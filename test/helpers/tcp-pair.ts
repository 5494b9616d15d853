// Two stacks joined by an in-memory link (optionally with faults), in virtual time.

import { VirtualClock } from '../../src/clock.ts';
import { FaultyLink, type FaultOptions } from '../../src/link/faults.ts';
import type { Link } from '../../src/link/link.ts';
import { createLinkPair } from '../../src/link/memory.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import type { TcpConfig } from '../../src/tcp/config.ts';

export interface StackPair {
  clock: VirtualClock;
  a: Stack;
  b: Stack;
  faultsA: FaultyLink | null;
  faultsB: FaultyLink | null;
}

export async function stackPair(
  options: { faults?: Omit<FaultOptions, 'seed'> & { seed: number }; tcp?: Partial<TcpConfig>; mtu?: number; latencyMs?: number } = {},
): Promise<StackPair> {
  const clock = new VirtualClock();
  const [la, lb] = createLinkPair(clock, { mtu: options.mtu ?? 1500, latencyMs: options.latencyMs ?? 1 });
  let linkA: Link = la;
  let linkB: Link = lb;
  let faultsA: FaultyLink | null = null;
  let faultsB: FaultyLink | null = null;
  if (options.faults) {
    faultsA = new FaultyLink(la, clock, { ...options.faults, seed: options.faults.seed });
    faultsB = new FaultyLink(lb, clock, { ...options.faults, seed: options.faults.seed + 1 });
    linkA = faultsA;
    linkB = faultsB;
  }
  const common = { clock, mtu: options.mtu, tcp: options.tcp };
  const a = await createStack({ ...common, link: linkA, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', seed: 1 });
  const b = await createStack({ ...common, link: linkB, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', seed: 2 });
  // Let the gratuitous ARPs land, so that both caches are warm.
  clock.advance(10);
  return { clock, a, b, faultsA, faultsB };
}
