// Two stacks on a RealClock over an in-memory link: for Node's own http module, whose timers
// run on real time.

import { createLinkPair } from '../../src/link/memory.ts';
import { createStack, type Stack } from '../../src/stack.ts';
import { RealClock } from '../../src/util/clock.ts';

export async function realTimeStacks(): Promise<{ a: Stack; b: Stack }> {
  const clock = new RealClock();
  const [la, lb] = createLinkPair(clock);
  const a = await createStack({ clock, link: la, ip: '10.0.0.1/24', mac: '02:00:00:00:00:01', tcp: { timeWaitMs: 100 } });
  const b = await createStack({ clock, link: lb, ip: '10.0.0.2/24', mac: '02:00:00:00:00:02', tcp: { timeWaitMs: 100 } });
  return { a, b };
}
