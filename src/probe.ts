// The stack's probe: one optional observer per stack (Stack.setProbe) that sees what happens
// inside it. Unset, it costs one null check at each place that would report. It sees every
// frame in (as received, before any check) and out (as handed to the link), decoded by the
// layers' own views (probe-decode.ts), and TCP's inside (src/tcp/tcb.ts TcpProbe): every
// segment with its connection and why it was sent, every state change with its event and
// RFC section, every change of cwnd, ssthresh, recovery phase, RTT and RTO.

import type { DecodedFrame } from './probe-decode.ts';
import type { TcpProbe } from './tcp/tcb.ts';
import type { ArpProbe } from './arp/arp.ts';
import type { IcmpProbe } from './ipv4/icmp.ts';

export type { CongestionSnapshot, RecoveryPhase, RetransmitRule, SendReason, TcpProbe, TimeWaitView } from './tcp/tcb.ts';
export type { TcpEvent, TcpState } from './tcp/state.ts';
export type { ArpEvent, ArpProbe } from './arp/arp.ts';
export type { IcmpProbe } from './ipv4/icmp.ts';

export interface FrameProbe {
  /**
   * A frame in or out. `frame` (its bytes and views) is reused for the next frame: valid only
   * during the call; copy what must be kept.
   */
  frame(direction: 'in' | 'out', frame: DecodedFrame): void;
}

export interface DropProbe {
  /** A frame or segment was dropped by `layer` ('ethernet', 'arp', 'ipv4', 'icmp', 'udp', 'tcp') for `reason`. */
  drop(layer: string, reason: string): void;
}

/**
 * Everything a probe may observe; it implements the methods it wants (Stack.setProbe fills in
 * the others). A probe that throws is counted (`probe-error` drops), never felt by the stack.
 */
export type Probe = Partial<FrameProbe & TcpProbe & DropProbe & ArpProbe & IcmpProbe>;
