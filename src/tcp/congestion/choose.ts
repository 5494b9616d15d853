// The one place that turns a configured name into a congestion controller.

import type { CongestionControl, CongestionName } from './congestion.ts';
import { Cubic } from './cubic.ts';
import { NewReno } from './newreno.ts';

export function createCongestionControl(name: CongestionName, mss: number): CongestionControl {
  return name === 'cubic' ? new Cubic(mss) : new NewReno(mss);
}
