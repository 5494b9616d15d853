// The one place that turns a configured name into a congestion controller.

import type { CongestionControl, CongestionName } from './congestion.ts';
import { Bbr } from './bbr.ts';
import { Cubic } from './cubic.ts';
import { NewReno } from './newreno.ts';

/** `seed` (the connection's ISN) makes a controller's random choices repeatable. */
export function createCongestionControl(name: CongestionName, mss: number, seed = 0): CongestionControl {
  if (name === 'bbr') return new Bbr(mss, seed);
  return name === 'cubic' ? new Cubic(mss) : new NewReno(mss);
}
