// The stack's probe: one optional observer per stack (Stack.setProbe) that sees what happens
// inside it. Unset, it costs one null check at each place that would report. For now it sees
// frames: every frame in, as received and before any check, and every frame out, as handed
// to the link, decoded by the layers' own views (probe-decode.ts).

import type { DecodedFrame } from './probe-decode.ts';

export interface FrameProbe {
  /**
   * A frame in or out. `frame` (its bytes and views) is reused for the next frame: valid only
   * during the call; copy what must be kept.
   */
  frame(direction: 'in' | 'out', frame: DecodedFrame): void;
}

/** Everything a probe may observe (the frame part for now). */
export interface Probe extends FrameProbe {}
