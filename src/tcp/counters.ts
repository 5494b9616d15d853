// TCP's counters, as Linux's /proc/net/netstat TcpExt and tcp_info count them: per connection
// (Tcb.stats, socket.tcpStats()) and for the whole layer (TcpCounters: segments in and out and
// drops by reason as every layer, plus the sums of the connections' events). counters() and
// the HTTP service's /stats show the layer's under tcp.stats.

import { LayerCounters } from '../util/counters.ts';

/** The events counted both per connection and for the layer (Tcb.count adds to both). */
export class TcpEventCounts {
  /** Payload bytes delivered in order to applications. */
  bytesReceived = 0;
  /** Segments sent again, for any reason (Linux TCPRetransSegs, tcpi_total_retrans). */
  retransmits = 0;
  /** Recoveries entered on duplicate ACKs or SACK (Linux TCPFastRetrans counts segments). */
  fastRetransmits = 0;
  /** Tail loss probes sent (Linux TCPLossProbes). */
  tailLossProbes = 0;
  /** Retransmission timeouts (Linux TCPTimeouts). */
  timeouts = 0;
  /**
   * ACKs not sent in answer to invalid segments, by the per-connection tcp_invalid_ratelimit
   * (Linux TCPACKSkippedSeq, TCPACKSkippedPAWS, TCPACKSkippedChallenge).
   */
  invalidAcksSkipped = 0;
  /** Zero-window probes sent. */
  persistProbes = 0;
  /** Cumulative ACKs that stopped at SACKed data: the receiver reneged (Linux TCPSACKReneging). */
  sackRenegings = 0;
  /** D-SACK blocks sent for duplicates received, and received for our duplicates (Linux TCPDSACKOldSent, TCPDSACKRecv). */
  dsacksSent = 0;
  dsacksReceived = 0;
  /** ACKs that showed data delivered out of order, so reordering (Linux TCPSACKReorder, tcpi_reord_seen). */
  reorderingSeen = 0;
  /** Retransmissions found lost by RACK (Linux TCPLostRetransmit). */
  lostRetransmissions = 0;
  /** Tail loss probes that repaired a loss, answered by a window reduction (Linux TCPLossProbeRecovery). */
  tailLossProbeRecoveries = 0;
  /**
   * Congestion responses undone as spurious: fast recoveries by Eifel timestamps (Linux
   * TCPFullUndo and TCPPartialUndo), any by D-SACKs (TCPDSACKUndo), timeouts (TCPLossUndo),
   * and of those the ones F-RTO found (TCPSpuriousRTOs).
   */
  recoveryUndos = 0;
  dsackUndos = 0;
  lossUndos = 0;
  spuriousRtos = 0;
}

export type TcpEventName = keyof TcpEventCounts;

const EVENT_NAMES = Object.keys(new TcpEventCounts()) as TcpEventName[];

/** One connection's counters, with tcp_info's meanings. */
export class ConnectionStats extends TcpEventCounts {
  /** Segments in and out (tcpi_segs_in, tcpi_segs_out); a super-frame counts as its segments, as Linux's gso_segs. */
  segmentsIn = 0;
  segmentsOut = 0;
  /** Payload bytes sent, first time or again (tcpi_bytes_sent), and sent again (tcpi_bytes_retrans). */
  bytesSent = 0;
  bytesRetransmitted = 0;
  /** Bytes our peer acknowledged (tcpi_bytes_acked). */
  bytesAcked = 0;
  /** Segments in and out that carried data (tcpi_data_segs_in, tcpi_data_segs_out). */
  dataSegmentsIn = 0;
  dataSegmentsOut = 0;
  /** Segments the peer's D-SACKs reported as received twice (tcpi_dsack_dups). */
  dsackDuplicates = 0;
}

export interface TcpCounters extends TcpEventCounts {}

export class TcpCounters extends LayerCounters {
  /** Resets sent (Linux OutRsts). */
  resetsSent = 0;
  /** SYN cookies sent, accepted and refused (Linux SyncookiesSent, SyncookiesRecv, SyncookiesFailed). */
  synCookiesSent = 0;
  synCookiesAccepted = 0;
  synCookiesFailed = 0;
  /** Connections in any state but CLOSED, and listening ports (gauges, not counts). */
  connections = 0;
  listeners = 0;
  /** Orphaned connections, compact TIME-WAIT entries, and bytes charged to the buffer budget (gauges). */
  orphans = 0;
  timeWait = 0;
  memory = 0;
  /** Connections that closed without TIME-WAIT, the table being full (Linux TCPTimeWaitOverflow). */
  timeWaitOverflows = 0;
  /** Orphans reset for too many orphans or too little memory (Linux TCPAbortOnMemory). */
  abortOnMemory = 0;
  /** Entries into memory pressure (Linux TCPMemoryPressures). */
  memoryPressures = 0;
  /** Out-of-order queues dropped to free memory (Linux OfoPruned). */
  ofoPruned = 0;

  constructor() {
    super();
    // The event fields (interface TcpCounters extends TcpEventCounts), starting at 0.
    Object.assign(this, new TcpEventCounts());
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = { connections: this.connections, listeners: this.listeners };
    for (const name of EVENT_NAMES) out[name] = this[name];
    out.resetsSent = this.resetsSent;
    out.synCookiesSent = this.synCookiesSent;
    out.synCookiesAccepted = this.synCookiesAccepted;
    out.synCookiesFailed = this.synCookiesFailed;
    out.orphans = this.orphans;
    out.timeWait = this.timeWait;
    out.memory = this.memory;
    out.timeWaitOverflows = this.timeWaitOverflows;
    out.abortOnMemory = this.abortOnMemory;
    out.memoryPressures = this.memoryPressures;
    out.ofoPruned = this.ofoPruned;
    return out;
  }

  override toJSON(): { rx: number; tx: number; drops: Record<string, number>; stats: Record<string, number> } {
    return { ...super.toJSON(), stats: this.stats() };
  }
}
