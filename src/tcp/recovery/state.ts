// What loss recovery remembers between ACKs (RFC 5681 3.2, RFC 6582, RFC 6675, RFC 8985 7).

export class RecoveryState {
  /** Duplicate ACKs in a row (RFC 5681 2). */
  dupAcks = 0;
  inRecovery = false;
  /** The current recovery is SACK-based (RFC 6675), not NewReno (RFC 6582). */
  sackRecovery = false;
  /**
   * The recovery follows a retransmission timeout with SACK information kept (RFC 6675 5.1,
   * Linux's CA_Loss): every unSACKed byte is lost, cwnd grows by slow start.
   */
  afterTimeout = false;
  /** RFC 6582 "recover": highest sequence number sent when recovery started. */
  recover = 0;
  /**
   * RFC 6675 HighRxt: where the search for the next lost segment to retransmit starts (the
   * end of the last one retransmitted; back to SND.UNA when a retransmission was lost).
   */
  highRxt = 0;
  /** Bytes the current ACK delivered, cumulatively or by SACK (RFC 6937 DeliveredData). */
  delivered = 0;
  /** PRR (RFC 6937): data delivered and sent since recovery began, and FlightSize then. */
  prrDelivered = 0;
  prrOut = 0;
  recoverFs = 1;
  /** Tail loss probe (RFC 8985 7): outstanding, the probe's range, SND.MAX when it went, and whether it was a retransmission. */
  tlpOutstanding = false;
  tlpStart = 0;
  tlpEnd = 0;
  tlpHigh = 0;
  tlpRetransmission = false;

  // Undo (recovery/undo.ts: RFC 3522 Eifel, RFC 3708 D-SACK, Linux's undo_marker).
  /** A congestion response may still be undone; what it changed is below. */
  undoArmed = false;
  /** SND.UNA when the response began (Linux undo_marker). */
  undoMarker = 0;
  /** cwnd and ssthresh before it (Linux prior_cwnd, prior_ssthresh). */
  priorCwnd = 0;
  priorSsthresh = 0;
  /** Retransmissions not yet shown spurious by a D-SACK (Linux undo_retrans). */
  undoRetransmissions = 0;
  /** TSval of the first retransmission, 0 before it (Linux retrans_stamp). */
  retransmitStamp = 0;

  // F-RTO (RFC 5682 3, SACK-enhanced; recovery/frto.ts).
  /** After a timeout, watching for a spurious one. */
  frto = false;
  /** SND.NXT at the timeout, moved to SND.NXT when new data is let out (step 2b). */
  frtoHigh = 0;
  /** Step 2b: this ACK lets new data out instead of retransmissions. */
  frtoNewData = false;
}
