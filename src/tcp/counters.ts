// The TCP layer's counters: segments in and out and drops by reason (as every layer), and
// what TCP did beyond that, as Linux's /proc/net/netstat TcpExt counts it. counters() and
// the HTTP service's /stats show them under tcp.stats.

import { LayerCounters } from '../util/counters.ts';

export class TcpCounters extends LayerCounters {
  /** Payload bytes delivered in order to applications. */
  bytesReceived = 0;
  /** Segments sent again (any reason; Linux TCPRetransSegs). */
  retransmits = 0;
  /** Recoveries entered on duplicate ACKs or SACK (Linux TCPFastRetrans counts segments). */
  fastRetransmits = 0;
  /** Tail loss probes sent (Linux TCPLossProbes). */
  tailLossProbes = 0;
  /** Retransmission timeouts (Linux TCPTimeouts). */
  timeouts = 0;
  /** Zero-window probes sent. */
  persistProbes = 0;
  /** Cumulative ACKs that stopped at SACKed data: the receiver reneged (Linux TCPSACKReneging). */
  sackRenegings = 0;
  /** D-SACK blocks sent for duplicates received, and received for our duplicates (Linux TCPDSACKOldSent, TCPDSACKRecv). */
  dsacksSent = 0;
  dsacksReceived = 0;
  /** Resets sent (Linux OutRsts). */
  resetsSent = 0;
  /** SYN cookies sent and accepted (Linux SyncookiesSent, SyncookiesRecv). */
  synCookiesSent = 0;
  synCookiesAccepted = 0;
  /** Connections in any state but CLOSED, and listening ports (gauges, not counts). */
  connections = 0;
  listeners = 0;

  stats(): Record<string, number> {
    return {
      connections: this.connections,
      listeners: this.listeners,
      bytesReceived: this.bytesReceived,
      retransmits: this.retransmits,
      fastRetransmits: this.fastRetransmits,
      tailLossProbes: this.tailLossProbes,
      timeouts: this.timeouts,
      persistProbes: this.persistProbes,
      sackRenegings: this.sackRenegings,
      dsacksSent: this.dsacksSent,
      dsacksReceived: this.dsacksReceived,
      resetsSent: this.resetsSent,
      synCookiesSent: this.synCookiesSent,
      synCookiesAccepted: this.synCookiesAccepted,
    };
  }

  override toJSON(): { rx: number; tx: number; drops: Record<string, number>; stats: Record<string, number> } {
    return { ...super.toJSON(), stats: this.stats() };
  }
}
