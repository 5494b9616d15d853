// A virtual clock that counts the timers it has run, so that a driver can run one timer at
// a time and then let the event loop's ticks (the streams' callbacks) run, as Node would.
import { type Timer, VirtualClock } from '../../src/util/clock.ts';

export class CountingClock extends VirtualClock {
  fired = 0;
  override setTimer(ms: number, fn: () => void): Timer {
    return super.setTimer(ms, () => {
      this.fired++;
      fn();
    });
  }
}
