// Tunables of the TCP layer, with Linux's defaults where the RFCs leave the choice.

import type { CongestionName } from './congestion/congestion.ts';

export interface TcpConfig {
  /** TIME-WAIT lasts 2*MSL (RFC 9293 3.4.2); Linux holds it 60 s (TCP_TIMEWAIT_LEN). */
  timeWaitMs: number;
  /** An orphaned FIN-WAIT-2 connection is dropped after this (Linux tcp_fin_timeout, 60 s). */
  finWait2Ms: number;
  /** SYN retransmissions before ETIMEDOUT (Linux tcp_syn_retries 6). */
  synRetries: number;
  /** SYN-ACK retransmissions of a half-open connection (Linux tcp_synack_retries 5). */
  synAckRetries: number;
  /** Data retransmissions before ETIMEDOUT (Linux tcp_retries2 15; RFC 1122 4.2.3.5 R2). */
  maxRetries: number;
  /** Delayed ACK timer (RFC 1122 4.2.3.2 allows up to 500 ms; Linux uses 40 ms to 200 ms). */
  delayedAckMs: number;
  /**
   * Quick-ACK mode: at most this many ACKs without delay at the start of the data and after
   * a duplicate or an out-of-order segment (Linux TCP_MAX_QUICKACKS, 16); 0 turns it off.
   */
  maxQuickAcks: number;
  /**
   * Window we offer at most (RFC 7323 scaled: 1 MiB needs a shift of 5), a documented large
   * default rather than autotuning; bytes are held only while the application does not read.
   */
  receiveBufferSize: number;
  /**
   * Bytes written and not yet acknowledged, at most (the ring grows on demand, so idle
   * connections hold little). 1 MiB lets a bulk sender keep several 64 KB super-frames in
   * flight while the application refills it (Linux's tcp_wmem grows to 4 MiB).
   */
  sendBufferSize: number;
  rtoMinMs: number;
  rtoMaxMs: number;
  rtoInitialMs: number;
  /** Keepalive (RFC 1122 4.2.3.6), Linux defaults: 7200 s idle, 75 s apart, 9 probes. */
  keepAliveIdleMs: number;
  keepAliveIntervalMs: number;
  keepAliveProbes: number;
  /** Congestion control: CUBIC (RFC 9438) by default, as Linux; NewReno (RFC 5681, 6582) selectable. */
  congestion: CongestionName;
  /** Offer window scaling (RFC 7323 2). */
  windowScaling: boolean;
  /** Offer timestamps (RFC 7323 3). */
  timestamps: boolean;
  /** Offer SACK (RFC 2018). */
  sack: boolean;
  /** Report duplicate segments in the first SACK block (RFC 2883 D-SACK; Linux tcp_dsack = 1). */
  dsack: boolean;
  /** Tail loss probes with SACK (RFC 8985 7), as Linux does by default. */
  tailLossProbe: boolean;
  /** F-RTO: detect spurious retransmission timeouts and undo them (RFC 5682; Linux tcp_frto = 2). */
  frto: boolean;
  /** Half-open connections per listener at most (Linux tcp_max_syn_backlog is 128 to 1024). */
  maxSynBacklog: number;
  /** Use SYN cookies when the SYN queue is full (Linux tcp_syncookies = 1). */
  synCookies: boolean;
  /**
   * RFC 5961 7: challenge ACKs per second for the whole layer, on average: each second's
   * budget is drawn at random in [limit / 2, limit * 3 / 2) (Linux tcp_challenge_ack_limit,
   * 1000, randomised since 4.7).
   */
  challengeAckLimit: number;
  /**
   * Per connection, at most one ACK in this interval answers out-of-window segments, PAWS
   * failures and RFC 5961 challenges (Linux tcp_invalid_ratelimit, 500 ms); 0 turns it off.
   */
  invalidRateLimitMs: number;
  /**
   * Out-of-order segments kept per connection; 0 (the default): as many 512-byte segments as
   * the receive buffer holds (2,048 for 1 MiB). The bytes are bounded by the window anyway;
   * this bounds the per-segment overhead, as Linux bounds its out-of-order queue by the
   * receive buffer's memory with each segment's truesize counted (tcp_prune_ofo_queue).
   * Too few would drop out-of-order data a large window legitimately carries, and the
   * sender would resend it for nothing.
   */
  maxOutOfOrderSegments: number;
  /**
   * Retransmissions and unanswered zero-window probes of an orphaned connection (one the
   * application closed) before it is dropped: Linux's tcp_orphan_retries, whose 0 (the
   * default) means 8 while the connection still looks alive (its backed-off RTO under
   * rtoMaxMs) and none once it does not.
   */
  orphanRetries: number;
  /**
   * TCP_USER_TIMEOUT (RFC 5482): ms that sent data may stay unacknowledged, or a zero window
   * unanswered-probed, before the connection fails with ETIMEDOUT; 0 (default, as Linux):
   * only the retry counts (maxRetries, orphanRetries) apply. Per socket: setUserTimeout().
   */
  userTimeoutMs: number;
  /**
   * Orphaned connections at most (Linux tcp_max_orphans): beyond it an orphan is reset and
   * dropped (tcp_check_oom "too many orphaned sockets"). Linux scales it with memory; 4,096
   * here: orphans hold send buffers nobody waits for.
   */
  maxOrphans: number;
  /**
   * Compact TIME-WAIT entries at most (Linux tcp_max_tw_buckets); beyond it a connection
   * closes without TIME-WAIT ("time wait bucket table overflow"). Linux scales it with
   * memory (262,144 on large machines); an entry here is about 150 bytes, and 32,768 of
   * them cover 546 connections closed per second for the 60 s wait.
   */
  maxTimeWait: number;
  /**
   * Connections (any state but CLOSED; TIME-WAIT entries not counted) at most: beyond it a
   * SYN is dropped as by a full listen queue (Linux tcp_abort_on_overflow = 0) and connect()
   * fails with ENOBUFS. Linux has no such cap (memory and descriptors bound it).
   */
  maxConnections: number;
  /**
   * Buffer memory of all connections (send rings, unread and out-of-order received bytes),
   * as Linux's tcp_mem in bytes: above memoryPressure the layer is under pressure (receive
   * windows clamped to 4 MSS, empty send rings given back, a connection past its fair share
   * of memoryHigh takes no more) until it falls below memoryLow; above memoryHigh nothing
   * more is taken (a connection holding nothing still takes one segment, a send ring grows
   * to 4 KB, Linux's tcp_rmem[0] and tcp_wmem[0]): received text is dropped, counted, and
   * writes wait. Defaults in Linux's 3:4:6 proportions (it sizes tcp_mem from memory).
   */
  memoryLow: number;
  memoryPressure: number;
  memoryHigh: number;
}

export const DEFAULT_TCP_CONFIG: TcpConfig = Object.freeze({
  timeWaitMs: 60_000,
  finWait2Ms: 60_000,
  synRetries: 6,
  synAckRetries: 5,
  maxRetries: 15,
  delayedAckMs: 40,
  maxQuickAcks: 16,
  receiveBufferSize: 1024 * 1024,
  sendBufferSize: 1024 * 1024,
  rtoMinMs: 200,
  rtoMaxMs: 120_000,
  rtoInitialMs: 1000,
  keepAliveIdleMs: 7_200_000,
  keepAliveIntervalMs: 75_000,
  keepAliveProbes: 9,
  congestion: 'cubic',
  windowScaling: true,
  timestamps: true,
  sack: true,
  dsack: true,
  tailLossProbe: true,
  frto: true,
  maxSynBacklog: 4096,
  synCookies: true,
  challengeAckLimit: 1000,
  invalidRateLimitMs: 500,
  maxOutOfOrderSegments: 0,
  orphanRetries: 0,
  userTimeoutMs: 0,
  maxOrphans: 4096,
  maxTimeWait: 32768,
  maxConnections: 16384,
  memoryLow: 96 * 1024 * 1024,
  memoryPressure: 128 * 1024 * 1024,
  memoryHigh: 192 * 1024 * 1024,
});
